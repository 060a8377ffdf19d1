import type { RunState, TaskState } from "@odin/dag";
import type { ParameterValue } from "@odin/pipeline-spec";

/** A run as the run store keeps it (one small value per run, whatever the pipeline's size). */
export interface RunRecord {
  id: string;
  /** Pipeline directory in the repository. */
  pipeline: string;
  pipelineName: string;
  commit: string;
  /** The immutable checkout of `commit` (the run's `ROOT_PATH`). */
  rootPath: string;
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
}

/** Key of a run's record. */
export const runKey = (runId: string): string => `runs.${runId}`;
/** Key of one task of a run. */
export const taskKey = (runId: string, task: string): string => `tasks.${runId}.${task}`;
/** Filter matching every task key of a run. */
export const runTasksFilter = (runId: string): string => `tasks.${runId}.>`;
/** Key remembering which run a SubmitRun request id created. */
export const requestKey = (requestId: string): string => `requests.${requestId}`;
