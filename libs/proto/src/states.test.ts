import { test } from "node:test";
import assert from "node:assert/strict";
import { runStates, taskStates } from "@odin/pipeline-spec";
import * as common from "./common.js";
import {
  runStateFromProto,
  runStateToProto,
  taskStateFromProto,
  taskStateToProto,
} from "./convert.js";

test("the wire's state enums are pipeline-spec's one table, value for value", () => {
  for (const s of taskStates) assert.equal(taskStateFromProto(taskStateToProto(s)), s);
  for (const s of runStates) assert.equal(runStateFromProto(runStateToProto(s)), s);
  const positive = (values: unknown[]): number[] =>
    values.filter((v): v is number => typeof v === "number" && v > 0);
  const wireTasks = positive(Object.values(common.TaskState)) as common.TaskState[];
  const wireRuns = positive(Object.values(common.RunState)) as common.RunState[];
  assert.deepEqual(wireTasks.map(taskStateFromProto), [...taskStates]);
  assert.deepEqual(wireRuns.map(runStateFromProto), [...runStates]);
  assert.equal(taskStateFromProto(common.TaskState.TASK_STATE_UNSPECIFIED), undefined);
  assert.equal(runStateFromProto(99 as common.RunState), undefined);
});
