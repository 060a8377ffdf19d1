// What a pipeline means once loaded: anchors, defaults and nulls, aliases of keys, dependencies,
// coercions and extensions (fixtures in testdata/valid, small cases inline).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertProblems, load, loadInSuite, loadValid, readTestdata } from "./fixtures.js";
import { defaultRetryBackoffMs, type Task } from "./model.js";
import { loadPipeline } from "./load.js";

/** A one-task pipeline with the given extra task lines (indented under the task). */
function oneTask(lines: string, head = ""): string {
  return `${head}tasks:\n- name: a\n  image: x\n  command: run\n${lines
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => `  ${l}\n`)
    .join("")}`;
}

function onlyTask(text: string): Task {
  const { pipeline } = loadValid(text);
  assert.equal(pipeline.tasks.length, 1);
  return pipeline.tasks[0]!;
}

describe("YAML anchors, aliases and merge keys", () => {
  const { pipeline } = loadInSuite(readTestdata("valid/anchors.yml"));
  const [merged, overridden, aliased] = pipeline.tasks;

  test("top-level anchor holders are not tasks and are not warned about", () => {
    assert.equal(pipeline.name, "anchors");
    assert.deepEqual(
      pipeline.tasks.map((t) => t.name),
      ["merged", "overridden", "aliased"],
    );
  });

  test("a << merge brings in every key of the anchored map", () => {
    assert.equal(merged!.image, "meadml/mead2-pytorch-gpu:latest");
    assert.deepEqual(merged!.command, ["mead-train"]);
    assert.equal(merged!.pullPolicy, "Always");
    assert.deepEqual(merged!.mounts, [{ name: "data", path: "/data", claim: "data-rw-many" }]);
    assert.deepEqual(merged!.args, ["--config", "a.yml"]);
  });

  test("a task's own keys win over merged ones", () => {
    assert.deepEqual(overridden!.command, ["python", "train.py"]);
    assert.equal(overridden!.numGpus, 2);
    assert.equal(overridden!.image, "meadml/mead2-pytorch-gpu:latest");
  });

  test("aliased maps and scalars mean what the anchor says, numbers kept as written", () => {
    assert.equal(aliased!.image, "meadml/mead2-pytorch-gpu:latest");
    assert.deepEqual(aliased!.mounts, [{ name: "data", path: "/data", claim: "data-rw-many" }]);
    for (const t of pipeline.tasks) assert.deepEqual(t.cpu, { limits: "1.10" }, t.name);
  });

  test("a problem in a merged key points where the key is written, in the task that merged it", () => {
    const text = [
      "defaults: &defaults",
      "  image: x",
      "  command: run",
      "  num_gpus: lots",
      "tasks:",
      "- name: a",
      "  <<: *defaults",
      "- name: b",
      "  <<: *defaults",
      "  num_gpus: 1",
      "",
    ].join("\n");
    assertProblems(load(text).problems, [
      {
        line: 4,
        column: 13,
        task: "a",
        field: "num_gpus",
        message: ['"num_gpus" must be a whole number 0 or more, not a string'],
      },
    ]);
  });

  test("a problem inside an aliased map points at the anchor", () => {
    const text = [
      "m: &m {name: data, path: data, claim: data-rw-many}",
      "tasks:",
      "- name: a",
      "  image: x",
      "  command: run",
      "  mount: *m",
      "",
    ].join("\n");
    assertProblems(load(text).problems, [
      {
        line: 1,
        column: 26,
        task: "a",
        field: "mount.path",
        message: ['mount path "data" must be absolute'],
      },
    ]);
  });

  test("many tasks sharing one anchor are not mistaken for an alias bomb", () => {
    let text =
      "defaults: &defaults\n  image: x\n  command: run\n  args: [a, b, c, d, e, f, g, h]\ntasks:\n";
    for (let i = 0; i < 5000; i++) text += `- name: t${i}\n  <<: *defaults\n`;
    const { pipeline } = loadValid(text);
    assert.equal(pipeline.tasks.length, 5000);
    assert.deepEqual(pipeline.tasks[4999]!.args, ["a", "b", "c", "d", "e", "f", "g", "h"]);
  });
});

describe("defaults and explicit nulls", () => {
  const { pipeline } = loadInSuite(readTestdata("valid/nulls.yml"));

  test("an explicit null means the default for every defaultable field", () => {
    assert.equal(pipeline.name, "flow");
    assert.equal(pipeline.failFast, true);
    assert.equal(pipeline.parallelism, undefined);
    const expected: Task = {
      name: "everything-null",
      image: "x",
      command: ["run"],
      args: [],
      depends: [],
      mounts: [],
      ephemeralVolumes: [],
      secrets: [],
      configMaps: [],
      numGpus: 0,
      pullPolicy: "IfNotPresent",
      nodeSelector: {},
      resourceType: "Pod",
      numWorkers: 1,
      inputs: [],
      outputs: {},
      env: {},
      tolerations: [],
      labels: {},
      annotations: {},
      retries: 0,
      retryBackoffMs: defaultRetryBackoffMs,
      extra: {},
    };
    assert.deepEqual(pipeline.tasks[0], expected);
  });

  test("num_gpus: null on a multi-worker type means one GPU per worker", () => {
    const t = pipeline.tasks[1]!;
    assert.equal(t.resourceType, "ElasticJob");
    assert.equal(t.numWorkers, 4);
    assert.equal(t.numGpus, 1);
  });

  test("a task with only the required keys gets the same defaults", () => {
    const t = onlyTask(oneTask(""));
    assert.deepEqual({ ...t, name: "everything-null", image: "x" }, pipeline.tasks[0]);
  });

  test("multi-worker types default to one GPU per worker, single-pod types to none", () => {
    const gpus = (type: string) => onlyTask(oneTask(`resource_type: ${type}`)).numGpus;
    for (const type of ["TFJob", "PyTorchJob", "MPIJob", "ElasticJob"])
      assert.equal(gpus(type), 1, type);
    for (const type of ["Pod", "Job"]) assert.equal(gpus(type), 0, type);
    assert.equal(
      onlyTask(oneTask("resource_type: TFJob\nnum_gpus: 0")).numGpus,
      0,
      "an explicit 0 is kept",
    );
  });

  test("every spelling of resource_type the original accepted", () => {
    const spellings: [string, Task["resourceType"]][] = [
      ["pod", "Pod"],
      ["job", "Job"],
      ["tfjob", "TFJob"],
      ["tensorflowjob", "TFJob"],
      ["pytorchjob", "PyTorchJob"],
      ["pytjob", "PyTorchJob"],
      ["mpijob", "MPIJob"],
      ["elasticjob", "ElasticJob"],
      ["pytorchelastic", "ElasticJob"],
    ];
    for (const [written, meant] of spellings)
      assert.equal(onlyTask(oneTask(`resource_type: ${written}`)).resourceType, meant, written);
  });

  test("pull_policy in any case", () => {
    assert.equal(onlyTask(oneTask("pull_policy: always")).pullPolicy, "Always");
    assert.equal(onlyTask(oneTask("pull_policy: Never")).pullPolicy, "Never");
    assertProblems(load(oneTask("pull_policy: sometimes")).problems, [
      {
        line: 5,
        column: 16,
        task: "a",
        field: "pull_policy",
        message: ['pull_policy "sometimes" must be Always, IfNotPresent or Never'],
      },
    ]);
  });

  test("num_workers on a single-pod type is warned about", () => {
    const result = load(oneTask("num_workers: 3"));
    assert.equal(result.valid, true);
    assertProblems(result.problems, [
      {
        severity: "warning",
        line: 5,
        column: 16,
        task: "a",
        field: "num_workers",
        message: ["num_workers is ignored for resource_type Pod"],
      },
    ]);
  });
});

describe("singular and plural spellings", () => {
  const pairs: [string, string, string, string, (t: Task) => unknown][] = [
    [
      "mount",
      "mounts",
      "{name: one, path: /one, claim: one}",
      "{name: two, path: /two, claim: two}",
      (t) => t.mounts.map((m) => m.name),
    ],
    [
      "ephem_volume",
      "ephem_volumes",
      "{name: one, type: emptyDir}",
      "{name: two, type: emptyDir}",
      (t) => t.ephemeralVolumes.map((v) => v.name),
    ],
    [
      "secret",
      "secrets",
      "{name: one, path: /one}",
      "{name: two, path: /two}",
      (t) => t.secrets.map((s) => s.name),
    ],
    [
      "config_map",
      "config_maps",
      "{name: one, path: /one}",
      "{name: two, path: /two}",
      (t) => t.configMaps.map((c) => c.name),
    ],
  ];
  for (const [singular, plural, one, two, names] of pairs) {
    test(`${singular} wins over ${plural}, with a warning at ${plural}`, () => {
      const result = load(oneTask(`${singular}: ${one}\n${plural}:\n- ${two}`));
      assert.equal(result.valid, true);
      assertProblems(result.problems, [
        {
          severity: "warning",
          line: 6,
          column: 3,
          task: "a",
          field: plural,
          message: [
            `both "${singular}" and "${plural}" are given; "${singular}" is used and "${plural}" ignored`,
          ],
        },
      ]);
      assert.deepEqual(names(result.pipeline!.tasks[0]!), ["one"]);
    });

    test(`${plural} alone, as a list or a single map`, () => {
      assert.deepEqual(names(onlyTask(oneTask(`${plural}:\n- ${one}\n- ${two}`))), ["one", "two"]);
      assert.deepEqual(names(onlyTask(oneTask(`${plural}: ${two}`))), ["two"]);
    });
  }

  test("tolerations (one spelling) are not warned about as if given twice", () => {
    const t = onlyTask(oneTask("tolerations:\n- {key: team, operator: Exists}"));
    assert.deepEqual(t.tolerations, [{ key: "team", operator: "Exists" }]);
  });
});

describe("dependencies", () => {
  const pipelineOf = (depends: string) =>
    `tasks:\n- {name: a, image: x, command: run}\n- {name: b, image: x, command: run}\n- name: c\n  image: x\n  command: run\n  depends: ${depends}\n`;
  const dependsOfC = (depends: string) => loadValid(pipelineOf(depends)).pipeline.tasks[2]!.depends;

  test("depends as a string, a list, null, and with a leading ^", () => {
    assert.deepEqual(dependsOfC("a"), ["a"]);
    assert.deepEqual(dependsOfC("[a, b]"), ["a", "b"]);
    assert.deepEqual(dependsOfC("\n  - b\n  - a"), ["b", "a"]);
    assert.deepEqual(dependsOfC("null"), []);
    assert.deepEqual(dependsOfC("^a"), ["a"]);
    assert.deepEqual(dependsOfC("[^a, b]"), ["a", "b"]);
    assert.deepEqual(dependsOfC("[a, ^a, a]"), ["a"], "repeats are merged");
  });

  test("depends entries must be names", () => {
    assertProblems(load(pipelineOf("[a, {b: 1}]")).problems, [
      {
        line: 7,
        column: 16,
        task: "c",
        field: "depends[1]",
        message: ['"depends" must name tasks, not a map'],
      },
    ]);
  });

  const references = load(readTestdata("valid/references.yml"));
  const pipeline = references.pipeline!;
  const graph = references.graph!;
  const dependsOf = (name: string) => pipeline.tasks.find((t) => t.name === name)!.depends;

  test("^task.field in args, inputs or an unknown key adds an edge", () => {
    assert.deepEqual(dependsOf("prepare"), []);
    assert.deepEqual(dependsOf("train"), ["prepare"]);
    assert.deepEqual(dependsOf("report"), ["evaluate", "train"]);
    assert.deepEqual(graph.topologicalNames(), ["prepare", "train", "evaluate", "report"]);
  });

  test("{^task.field} embedded in an arg adds an edge, and the arg is kept as written", () => {
    assert.deepEqual(dependsOf("evaluate"), ["train", "prepare"]);
    assert.deepEqual(pipeline.tasks[2]!.args, [
      "--model={^train.outputs.model}/best",
      "--data={^prepare.outputs.data}",
    ]);
  });

  test("an unknown key holding a ^reference is warned about, says the edge is kept, and is kept", () => {
    assert.equal(references.valid, true);
    assertProblems(references.problems, [
      {
        severity: "warning",
        line: 20,
        column: 3,
        task: "report",
        field: "notify",
        message: [
          'unknown task key "notify" is ignored',
          "its ^ reference still adds a dependency",
        ],
      },
    ]);
    assert.deepEqual(pipeline.tasks[3]!.extra, { notify: "^train" });
  });

  test("a ^reference to the task itself is an error", () => {
    assertProblems(load(oneTask('args: ["^a.outputs.model"]')).problems, [
      {
        line: 5,
        column: 10,
        task: "a",
        field: "args[0]",
        message: ['"^a.outputs.model" refers to this task itself'],
      },
    ]);
  });

  test("a plain string starting with ^ in an arg is not a reference unless it names a task", () => {
    // `^` followed by something that is not a task name (a regex anchor) adds no edge.
    assert.deepEqual(onlyTask(oneTask('args: ["--match", "^[A-Z]+$"]')).depends, []);
  });
});

describe("scalars kept as written", () => {
  test("numeric and boolean args become the strings the user typed", () => {
    const t = onlyTask(
      oneTask("args: [1.10, 1e3, 0x1F, 007, .5, -0.0, 3, true, no, 2024-01-02, '1.10']"),
    );
    assert.deepEqual(t.args, [
      "1.10",
      "1e3",
      "0x1F",
      "007",
      ".5",
      "-0.0",
      "3",
      "true",
      "no",
      "2024-01-02",
      "1.10",
    ]);
  });

  test("block-list args with comments keep only the value", () => {
    const t = onlyTask(oneTask("args:\n  - 1.10  # learning rate\n  - 100"));
    assert.deepEqual(t.args, ["1.10", "100"]);
  });

  test("a command given as a string is a one-element list", () => {
    assert.deepEqual(onlyTask(oneTask("")).command, ["run"]);
    assert.deepEqual(onlyTask(oneTask("args: --help")).args, ["--help"]);
  });

  test("an empty list item is an error, not the word null", () => {
    assertProblems(load(oneTask("args: [--x, null]")).problems, [
      {
        line: 5,
        column: 15,
        task: "a",
        field: "args[1]",
        message: ['"args[1]" is empty; quote it ("null") if you mean the word'],
      },
    ]);
  });

  test("cpu and memory quantities keep their spelling", () => {
    const t = onlyTask(
      oneTask("cpu: {limits: 4.5, requests: 1.0}\nmemory: {limits: 16Gi, requests: 500M}"),
    );
    assert.deepEqual(t.cpu, { limits: "4.5", requests: "1.0" });
    assert.deepEqual(t.memory, { limits: "16Gi", requests: "500M" });
  });
});

describe("secrets", () => {
  test("the original's two secrets have well-known places", () => {
    const t = onlyTask(oneTask("secrets:\n- name: odin-cred\n- name: ssh-key"));
    assert.deepEqual(t.secrets, [
      { name: "odin-cred", path: "/etc/odind/odin-cred.yml", subPath: "odin-cred.yml" },
      { name: "ssh-key", path: "/etc/odind/identity", subPath: "identity", mode: 0o400 },
    ]);
  });

  test("a well-known secret's defaults can be overridden", () => {
    const t = onlyTask(
      oneTask("secret: {name: ssh-key, path: /root/.ssh/id_rsa, sub_path: key, mode: 0600}"),
    );
    assert.deepEqual(t.secrets, [
      { name: "ssh-key", path: "/root/.ssh/id_rsa", subPath: "key", mode: 0o600 },
    ]);
  });

  test("file modes written as YAML 1.1 octal, 0o octal, a quoted string or decimal", () => {
    const mode = (written: string) =>
      onlyTask(oneTask(`secret: {name: s, path: /s, mode: ${written}}`)).secrets[0]!.mode;
    assert.equal(mode("0400"), 256);
    assert.equal(mode("0o644"), 0o644);
    assert.equal(mode('"0400"'), 256);
    assert.equal(mode("420"), 0o644);
  });

  test("a file mode that is not one is an error", () => {
    assertProblems(load(oneTask("secret: {name: s, path: /s, mode: 0999}")).problems, [
      {
        line: 5,
        column: 37,
        task: "a",
        field: "secret.mode",
        message: ['"mode" must be a file mode such as 0644 or 0400'],
      },
    ]);
  });

  test("any other secret needs a path", () => {
    assertProblems(load(oneTask("secrets:\n- name: mine")).problems, [
      {
        line: 6,
        column: 5,
        task: "a",
        field: "secrets[0].path",
        message: ['missing required key "path"'],
      },
    ]);
  });
});

describe("pipeline-level keys", () => {
  test("fail_fast: no (YAML 1.1 boolean words) turns fail-fast off", () => {
    for (const word of ["no", "No", "off", "false", "n"]) {
      assert.equal(loadValid(oneTask("", `fail_fast: ${word}\n`)).pipeline.failFast, false, word);
    }
    for (const word of ["yes", "on", "true"])
      assert.equal(loadValid(oneTask("", `fail_fast: ${word}\n`)).pipeline.failFast, true, word);
  });

  test("fail_fast must be a boolean", () => {
    assertProblems(load(oneTask("", "fail_fast: sometimes\n")).problems, [
      {
        line: 1,
        column: 12,
        field: "fail_fast",
        message: ['"fail_fast" must be true or false, not a string'],
      },
    ]);
  });

  test("the pipeline path comes from the caller", () => {
    assert.equal(loadValid(oneTask(""), { path: "alice/sst2" }).pipeline.path, "alice/sst2");
    assert.equal(loadValid(oneTask("")).pipeline.path, ".");
  });
});

describe("extensions", () => {
  const result = load(readTestdata("valid/extensions.yml"));
  const t = result.pipeline!.tasks[0]!;

  test("the pipeline is valid and only the unknown keys are warned about", () => {
    assert.equal(result.valid, true);
    assertProblems(result.problems, [
      {
        severity: "warning",
        line: 45,
        column: 3,
        task: "train",
        field: "colour",
        message: ['unknown task key "colour" is ignored'],
      },
      {
        severity: "warning",
        line: 46,
        column: 3,
        task: "train",
        field: "schedule",
        message: ['unknown task key "schedule" is ignored'],
      },
    ]);
  });

  test("pipeline fail_fast and parallelism", () => {
    assert.equal(result.pipeline!.failFast, false);
    assert.equal(result.pipeline!.parallelism, 4);
  });

  test("env values are strings as written; variables in them are kept for launch time", () => {
    assert.deepEqual(t.env, { LOG_DIR: "${TASK_PATH}/logs", SEED: "42", LR: "1.10" });
  });

  test("memory, tolerations, labels, annotations, service account, node selector", () => {
    assert.deepEqual(t.memory, { limits: "16Gi", requests: "8Gi" });
    assert.deepEqual(t.tolerations, [
      { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" },
      { key: "team", operator: "Equal", value: "ml", tolerationSeconds: 60 },
    ]);
    assert.deepEqual(t.labels, { team: "ml" });
    assert.deepEqual(t.annotations, { "example.com/owner": "alice" });
    assert.equal(t.serviceAccount, "trainer");
    assert.deepEqual(t.nodeSelector, { gpu: "a100" });
  });

  test("retries and durations in milliseconds", () => {
    assert.equal(t.retries, 3);
    assert.equal(t.retryBackoffMs, 30_000);
    assert.equal(t.timeoutMs, 2 * 3_600_000);
    assert.equal(t.pendingTimeoutMs, 10 * 60_000);
  });

  test("secrets and config maps", () => {
    assert.deepEqual(t.secrets, [
      { name: "odin-cred", path: "/etc/odind/odin-cred.yml", subPath: "odin-cred.yml" },
      { name: "ssh-key", path: "/etc/odind/identity", subPath: "identity", mode: 0o400 },
      { name: "registry", path: "/etc/registry", subPath: "token", mode: 256 },
    ]);
    assert.deepEqual(t.configMaps, [{ name: "settings", path: "/etc/settings" }]);
  });

  test("outputs as a list are keyed by position", () => {
    assert.deepEqual(t.outputs, { "0": "/out/model", "1": "/out/report" });
  });

  test("unknown keys are kept in extra, JSON-safe", () => {
    assert.equal(t.extra.colour, "blue");
    const schedule = t.extra.schedule as { at: unknown; every: unknown };
    assert.deepEqual(schedule.every, [1, "day"]);
    assert.equal(typeof schedule.at, "string");
    assert.deepEqual(JSON.parse(JSON.stringify(t.extra)), t.extra);
  });

  test("labels Odin reserves and invalid Kubernetes names are errors", () => {
    assertProblems(
      load(oneTask("labels: {odin.dev/run: x}\nservice_account: Not_Valid\nenv: {1BAD: x}"))
        .problems,
      [
        {
          line: 5,
          column: 11,
          task: "a",
          field: "labels",
          message: ['label "odin.dev/run" uses the odin.dev/ prefix'],
        },
        {
          line: 6,
          column: 20,
          task: "a",
          field: "service_account",
          message: ['service account "Not_Valid" is not a valid Kubernetes name'],
        },
        {
          line: 7,
          column: 8,
          task: "a",
          field: "env",
          message: ['environment variable name "1BAD"'],
        },
      ],
    );
  });
});

test("retry_backoff may be 0 to retry at once; a negative or missing unit is an error", () => {
  const ok = loadPipeline(
    "tasks:\n- name: a\n  image: i\n  command: c\n  retries: 2\n  retry_backoff: 0s\n",
  );
  assert.equal(ok.valid, true);
  assert.equal(ok.pipeline?.tasks[0]?.retryBackoffMs, 0);
  const bad = loadPipeline("tasks:\n- name: a\n  image: i\n  command: c\n  timeout: 0s\n");
  assert.equal(bad.valid, false);
  assert.match(bad.problems[0]?.message ?? "", /"timeout" is "0s", which is not a duration/);
});

test("a very long cycle is named by its ends, not by every task", () => {
  const n = 1000;
  let yaml = "tasks:\n";
  for (let i = 0; i < n; i++)
    yaml += `- {name: t${i}, image: i, command: c, depends: [t${(i + 1) % n}]}\n`;
  const result = loadPipeline(yaml);
  const cycle = result.problems.find((p) => p.message.startsWith("dependency cycle"));
  assert.ok(cycle);
  assert.match(cycle.message, /^dependency cycle: t0 → t1 → .* → … 986 more … → .* → t0 \(/);
  assert.ok(cycle.message.length < 400);
});

test("env may not override the ids Odin gives every task: a warning says the value is ignored", () => {
  const result = loadPipeline(
    "tasks:\n- name: a\n  image: i\n  command: c\n  env:\n    ODIN_TASK_ID: mine\n    MINE: ok\n",
  );
  assert.equal(result.valid, true);
  assert.deepEqual(
    result.problems.map((p) => [p.severity, p.line, p.column, p.field, p.message]),
    [
      [
        "warning",
        6,
        5,
        "env.ODIN_TASK_ID",
        "env.ODIN_TASK_ID is set by Odin for every task; this value is ignored",
      ],
    ],
  );
});
