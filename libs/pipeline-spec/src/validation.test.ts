// One broken pipeline per validation rule (testdata/invalid/*.yml), each asserting what a user
// sees: the message, its line and column, the task and the field.
import { readdirSync } from "node:fs";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  assertProblems,
  load,
  packageRoot,
  readTestdata,
  type ExpectedProblem,
} from "./fixtures.js";
import { formatProblem } from "./problems.js";
import { mergeKeyBudget, parseSource } from "./source.js";

interface Case {
  rule: string;
  fixture: string;
  problems: ExpectedProblem[];
}

const variableList =
  "ROOT_PATH, WORK_PATH, DATA_PATH, PIPE_ID, RUN_PATH, TASK_ID, TASK_NAME, TASK_PATH, TASK_IDS";

const cases: Case[] = [
  {
    rule: "a task needs a name",
    fixture: "missing-task-name.yml",
    problems: [{ line: 3, column: 3, field: "name", message: ['missing required key "name"'] }],
  },
  {
    rule: "task names are unique",
    fixture: "duplicate-task-names.yml",
    problems: [
      {
        line: 5,
        column: 9,
        task: "train",
        field: "name",
        message: ['task name "train" is used twice', "first at line 2", "must be unique"],
      },
    ],
  },
  {
    rule: "task names are DNS labels without '.'",
    fixture: "bad-task-names.yml",
    problems: [
      {
        line: 2,
        column: 9,
        task: "Train",
        field: "name",
        message: ['task name "Train" must be lower-case letters, digits and "-"', '(e.g. "train")'],
      },
      {
        line: 5,
        column: 9,
        task: "train_sst2",
        field: "name",
        message: ['task name "train_sst2" must be lower-case', '(e.g. "train-sst2")'],
      },
      {
        line: 8,
        column: 9,
        task: "train.sst2",
        field: "name",
        message: ['task name "train.sst2" may not contain "."', "^task.field"],
      },
      {
        line: 11,
        column: 9,
        task: "a-task-name-that-is-much-too-long-to-be-a-kubernetes-label-at-all",
        field: "name",
        message: ["is 65 characters; at most 63 fit in a Kubernetes label"],
      },
    ],
  },
  {
    rule: "the pipeline name is lower case",
    fixture: "pipeline-name-invalid.yml",
    problems: [
      {
        line: 1,
        column: 7,
        field: "name",
        message: ['pipeline name "My_Pipeline" must be lower-case letters, digits, "-" and "."'],
      },
    ],
  },
  {
    rule: "the pipeline name leaves room for the run id suffix",
    fixture: "pipeline-name-too-long.yml",
    problems: [
      {
        line: 1,
        column: 7,
        field: "name",
        message: ["is 57 characters; at most 54 leave room for the run id suffix"],
      },
    ],
  },
  {
    rule: "image and command are required",
    fixture: "missing-image-and-command.yml",
    problems: [
      { line: 2, column: 3, task: "a", field: "image", message: ['missing required key "image"'] },
      {
        line: 2,
        column: 3,
        task: "a",
        field: "command",
        message: ['missing required key "command"'],
      },
    ],
  },
  {
    rule: "resource_type is one of the known types",
    fixture: "unknown-resource-type.yml",
    problems: [
      {
        line: 5,
        column: 18,
        task: "a",
        field: "resource_type",
        message: [
          'unknown resource_type "SparkJob"',
          "use one of Pod, Job, TFJob, PyTorchJob, MPIJob, ElasticJob",
        ],
      },
    ],
  },
  {
    rule: "depends names tasks of the pipeline, with a suggestion for a typo",
    fixture: "unknown-dependency.yml",
    problems: [
      {
        line: 8,
        column: 13,
        task: "goodbye-python",
        field: "depends[0]",
        message: [
          'depends on "hello-pyhton", which is not a task of this pipeline',
          '(did you mean "hello-python"?)',
        ],
      },
    ],
  },
  {
    rule: "a task cannot depend on itself (reported once, not also as a cycle)",
    fixture: "self-dependency.yml",
    problems: [
      {
        line: 5,
        column: 12,
        task: "train",
        field: "depends",
        message: ['task "train" depends on itself', 'remove "train" from its depends'],
      },
    ],
  },
  {
    rule: "a cycle is reported with its whole path",
    fixture: "cycle.yml",
    problems: [
      {
        line: 8,
        column: 12,
        task: "train",
        field: "depends",
        message: [
          "dependency cycle: train → evaluate → report → train",
          "each task depends on the next",
        ],
      },
    ],
  },
  {
    rule: "a ^task reference names a task of the pipeline",
    fixture: "unknown-reference.yml",
    problems: [
      {
        line: 10,
        column: 5,
        task: "evaluate",
        field: "inputs[1]",
        message: [
          '"^trainer.outputs.model" refers to task "trainer", which is not a task of this pipeline',
          '(did you mean "train"?)',
        ],
      },
    ],
  },
  {
    rule: "only processing variables may be used",
    fixture: "unknown-variables.yml",
    problems: [
      {
        line: 7,
        column: 5,
        task: "a",
        field: "args[1]",
        message: [
          "args[1]: unknown variable $HOME",
          variableList,
          "write $$HOME for a literal $HOME",
        ],
      },
      {
        line: 8,
        column: 5,
        task: "a",
        field: "args[2]",
        message: ["args[2]: unknown variable $NOPE", "write $$NOPE"],
      },
    ],
  },
  {
    rule: "${ must be closed",
    fixture: "unterminated-variable.yml",
    problems: [
      {
        line: 5,
        column: 23,
        task: "a",
        field: "args[1]",
        message: ['args[1]: "${" has no closing "}"', "write $$ for a literal $"],
      },
    ],
  },
  {
    rule: "a mount without a claim needs an ephemeral volume of its name",
    fixture: "claimless-mount.yml",
    problems: [
      {
        line: 9,
        column: 5,
        task: "a",
        field: "mounts[1]",
        message: [
          'mount "dshm" has no claim and no ephem_volumes entry is named "dshm"',
          'add "claim: <pvc name>"',
        ],
      },
    ],
  },
  {
    rule: "args is a list, not a map",
    fixture: "args-map.yml",
    problems: [
      {
        line: 6,
        column: 5,
        task: "a",
        field: "args",
        message: ['"args" must be a string or a list of them, not a map'],
      },
    ],
  },
  {
    rule: "num_gpus is a whole number",
    fixture: "num-gpus-string.yml",
    problems: [
      {
        line: 5,
        column: 13,
        task: "a",
        field: "num_gpus",
        message: ['"num_gpus" must be a whole number 0 or more, not a string'],
      },
    ],
  },
  {
    rule: "cpu is a map of limits and requests",
    fixture: "cpu-not-a-map.yml",
    problems: [
      {
        line: 5,
        column: 8,
        task: "a",
        field: "cpu",
        message: ['"cpu" must be a map, not a number'],
      },
    ],
  },
  {
    rule: "tasks is a list",
    fixture: "tasks-not-a-list.yml",
    problems: [
      {
        line: 3,
        column: 3,
        field: "tasks",
        message: ['"tasks" must be a list of tasks, not a map'],
      },
    ],
  },
  {
    rule: "tasks is not empty",
    fixture: "tasks-empty.yml",
    problems: [
      {
        line: 2,
        column: 8,
        field: "tasks",
        message: ['"tasks" is empty; a pipeline needs at least one task'],
      },
    ],
  },
  {
    rule: "tasks is required",
    fixture: "tasks-missing.yml",
    problems: [{ line: 1, column: 1, message: ['missing required key "tasks"'] }],
  },
  {
    rule: "a key appears once per map",
    fixture: "duplicate-key.yml",
    problems: [{ line: 5, column: 3, message: ['duplicate key "image"', "may appear only once"] }],
  },
  {
    rule: "YAML syntax errors are reported where they are",
    fixture: "invalid-syntax.yml",
    problems: [
      {
        line: 6,
        column: 1,
        message: ["invalid YAML:", "missed comma between flow collection entries"],
      },
    ],
  },
  {
    rule: "an empty file is not a pipeline",
    fixture: "empty.yml",
    problems: [
      { line: 1, column: 1, message: ['the file is empty; a pipeline needs a "tasks" list'] },
    ],
  },
  {
    rule: "one mount path holds one volume",
    fixture: "two-volumes-one-path.yml",
    problems: [
      {
        line: 7,
        column: 27,
        task: "a",
        field: "mounts[1].path",
        message: ['volume "scratch" is mounted at /data, where volume "data" is already mounted'],
      },
    ],
  },
  {
    rule: "durations have units",
    fixture: "bad-duration.yml",
    problems: [
      {
        line: 5,
        column: 12,
        task: "a",
        field: "timeout",
        message: ['"timeout" is "2 hours", which is not a duration', "30s, 10m, 2h or 1h30m"],
      },
    ],
  },
  {
    rule: "resource amounts are Kubernetes quantities",
    fixture: "bad-quantity.yml",
    problems: [
      {
        line: 6,
        column: 13,
        task: "a",
        field: "memory.limits",
        message: ['"memory.limits" is "16GB", which is not a Kubernetes quantity', "16Gi"],
      },
    ],
  },
];

describe("each validation rule", () => {
  for (const c of cases) {
    test(`${c.rule} (${c.fixture})`, () => {
      const result = load(readTestdata(`invalid/${c.fixture}`));
      assert.equal(result.valid, false);
      assertProblems(result.problems, c.problems);
    });
  }

  test("every fixture in testdata/invalid has a case", () => {
    const files = readdirSync(new URL("testdata/invalid/", packageRoot)).filter((f) =>
      f.endsWith(".yml"),
    );
    const covered = new Set([
      ...cases.map((c) => c.fixture),
      "alias-bomb.yml",
      "many-problems.yml",
    ]);
    assert.deepEqual(
      files.filter((f) => !covered.has(f)),
      [],
    );
  });
});

describe("documents that cannot be read at all", () => {
  // What these protect is work bounded by the document's size, so they count the work (nodes
  // read, keys merges copied) rather than time it: a busy machine cannot fail them.
  test("an alias bomb is refused with a clear error, having read each node once", () => {
    const text = readTestdata("invalid/alias-bomb.yml");
    const result = load(text);
    assertProblems(result.problems, [
      { line: 1, column: 1, message: ["alias bomb", "use fewer nested aliases"] },
    ]);
    assert.equal(result.pipeline, undefined);
    const { work } = parseSource(text);
    assert.ok(work.nodes < text.length, `read ${work.nodes} nodes of a ${text.length}-char text`);
  });

  const mergeBomb = (keys: number, merges: number): string => {
    let text = "defaults: &defaults\n";
    for (let i = 0; i < keys; i++) text += `  k${i}: 1\n`;
    text += "tasks:\n";
    for (let i = 0; i < merges; i++) text += `- <<: *defaults\n  name: t${i}\n`;
    return text;
  };

  test("merge keys that copy far more keys than the document holds are refused before copying", () => {
    for (const size of [500, 1000, 2000]) {
      const text = mergeBomb(size, size);
      const result = load(text);
      assert.equal(result.valid, false);
      assert.equal(result.problems.length, 1);
      assert.match(
        result.problems[0]!.message,
        /merge keys \(<<\) copy too many keys .* alias bomb/,
      );
      // The merge that would cross the budget is refused before it copies anything.
      const { work, ok } = parseSource(text);
      assert.equal(ok, false);
      assert.ok(
        work.mergedKeys <= mergeKeyBudget(text.length) + size,
        `${text.length} chars: copied ${work.mergedKeys} keys`,
      );
      assert.ok(work.mergedKeys < size * size, "refused before every merge was copied");
    }
  });

  test("merge work is counted exactly for ordinary documents", () => {
    const text =
      "a: &a {x: 1, y: 2}\nb: &b {<<: *a, z: 3}\nc: {<<: [*a, *b], w: 1}\nd:\n  <<: *b\n";
    const parsed = parseSource(text);
    assert.equal(parsed.ok, true);
    // b copies a's 2 keys, c copies 2 + 3, d copies b's 3.
    assert.equal(parsed.work.mergedKeys, 10);
    const ordinary = mergeBomb(10, 3000);
    const many = parseSource(ordinary);
    assert.equal(many.ok, true, "3,000 tasks sharing ten defaults are accepted");
    assert.equal(many.work.mergedKeys, 30_000);
  });

  test("a document over the size limit is refused before it is parsed", () => {
    const text = "tasks:\n- name: a\n  image: x\n  command: run\n";
    const limits = { maxChars: text.length - 1, maxExpandedNodes: 1000 };
    assertProblems(load(text, { limits }).problems, [
      {
        line: 1,
        column: 1,
        message: [
          `the document is ${text.length} characters long; the limit is ${text.length - 1}`,
        ],
      },
    ]);
    assert.equal(
      load(text, { limits: { ...limits, maxChars: text.length } }).valid,
      true,
      "a document at the limit is read",
    );
  });

  test("a document that is not a map", () => {
    assertProblems(load("- name: a\n").problems, [
      { line: 1, column: 1, message: ['a pipeline must be a map with a "tasks" list, not a list'] },
    ]);
    assertProblems(load("just words\n").problems, [
      { line: 1, column: 1, message: ["not a string"] },
    ]);
    assertProblems(load("# only a comment\n").problems, [
      { line: 1, column: 1, message: ["the file is empty"] },
    ]);
  });

  test("a task that is not a map", () => {
    const result = load("tasks:\n- just-a-name\n- name: a\n  image: x\n  command: run\n");
    assertProblems(result.problems, [
      {
        line: 2,
        column: 3,
        field: "tasks[0]",
        message: ["tasks[0] must be a map describing a task, not a string"],
      },
    ]);
    assert.deepEqual(
      result.pipeline?.tasks.map((t) => t.name),
      ["a"],
    );
  });
});

describe("all problems at once", () => {
  const result = load(readTestdata("invalid/many-problems.yml"), { file: "many/main.yml" });

  test("every problem of the file is returned, sorted by position", () => {
    assert.equal(result.valid, false);
    assertProblems(
      result.problems,
      [
        { line: 1, column: 7, field: "name", message: ['pipeline name "Many_Problems"'] },
        {
          line: 6,
          column: 10,
          task: "prepare",
          field: "args[0]",
          message: ["unknown variable $HOME"],
        },
        {
          line: 7,
          column: 13,
          task: "prepare",
          field: "num_gpus",
          message: ['"num_gpus" must be a whole number 0 or more, not -1'],
        },
        {
          line: 8,
          column: 3,
          task: "train",
          field: "image",
          message: ['missing required key "image"'],
        },
        {
          line: 10,
          column: 22,
          task: "train",
          field: "depends[1]",
          message: ['depends on "evalute"', '(did you mean "evaluate"?)'],
        },
        {
          severity: "warning",
          line: 11,
          column: 3,
          task: "train",
          field: "colour",
          message: ['unknown task key "colour" is ignored'],
        },
        {
          line: 15,
          column: 18,
          task: "evaluate",
          field: "resource_type",
          message: ['unknown resource_type "sparkjob"'],
        },
        {
          line: 16,
          column: 9,
          task: "prepare",
          field: "name",
          message: ['task name "prepare" is used twice (first at line 3)'],
        },
      ],
      "many/main.yml",
    );
    const positions = result.problems.map((p) => p.line * 1000 + p.column);
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
    );
  });

  test("the pipeline is still returned so listings can show it", () => {
    assert.equal(result.pipeline?.name, "flow");
    assert.equal(result.pipeline?.tasks.length, 4);
  });

  test("problems print as file:line:col: task: message", () => {
    const printed = result.problems.map(formatProblem);
    assert.equal(
      printed[4],
      'many/main.yml:10:22: train: depends on "evalute", which is not a task of this pipeline (did you mean "evaluate"?)',
    );
    assert.equal(
      printed[5],
      'many/main.yml:11:3: warning: train: unknown task key "colour" is ignored',
    );
    assert.ok(printed[0]!.startsWith("many/main.yml:1:7: pipeline name"), printed[0]);
  });
});
