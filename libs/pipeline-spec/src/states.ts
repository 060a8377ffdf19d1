// Task and run states (SPEC.md "Task and run states"): the one table. The wire enums
// (`odin.common.v1.TaskState`, `RunState`) name the same states with a prefix, in the same order,
// and libs/proto converts by name; the run engine numbers them in this order.

/** Every state of a task, in the order of the wire enum. */
export const taskStates = [
  "PENDING",
  "LAUNCHING",
  "RUNNING",
  "SUCCEEDED",
  "FAILED",
  "ERROR",
  "SKIPPED",
  "CANCELLED",
  "RETRYING",
] as const;

/** A task's state. */
export type TaskState = (typeof taskStates)[number];

/** The states a launcher reports about an attempt; the scheduler decides every other. */
export const reportedStates = ["RUNNING", "SUCCEEDED", "FAILED", "ERROR"] as const;

/** A state a launcher reports. */
export type ReportedState = (typeof reportedStates)[number];

/** Every state of a run, in the order of the wire enum. */
export const runStates = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] as const;

/** A run's state. */
export type RunState = (typeof runStates)[number];

const terminalTaskStates: ReadonlySet<TaskState> = new Set([
  "SUCCEEDED",
  "FAILED",
  "ERROR",
  "SKIPPED",
  "CANCELLED",
]);

/** True for SUCCEEDED, FAILED, ERROR, SKIPPED and CANCELLED. */
export function isTerminalState(state: TaskState): boolean {
  return terminalTaskStates.has(state);
}

/** True for a run that has ended: SUCCEEDED, FAILED or CANCELLED. */
export function isFinishedRun(state: RunState): boolean {
  return state === "SUCCEEDED" || state === "FAILED" || state === "CANCELLED";
}
