import { runStateToProto, taskStateToProto, type common } from "@odin/proto";
import { taskId } from "@odin/pipeline-spec";
import type { RunRecord, TaskRecord } from "./records.js";

const date = (ms: number | undefined): Date | undefined =>
  ms === undefined ? undefined : new Date(ms);

/** A run record on the wire. */
export function runToProto(r: RunRecord): common.Run {
  return {
    id: r.id,
    pipeline: r.pipeline,
    pipelineName: r.pipelineName,
    commit: r.commit,
    state: runStateToProto(r.state),
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
    parameters: r.parameters,
    taskCounts: r.taskCounts && {
      pending: r.taskCounts.PENDING ?? 0,
      launching: r.taskCounts.LAUNCHING ?? 0,
      running: r.taskCounts.RUNNING ?? 0,
      succeeded: r.taskCounts.SUCCEEDED ?? 0,
      failed: r.taskCounts.FAILED ?? 0,
      error: r.taskCounts.ERROR ?? 0,
      retrying: r.taskCounts.RETRYING ?? 0,
      skipped: r.taskCounts.SKIPPED ?? 0,
      cancelled: r.taskCounts.CANCELLED ?? 0,
    },
    notifications: (r.notifications ?? []).map((n) => ({
      webhookSecret: n.webhookSecret,
      state: n.state,
      attempts: n.attempts,
      error: n.error ?? "",
      endTime: date(n.endTime),
    })),
  };
}

/** A task record on the wire. */
export function taskRunToProto(runId: string, task: string, r: TaskRecord): common.TaskRun {
  return {
    runId,
    task,
    taskId: taskId(runId, task),
    state: taskStateToProto(r.state),
    attempt: r.attempt,
    launchTime: date(r.launchTime),
    startTime: date(r.startTime),
    endTime: date(r.endTime),
    nextAttemptTime: date(r.nextAttemptTime),
    exitCode: r.exitCode,
    reason: r.reason ?? "",
    message: r.message ?? "",
    objectName: r.objectName ?? "",
    outputsJson: r.outputsJson ?? "",
    history: (r.history ?? []).map((h) => ({
      state: taskStateToProto(h.state),
      attempt: h.attempt,
      time: new Date(h.at),
    })),
    launched: r.launched && {
      command: r.launched.command,
      args: r.launched.args,
      env: r.launched.env,
    },
  };
}
