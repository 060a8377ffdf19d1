import type { RunState, TaskState } from "@odin/dag";
import type { NotificationStatus } from "@odin/notify";
import type { NotifyTarget, ParameterValue } from "@odin/pipeline-spec";

/** A run as the run store keeps it (one small value per run, whatever the pipeline's size). */
export interface RunRecord {
  id: string;
  /** Pipeline directory in the repository. */
  pipeline: string;
  pipelineName: string;
  commit: string;
  /** The immutable checkout of `commit` (the run's `ROOT_PATH`). */
  rootPath: string;
  /**
   * A templated pipeline's directory rendered for the run (its `WORK_PATH`); absent: the pipeline
   * directory in the checkout.
   */
  workPath?: string;
  /** `sha256:` of the rendered directory's content (the task cache's stand-in for `workPath`). */
  workDigest?: string;
  /** `DATA_PATH` of the run. */
  dataPath: string;
  /** `RUN_PATH`: `DATA_PATH/<run id>`. */
  runPath: string;
  state: RunState;
  /** 1, plus one per RetryRun. */
  attempt: number;
  labels: Record<string, string>;
  taskCount: number;
  createTime: number;
  startTime?: number;
  endTime?: number;
  reason?: string;
  message?: string;
  cancelRequested: boolean;
  /** Who submitted it. */
  submittedBy: string;
  /** Its parameter values (given ones typed, else defaults; a template's context); absent = none. */
  parameters?: Record<string, ParameterValue>;
  /** How many tasks ended in each state; written when the run ends (live counts come from memory). */
  taskCounts?: Partial<Record<TaskState, number>>;
  /**
   * The webhook posts of the run's end, one per `notify:` entry asking for its end state; written
   * with the end itself (all `pending`), then by the replica that wrote the end. Absent: none.
   */
  notifications?: NotificationStatus[];
  /** Bumped by each replica that took over pending notifications whose deliverer went away. */
  notifyClaim?: number;
  /** When the last such replica took them over. */
  notifyClaimTime?: number;
  /**
   * Webhooks its end is posted to besides its pipeline's `notify:` — those of the schedule that
   * started it; absent when none. Kept across retries.
   */
  notify?: NotifyTarget[];
  /** `odin run --no-cache`: no task of this run reuses an earlier result (its results are recorded). */
  noCache?: boolean;
}

/** A task of a run as the run store keeps it. Absent = PENDING, never launched. */
export interface TaskRecord {
  state: TaskState;
  attempt: number;
  firstAttempt?: number;
  launchTime?: number;
  startTime?: number;
  endTime?: number;
  nextAttemptTime?: number;
  exitCode?: number;
  reason?: string;
  message?: string;
  objectName?: string;
  /** A JSON object the task reported (termination message or outputs.json). */
  outputsJson?: string;
  /** When it entered each state (the last {@link historyKept}), oldest first. */
  history?: { state: TaskState; attempt: number; at: number }[];
  /** What the latest attempt was started with, after substitution; secret-looking env values hidden. */
  launched?: { command: string[]; args: string[]; env: Record<string, string> };
  /** The image digest the attempt ran (reported by the launcher), when known. */
  imageDigest?: string;
  /** Digest of its reported outputs and declared output files (docs/caching.md), once hashed. */
  resultDigest?: string;
  /** SUCCEEDED without running: an earlier run's result was reused. */
  cachedFrom?: { runId: string; attempt: number; key: string };
}

/** State changes kept on a task record. */
export const historyKept = 50;

/**
 * `next` with its state change (if any) appended to the history it carries on from `current`.
 * The time is the record's own for the state (launch, start or end time), else `now`.
 */
export function withHistory(
  current: TaskRecord | undefined,
  next: TaskRecord,
  now: number,
): TaskRecord {
  const before = current?.history ?? [];
  if (current?.state === next.state && current.attempt === next.attempt) {
    return next.history === before ? next : { ...next, history: before };
  }
  const at =
    next.state === "LAUNCHING"
      ? next.launchTime
      : next.state === "RUNNING"
        ? next.startTime
        : ["SUCCEEDED", "FAILED", "ERROR", "CANCELLED", "SKIPPED"].includes(next.state)
          ? next.endTime
          : undefined;
  const history = [...before, { state: next.state, attempt: next.attempt, at: at ?? now }];
  return { ...next, history: history.slice(-historyKept) };
}

/** Key of a run's record. */
export const runKey = (runId: string): string => `runs.${runId}`;
/** Key of one task of a run. */
export const taskKey = (runId: string, task: string): string => `tasks.${runId}.${task}`;
/** Filter matching every task key of a run. */
export const runTasksFilter = (runId: string): string => `tasks.${runId}.>`;
/** Key remembering which run a SubmitRun request id created. */
export const requestKey = (requestId: string): string => `requests.${requestId}`;
