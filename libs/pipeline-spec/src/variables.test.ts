// Processing variables: their values for a task of a run, and how they are substituted.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  processingVariables,
  scanVariables,
  substituteVariables,
  taskVariables,
  type RunContext,
} from "./variables.js";

const ctx: RunContext = {
  rootPath: "/data/pipelines",
  dataPath: "/data/odin",
  pipelinePath: "sst2",
  runId: "sst2-k3x9q",
  taskNames: ["prepare", "sst2", "report"],
};
const values = taskVariables(ctx, "sst2");
const sub = (s: string) => substituteVariables(s, values);

describe("values", () => {
  test("every variable of SPEC.md for one task", () => {
    assert.deepEqual(values, {
      ROOT_PATH: "/data/pipelines",
      WORK_PATH: "/data/pipelines/sst2",
      DATA_PATH: "/data/odin",
      PIPE_ID: "sst2-k3x9q",
      RUN_PATH: "/data/odin/sst2-k3x9q",
      TASK_ID: "sst2-k3x9q--sst2",
      TASK_NAME: "sst2",
      TASK_PATH: "/data/odin/sst2-k3x9q/sst2",
      TASK_IDS: "sst2-k3x9q--prepare,sst2-k3x9q--sst2,sst2-k3x9q--report",
    });
    assert.deepEqual(Object.keys(values).sort(), [...processingVariables].sort());
  });

  test("the SPEC.md example", () => {
    assert.equal(sub("${RUN_PATH}/${TASK_ID}"), "/data/odin/sst2-k3x9q/sst2-k3x9q--sst2");
    assert.equal(sub("${WORK_PATH}/sst2.yml"), "/data/pipelines/sst2/sst2.yml");
  });

  test("DATA_PATH defaults to ROOT_PATH", () => {
    const v = taskVariables({ ...ctx, dataPath: undefined }, "sst2");
    assert.equal(v.DATA_PATH, "/data/pipelines");
    assert.equal(v.RUN_PATH, "/data/pipelines/sst2-k3x9q");
    assert.equal(v.TASK_PATH, "/data/pipelines/sst2-k3x9q/sst2");
  });

  test("a nested pipeline path is the pipeline's directory under the root", () => {
    const v = taskVariables({ ...ctx, pipelinePath: "alice/sst2" }, "sst2");
    assert.equal(v.WORK_PATH, "/data/pipelines/alice/sst2");
    assert.equal(
      substituteVariables("${WORK_PATH}/sst2.yml", v),
      "/data/pipelines/alice/sst2/sst2.yml",
    );
  });

  test("a pipeline at the repository root works in the root", () => {
    assert.equal(taskVariables({ ...ctx, pipelinePath: "." }, "sst2").WORK_PATH, "/data/pipelines");
  });

  test("trailing slashes in the configured paths do not double up in substituted paths", () => {
    const v = taskVariables(
      {
        ...ctx,
        rootPath: "/data/pipelines/",
        dataPath: "/data/odin/",
        pipelinePath: "alice/sst2/",
      },
      "sst2",
    );
    assert.equal(
      substituteVariables("${ROOT_PATH}/logging.json", v),
      "/data/pipelines/logging.json",
    );
    assert.equal(
      substituteVariables("${WORK_PATH}/sst2.yml", v),
      "/data/pipelines/alice/sst2/sst2.yml",
    );
    assert.equal(substituteVariables("${DATA_PATH}/x", v), "/data/odin/x");
    assert.equal(v.RUN_PATH, "/data/odin/sst2-k3x9q");
  });

  test("TASK_IDS lists every task of the run, comma-separated, in order", () => {
    assert.equal(sub("$TASK_IDS"), "sst2-k3x9q--prepare,sst2-k3x9q--sst2,sst2-k3x9q--report");
    assert.equal(
      taskVariables({ ...ctx, taskNames: ["only"] }, "only").TASK_IDS,
      "sst2-k3x9q--only",
    );
  });
});

describe("substitution", () => {
  test("$VAR and ${VAR}", () => {
    assert.equal(sub("$TASK_ID"), "sst2-k3x9q--sst2");
    assert.equal(sub("${TASK_ID}"), "sst2-k3x9q--sst2");
    assert.equal(
      sub("--basedir=$RUN_PATH/$TASK_NAME.log"),
      "--basedir=/data/odin/sst2-k3x9q/sst2.log",
    );
    assert.equal(
      sub("${TASK_NAME}_suffix"),
      "sst2_suffix",
      "braces end the name where letters would not",
    );
    assert.equal(sub("print('hello ${TASK_ID}')"), "print('hello sst2-k3x9q--sst2')");
  });

  test("$VAR takes the longest name: $TASK_IDS is not $TASK_ID followed by S", () => {
    assert.equal(sub("$TASK_IDS"), values.TASK_IDS);
  });

  test("$$ is a literal $", () => {
    assert.equal(sub("$$TASK_ID"), "$TASK_ID");
    assert.equal(sub("cost: $$5"), "cost: $5");
    assert.equal(sub("$$$TASK_NAME"), "$sst2");
    assert.equal(sub("$${TASK_ID}"), "${TASK_ID}");
  });

  test("a $ not followed by a name is kept, so shell snippets survive", () => {
    assert.equal(sub("awk '{print $1}'"), "awk '{print $1}'");
    assert.equal(sub("a $ b"), "a $ b");
    assert.equal(sub("ends with $"), "ends with $");
  });

  test("strings without $ are returned as they are", () => {
    assert.equal(sub("--epochs=20"), "--epochs=20");
  });

  test("unknown names are left as written", () => {
    assert.equal(sub("$HOME/${NOPE}"), "$HOME/${NOPE}");
  });
});

describe("scanning for validation", () => {
  test("known variables are uses, with their offsets", () => {
    assert.deepEqual(scanVariables("${RUN_PATH}/$TASK_ID"), {
      uses: [
        { name: "RUN_PATH", offset: 0 },
        { name: "TASK_ID", offset: 12 },
      ],
      problems: [],
    });
  });

  test("$$, $1 and a lone $ are not uses and not problems", () => {
    assert.deepEqual(scanVariables("$$HOME $1 $ end$"), { uses: [], problems: [] });
  });

  test("unknown names, unclosed ${ and bad names are problems", () => {
    const unknown = scanVariables("x $HOME y");
    assert.equal(unknown.problems.length, 1);
    assert.equal(unknown.problems[0]!.offset, 2);
    assert.match(
      unknown.problems[0]!.message,
      /unknown variable \$HOME; the variables are ROOT_PATH, .* — write \$\$HOME/,
    );

    const unclosed = scanVariables("${RUN_PATH/x");
    assert.deepEqual(
      unclosed.problems.map((p) => p.offset),
      [0],
    );
    assert.match(unclosed.problems[0]!.message, /"\$\{" has no closing "\}"/);

    const bad = scanVariables("${1abc}");
    assert.match(bad.problems[0]!.message, /"\$\{1abc\}" is not a variable name/);
  });
});
