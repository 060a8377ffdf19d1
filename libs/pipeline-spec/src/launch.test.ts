import { test } from "node:test";
import assert from "node:assert/strict";
import { checkAttempt, checkLaunch, checkRunId, checkTaskName, type LaunchSpec } from "./launch.js";
import { loadPipeline } from "./load.js";
import type { Task } from "./model.js";

const base = loadPipeline("tasks:\n- {name: train, image: img, command: c}", { path: "demo" });
const makeTask = (over: Partial<Task> & Pick<Task, "name">): Task => ({
  ...base.pipeline!.tasks[0]!,
  ...over,
});

const spec = (over: Partial<LaunchSpec> = {}): LaunchSpec => ({
  runId: "demo-k3x9q2ab",
  pipeline: "demo",
  commit: "",
  task: makeTask({ name: "train" }),
  attempt: 1,
  paths: {
    rootPath: "/data/pipelines",
    workPath: "/data/pipelines/demo",
    dataPath: "/data/odin",
    runPath: "/data/odin/demo-k3x9q2ab",
    taskPath: "/data/odin/demo-k3x9q2ab/train",
  },
  ...over,
});

test("the one id check: errors named InvalidArgumentError that say what is wrong", () => {
  assert.doesNotThrow(() => checkRunId("demo-k3x9q2ab"));
  for (const bad of ["Bad_Run", "", "a".repeat(64), "-x", "a.b"]) {
    assert.throws(() => checkRunId(bad), { name: "InvalidArgumentError", message: /run_id/ });
  }
  assert.throws(() => checkTaskName("../escape"), /task "\.\.\/escape" is not a DNS-1123 label/);
  assert.doesNotThrow(() => checkAttempt(0, true));
  for (const bad of [0, -1, 1.5, 1_000_001, Number.NaN]) {
    assert.throws(() => checkAttempt(bad), { name: "InvalidArgumentError" }, String(bad));
  }
});

test("a launch needs valid ids, an image and absolute paths", () => {
  assert.doesNotThrow(() => checkLaunch(spec()));
  const bad: [string, LaunchSpec, RegExp][] = [
    ["run", spec({ runId: "UPPER" }), /run_id/],
    ["attempt", spec({ attempt: 0 }), /attempt 0/],
    ["image", spec({ task: makeTask({ name: "train", image: " " }) }), /image is required/],
    ["task path", spec({ paths: { ...spec().paths, taskPath: "rel" } }), /task_path/],
    ["run path", spec({ paths: { ...spec().paths, runPath: "rel" } }), /runPath/],
  ];
  for (const [what, s, message] of bad) {
    assert.throws(() => checkLaunch(s), { name: "InvalidArgumentError", message }, what);
  }
});
