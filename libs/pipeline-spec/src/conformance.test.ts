// The real pipelines of shared/conformance must load unchanged and mean what its README says.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { conformancePath, loadInSuite, readConformance } from "./fixtures.js";
import { objectName, taskId } from "./names.js";
import type { Pipeline, Task } from "./model.js";
import { substituteVariables, taskVariables, type RunContext } from "./variables.js";

const samples = "sample-odin-pipelines";
const odinTests = "odin-tests";

/**
 * Loads `<repo>/<pipeline>/main.yml` of the corpus the way the registry does (path relative to
 * its repository), inside a `describe`: registers the test that it loads with no problems at all.
 */
function loadConformance(repo: string, pipeline: string) {
  const file = `${repo}/${pipeline}/main.yml`;
  return loadInSuite(readConformance(file), { file, path: pipeline });
}

function task(pipeline: Pipeline, name: string): Task {
  const found = pipeline.tasks.find((t) => t.name === name);
  assert.ok(found, `task ${name} not found`);
  return found;
}

/** The task's args as launched: every processing variable substituted for this run. */
function launchedArgs(
  pipeline: Pipeline,
  name: string,
  ctx: Omit<RunContext, "pipelinePath" | "taskNames">,
): string[] {
  const values = taskVariables(
    { ...ctx, pipelinePath: pipeline.path, taskNames: pipeline.tasks.map((t) => t.name) },
    name,
  );
  return task(pipeline, name).args.map((a) => substituteVariables(a, values));
}

const root = "/data/pipelines";
const data = "/data/odin";

/** Maps a path under ROOT_PATH in a task pod back to the corpus checkout, to check it exists. */
function inRepo(repo: string, podPath: string): string {
  assert.ok(podPath.startsWith(`${root}/`), `${podPath} is not under ${root}`);
  return join(conformancePath(repo), podPath.slice(root.length + 1));
}

test("every main.yml of the corpus is covered by a test below", () => {
  const found: string[] = [];
  for (const repo of [samples, odinTests]) {
    for (const dir of readdirSync(conformancePath(repo), { withFileTypes: true })) {
      if (dir.isDirectory() && existsSync(join(conformancePath(repo), dir.name, "main.yml")))
        found.push(`${repo}/${dir.name}`);
    }
  }
  assert.deepEqual(found.sort(), [
    "odin-tests/test_pipeline-1",
    "odin-tests/test_pipeline-2-cpu-secctx",
    "odin-tests/test_podspecs-ephem",
    "sample-odin-pipelines/bert-ner",
    "sample-odin-pipelines/imagenet-elastic",
    "sample-odin-pipelines/sst2",
  ]);
});

describe("sample-odin-pipelines/bert-ner", () => {
  const { pipeline, graph } = loadConformance(samples, "bert-ner");

  test("one Pod task conll-0 whose image and claim come from top-level anchors", () => {
    assert.equal(pipeline.name, "bert-ner");
    assert.equal(pipeline.path, "bert-ner");
    assert.deepEqual(
      pipeline.tasks.map((t) => t.name),
      ["conll-0"],
    );
    const t = task(pipeline, "conll-0");
    assert.equal(t.image, "meadml/mead2-pytorch-gpu:latest");
    assert.deepEqual(t.command, ["mead-train"]);
    assert.equal(t.resourceType, "Pod");
    assert.equal(t.numWorkers, 1);
    assert.equal(t.pullPolicy, "Always");
    assert.equal(t.numGpus, 1);
    assert.deepEqual(t.mounts, [{ name: "data", path: "/data", claim: "data-rw-many" }]);
    assert.deepEqual(t.ephemeralVolumes, []);
    assert.deepEqual(t.depends, []);
    assert.deepEqual(graph.roots(), ["conll-0"]);
  });

  test("the top-level anchor keys are not tasks and not warned about", () => {
    assert.equal(pipeline.tasks.length, 1);
    assert.deepEqual(task(pipeline, "conll-0").extra, {});
  });

  test("variables resolve to the run workspace and to files that exist in the repository", () => {
    const args = launchedArgs(pipeline, "conll-0", {
      rootPath: root,
      dataPath: data,
      runId: "bert-ner-k3x9q",
    });
    assert.deepEqual(args, [
      "--basedir",
      "/data/odin/bert-ner-k3x9q/bert-ner-k3x9q--conll-0",
      "--config",
      "/data/pipelines/bert-ner/conll-bert.yml",
      "--logging",
      "/data/pipelines/logging.json",
    ]);
    // WORK_PATH is the pipeline's own directory and ROOT_PATH the repository root.
    assert.ok(existsSync(inRepo(samples, args[3]!)), args[3]);
    assert.ok(existsSync(inRepo(samples, args[5]!)), args[5]);
  });
});

describe("sample-odin-pipelines/imagenet-elastic", () => {
  const { pipeline } = loadConformance(samples, "imagenet-elastic");

  test("no name means the default name flow, so run ids start flow-", () => {
    assert.equal(pipeline.name, "flow");
  });

  test("one ElasticJob with 2 workers and one GPU per worker by default", () => {
    assert.deepEqual(
      pipeline.tasks.map((t) => t.name),
      ["imagenet"],
    );
    const t = task(pipeline, "imagenet");
    assert.equal(t.resourceType, "ElasticJob");
    assert.equal(t.numWorkers, 2);
    assert.equal(t.numGpus, 1);
    assert.equal(t.image, "torchelastic/examples:0.2.0");
    assert.equal(t.pullPolicy, "Always");
    assert.deepEqual(t.command, ["python", "-m", "torchelastic.distributed.launch"]);
    assert.deepEqual(t.mounts, []);
  });

  test("args without variables are passed as written", () => {
    const args = launchedArgs(pipeline, "imagenet", {
      rootPath: root,
      dataPath: data,
      runId: "flow-k3x9q",
    });
    assert.deepEqual(args, [
      "--nproc_per_node=1",
      "/workspace/examples/imagenet/main.py",
      "--arch=resnet18",
      "--epochs=20",
      "--batch-size=32",
      "--workers=0",
      "/workspace/data/tiny-imagenet-200",
    ]);
  });
});

describe("sample-odin-pipelines/sst2", () => {
  const { pipeline, graph } = loadConformance(samples, "sst2");

  test("explicit nulls mean defaults", () => {
    assert.equal(pipeline.name, "flow");
    const t = task(pipeline, "sst2");
    assert.equal(t.pullPolicy, "IfNotPresent");
    assert.equal(t.numWorkers, 1);
    assert.deepEqual(t.depends, []);
    assert.deepEqual(t.inputs, []);
    assert.deepEqual(t.outputs, {});
    assert.deepEqual(graph.dependenciesOf("sst2"), []);
  });

  test("the task as the original's HTTP tier wrote it", () => {
    const t = task(pipeline, "sst2");
    assert.equal(t.image, "meadml/mead2-tf2-gpu:latest");
    assert.deepEqual(t.command, ["mead-train"]);
    assert.equal(t.resourceType, "Pod");
    assert.equal(t.numGpus, 1);
    assert.deepEqual(t.mounts, [{ name: "data", path: "/data", claim: "data-rw-many" }]);
    // The `id` key the HTTP tier added means nothing: neither warned about (loadValid) nor kept.
    assert.deepEqual(t.extra, {});
  });

  test("${WORK_PATH}/${TASK_NAME}.yml is the pipeline's own config file", () => {
    const args = launchedArgs(pipeline, "sst2", {
      rootPath: root,
      dataPath: data,
      runId: "flow-k3x9q",
    });
    assert.deepEqual(args, [
      "--basedir",
      "/data/odin/flow-k3x9q/flow-k3x9q--sst2",
      "--config",
      "/data/pipelines/sst2/sst2.yml",
      "--logging",
      "/data/pipelines/logging.json",
    ]);
    assert.ok(existsSync(inRepo(samples, args[3]!)), args[3]);
    assert.ok(existsSync(inRepo(samples, args[5]!)), args[5]);
  });

  test("without a data path, run outputs go under the root", () => {
    const args = launchedArgs(pipeline, "sst2", { rootPath: root, runId: "flow-k3x9q" });
    assert.equal(args[1], "/data/pipelines/flow-k3x9q/flow-k3x9q--sst2");
  });
});

/** The diamond shared by the three odin-tests pipelines. */
function assertDiamond(
  pipeline: Pipeline,
  graph: ReturnType<typeof loadConformance>["graph"],
): void {
  assert.equal(pipeline.name, "test-job");
  assert.deepEqual(graph.dependenciesOf("hello-python"), []);
  assert.deepEqual(graph.dependenciesOf("train-sst2-1"), ["hello-python"]);
  assert.deepEqual(graph.dependenciesOf("train-sst2-2"), ["train-sst2-1"]);
  assert.deepEqual(graph.dependenciesOf("goodbye-python"), ["train-sst2-1", "train-sst2-2"]);
  assert.deepEqual(graph.dependentsOf("hello-python"), ["train-sst2-1"]);
  assert.deepEqual(graph.dependentsOf("train-sst2-1").sort(), ["goodbye-python", "train-sst2-2"]);
  assert.deepEqual(graph.dependentsOf("train-sst2-2"), ["goodbye-python"]);
  assert.deepEqual(graph.dependentsOf("goodbye-python"), []);
  const order = graph.topologicalNames().filter((n) => n !== "shm");
  assert.deepEqual(order, ["hello-python", "train-sst2-1", "train-sst2-2", "goodbye-python"]);
  assert.deepEqual(graph.cycles(), []);
}

describe("odin-tests/test_pipeline-1", () => {
  const { pipeline, graph } = loadConformance(odinTests, "test_pipeline-1");

  test("four tasks kept in file order, declared out of dependency order", () => {
    assert.deepEqual(
      pipeline.tasks.map((t) => t.name),
      ["train-sst2-2", "hello-python", "train-sst2-1", "goodbye-python"],
    );
    assert.deepEqual(
      pipeline.tasks.map((t) => t.image),
      [
        "mead-ml/mead-gpu:1.3.0",
        "python:3.6.4-jessie",
        "mead-ml/mead-gpu:latest",
        "python:3.6.4-jessie",
      ],
    );
    assert.deepEqual(
      pipeline.tasks.map((t) => t.command),
      [["mead-train"], ["python3"], ["mead-train"], ["python3"]],
    );
    assert.deepEqual(
      pipeline.tasks.map((t) => t.numGpus),
      [1, 0, 1, 0],
    );
    assert.deepEqual(task(pipeline, "train-sst2-1").mounts, [
      { name: "data", path: "/data", claim: "myclaim" },
    ]);
    assert.deepEqual(task(pipeline, "hello-python").mounts, []);
  });

  test("the depends lists form a diamond: hello-python first, goodbye-python last", () => {
    assertDiamond(pipeline, graph);
    assert.deepEqual(graph.roots(), ["hello-python"]);
  });

  test("${TASK_ID} inside a longer string is substituted", () => {
    const ctx = { rootPath: root, dataPath: data, runId: "test-job-k3x9q" };
    assert.deepEqual(launchedArgs(pipeline, "hello-python", ctx), [
      "-c",
      "print('hello test-job-k3x9q--hello-python')",
    ]);
    assert.deepEqual(launchedArgs(pipeline, "train-sst2-2", ctx), [
      "--datasets",
      "/data/pipelines/datasets.yml",
      "--config",
      "/data/pipelines/test_pipeline-1/sst2.json",
      "--reporting",
      "xpctl",
      "--xpctl:label",
      "test-job-k3x9q--train-sst2-2",
    ]);
  });
});

describe("odin-tests/test_pipeline-2-cpu-secctx", () => {
  const { pipeline, graph } = loadConformance(odinTests, "test_pipeline-2-cpu-secctx");

  test("the same diamond", () => {
    assertDiamond(pipeline, graph);
  });

  test("security context and cpu are set on train-sst2-2 only, cpu kept as written", () => {
    const t = task(pipeline, "train-sst2-2");
    assert.deepEqual(t.securityContext, { fsGroup: 1152 });
    // `4.5` and `1.0` are YAML numbers; as Kubernetes quantities they keep their spelling.
    assert.deepEqual(t.cpu, { limits: "4.5", requests: "1.0" });
    for (const other of ["hello-python", "train-sst2-1", "goodbye-python"]) {
      assert.equal(task(pipeline, other).securityContext, undefined, other);
      assert.equal(task(pipeline, other).cpu, undefined, other);
    }
  });
});

/** The parts of a golden pod spec (the original's snake_case dump) that the pipeline decides. */
interface GoldenPod {
  containers: {
    image: string;
    image_pull_policy: string;
    command: string[];
    args: string[];
    env: { name: string; value: string }[];
    resources: { limits: Record<string, number>; requests: Record<string, number> };
    volume_mounts: { name: string; mount_path: string }[] | null;
  }[];
  security_context: {
    fs_group: number | null;
    run_as_user: number | null;
    run_as_group: number | null;
  };
  volumes:
    | {
        name: string;
        persistent_volume_claim: { claim_name: string } | null;
        empty_dir: { medium: string | null } | null;
      }[]
    | null;
}

describe("odin-tests/test_podspecs-ephem against the original's golden pod specs", () => {
  const { pipeline, graph } = loadConformance(odinTests, "test_podspecs-ephem");
  // The golden files were produced with run id `xxxx` and these stand-ins for the two paths.
  const runId = "test-job-xxxx";
  const goldenRoot = "RANDOM_ROOT";
  const goldenWork = "RANDOM_WORK";

  test("five tasks in file order, the shm task beside the diamond", () => {
    assert.deepEqual(
      pipeline.tasks.map((t) => t.name),
      ["shm", "train-sst2-2", "hello-python", "train-sst2-1", "goodbye-python"],
    );
    assertDiamond(pipeline, graph);
    assert.deepEqual(graph.roots(), ["shm", "hello-python"]);
  });

  test("a PVC mount and a claim-less mount of a Memory emptyDir", () => {
    const t = task(pipeline, "shm");
    assert.deepEqual(t.mounts, [
      { name: "data", path: "/data", claim: "myclaim" },
      { name: "dshm", path: "/dev/shm" },
    ]);
    assert.deepEqual(t.ephemeralVolumes, [{ name: "dshm", type: "emptyDir", medium: "Memory" }]);
    assert.deepEqual(t.args, []);
  });

  test("train-sst2-2 carries the full security context and cpu as written", () => {
    const t = task(pipeline, "train-sst2-2");
    assert.deepEqual(t.securityContext, { fsGroup: 1152, runAsUser: 1000, runAsGroup: 1000 });
    assert.deepEqual(t.cpu, { limits: "4.5", requests: "1.0" });
  });

  pipeline.tasks.forEach((t, i) => {
    test(`task ${i} (${t.name}) matches tests-golden-podspecs/test_pod_${i}.json`, () => {
      const golden = JSON.parse(
        readConformance(`${odinTests}/tests-golden-podspecs/test_pod_${i}.json`),
      ) as GoldenPod;
      const container = golden.containers[0]!;
      assert.equal(t.image, container.image);
      assert.equal(t.pullPolicy, container.image_pull_policy);
      assert.deepEqual(t.command, container.command);

      // Difference: the original's test set WORK_PATH to a directory unrelated to ROOT_PATH; in
      // Odin WORK_PATH is always ROOT_PATH/<pipeline path>, so the golden value is put in by hand.
      const values = {
        ...taskVariables(
          {
            rootPath: goldenRoot,
            pipelinePath: pipeline.path,
            runId,
            taskNames: pipeline.tasks.map((x) => x.name),
          },
          t.name,
        ),
        WORK_PATH: goldenWork,
      };
      assert.deepEqual(
        t.args.map((a) => substituteVariables(a, values)),
        container.args,
      );
      const taskIdEnv = container.env.find((e) => e.name === "ODIN_TASK_ID");
      assert.equal(taskId(runId, t.name), taskIdEnv?.value);
      assert.equal(
        objectName(runId, t.name),
        taskIdEnv?.value,
        "a short task id is its own object name",
      );

      // Difference: the original always wrote `nvidia.com/gpu`, 0 included; Odin keeps the number
      // and the launcher omits the limit when it is 0.
      assert.equal(t.numGpus, container.resources.limits["nvidia.com/gpu"]);
      // Difference: the original dumped cpu as Python floats; Odin keeps the quantity as written
      // (`"4.5"`, `"1.0"`), which is the same amount.
      assert.equal(
        t.cpu?.limits === undefined ? undefined : Number(t.cpu.limits),
        container.resources.limits.cpu,
      );
      assert.equal(
        t.cpu?.requests === undefined ? undefined : Number(t.cpu.requests),
        container.resources.requests.cpu,
      );

      const sc = golden.security_context;
      const wantSc: Record<string, number> = {};
      if (sc.fs_group !== null) wantSc.fsGroup = sc.fs_group;
      if (sc.run_as_user !== null) wantSc.runAsUser = sc.run_as_user;
      if (sc.run_as_group !== null) wantSc.runAsGroup = sc.run_as_group;
      assert.deepEqual(t.securityContext ?? {}, wantSc);

      assert.deepEqual(
        t.mounts.map((m) => ({ name: m.name, mount_path: m.path })),
        (container.volume_mounts ?? []).map((m) => ({ name: m.name, mount_path: m.mount_path })),
      );
      // Volumes as a set: the original listed emptyDirs before claims.
      const volumes = [
        ...t.mounts
          .filter((m) => m.claim !== undefined)
          .map((m) => ({ name: m.name, claim: m.claim, medium: undefined })),
        ...t.ephemeralVolumes.map((v) => ({ name: v.name, claim: undefined, medium: v.medium })),
      ].sort((a, b) => a.name.localeCompare(b.name));
      const goldenVolumes = (golden.volumes ?? [])
        .map((v) => ({
          name: v.name,
          claim: v.persistent_volume_claim?.claim_name,
          medium: v.empty_dir === null ? undefined : (v.empty_dir.medium ?? undefined),
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
      assert.deepEqual(volumes, goldenVolumes);
    });
  });
});
