import {
  dagscheduler,
  notifyToProto,
  runStateToProto,
  taskStateToProto,
  type common,
} from "@odin/proto";
import { taskId, type CatchupPolicy, type ConcurrencyPolicy } from "@odin/pipeline-spec";
import type { RunRecord, TaskRecord } from "./records.js";
import type { ScheduleView } from "./schedules.js";
import { scheduleRunSelector } from "./run-labels.js";

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
    submittedBy: r.submittedBy,
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
    cachedFrom: r.cachedFrom && { ...r.cachedFrom },
  };
}

const catchupToProto = {
  skip: dagscheduler.CatchupPolicy.CATCHUP_POLICY_SKIP,
  once: dagscheduler.CatchupPolicy.CATCHUP_POLICY_ONCE,
} as const;
const concurrencyToProto = {
  allow: dagscheduler.ConcurrencyPolicy.CONCURRENCY_POLICY_ALLOW,
  forbid: dagscheduler.ConcurrencyPolicy.CONCURRENCY_POLICY_FORBID,
  replace: dagscheduler.ConcurrencyPolicy.CONCURRENCY_POLICY_REPLACE,
} as const;

/** A catch-up policy from the wire (unset: skip). */
export function catchupFromProto(p: dagscheduler.CatchupPolicy): CatchupPolicy {
  return p === dagscheduler.CatchupPolicy.CATCHUP_POLICY_ONCE ? "once" : "skip";
}

/** A concurrency policy from the wire (unset: allow). */
export function concurrencyFromProto(p: dagscheduler.ConcurrencyPolicy): ConcurrencyPolicy {
  return p === dagscheduler.ConcurrencyPolicy.CONCURRENCY_POLICY_FORBID
    ? "forbid"
    : p === dagscheduler.ConcurrencyPolicy.CONCURRENCY_POLICY_REPLACE
      ? "replace"
      : "allow";
}

/** A schedule and where it stands, on the wire. */
export function scheduleToProto(view: ScheduleView): dagscheduler.Schedule {
  const { schedule: s, ticks, nextTick } = view;
  const out: dagscheduler.Schedule = {
    name: s.name,
    pipeline: s.pipeline,
    cron: s.cron,
    timezone: s.timezone,
    parameters: s.parameters,
    catchup: catchupToProto[s.catchup],
    concurrency: concurrencyToProto[s.concurrency],
    paused: s.paused,
    declared: s.source === "pipeline",
    createdBy: s.createdBy,
    createTime: new Date(s.createTime),
    lastRunId: ticks?.lastRunId ?? "",
    skippedTicks: ticks?.skipped ?? 0,
    lastError: ticks?.lastError ?? "",
    notify: (s.notify ?? []).map(notifyToProto),
    runSelector: scheduleRunSelector(s.name),
  };
  if (nextTick !== undefined) out.nextTick = new Date(nextTick);
  // The first tick record holds the creation time, not a tick.
  if (ticks && ticks.lastTick > s.createTime) out.lastTick = new Date(ticks.lastTick);
  return out;
}
