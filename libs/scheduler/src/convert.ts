import type { RunState, TaskState } from "@odin/dag";
import { common } from "@odin/proto";
import { taskId } from "@odin/pipeline-spec";
import type { RunRecord, TaskRecord } from "./records.js";

const runStates: Record<RunState, common.RunState> = {
  PENDING: common.RunState.RUN_STATE_PENDING,
  RUNNING: common.RunState.RUN_STATE_RUNNING,
  SUCCEEDED: common.RunState.RUN_STATE_SUCCEEDED,
  FAILED: common.RunState.RUN_STATE_FAILED,
  CANCELLED: common.RunState.RUN_STATE_CANCELLED,
};

const taskStates: Record<TaskState, common.TaskState> = {
  PENDING: common.TaskState.TASK_STATE_PENDING,
  LAUNCHING: common.TaskState.TASK_STATE_LAUNCHING,
  RUNNING: common.TaskState.TASK_STATE_RUNNING,
  SUCCEEDED: common.TaskState.TASK_STATE_SUCCEEDED,
  FAILED: common.TaskState.TASK_STATE_FAILED,
  ERROR: common.TaskState.TASK_STATE_ERROR,
  SKIPPED: common.TaskState.TASK_STATE_SKIPPED,
  CANCELLED: common.TaskState.TASK_STATE_CANCELLED,
  RETRYING: common.TaskState.TASK_STATE_RETRYING,
};

/** A run state from the wire. */
export function runStateFromProto(s: common.RunState): RunState | undefined {
  return (Object.entries(runStates) as [RunState, common.RunState][]).find(([, v]) => v === s)?.[0];
}

const date = (ms: number | undefined): Date | undefined =>
  ms === undefined ? undefined : new Date(ms);

/** A run record on the wire. */
export function runToProto(r: RunRecord): common.Run {
  return {
    id: r.id,
    pipeline: r.pipeline,
    pipelineName: r.pipelineName,
    commit: r.commit,
    state: runStates[r.state],
    attempt: r.attempt,
    labels: r.labels,
    taskCount: r.taskCount,
    createTime: date(r.createTime),
    startTime: date(r.startTime),
    endTime: date(r.endTime),
    reason: r.reason ?? "",
    message: r.message ?? "",
    cancelRequested: r.cancelRequested,
    runPath: r.runPath,
  };
}

/** A task record on the wire. */
export function taskRunToProto(runId: string, task: string, r: TaskRecord): common.TaskRun {
  return {
    runId,
    task,
    taskId: taskId(runId, task),
    state: taskStates[r.state],
    attempt: r.attempt,
    createTime: undefined,
    launchTime: date(r.launchTime),
    startTime: date(r.startTime),
    endTime: date(r.endTime),
    nextAttemptTime: date(r.nextAttemptTime),
    exitCode: r.exitCode,
    reason: r.reason ?? "",
    message: r.message ?? "",
    objectName: r.objectName ?? "",
    outputsJson: r.outputsJson ?? "",
  };
}
