// How states, times and durations look, in one place.
import { type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import { RunState, TaskState } from "../gen/odin/common/v1/run_pb.js";

/** A task state's short name (`succeeded`), as the CLI prints it. */
export function taskStateName(state: TaskState): string {
  return (TaskState[state] ?? "unknown").toLowerCase();
}

/** A run state's short name (`running`). */
export function runStateName(state: RunState): string {
  return (RunState[state] ?? "unknown").toLowerCase();
}

/** Fill and text colour of a task state: each pair has a contrast ratio of at least 4.5:1. */
export const taskColors: Record<TaskState, { fill: string; text: string }> = {
  [TaskState.UNSPECIFIED]: { fill: "#e5e7eb", text: "#111827" },
  [TaskState.PENDING]: { fill: "#e5e7eb", text: "#111827" },
  [TaskState.LAUNCHING]: { fill: "#bfdbfe", text: "#1e3a8a" },
  [TaskState.RUNNING]: { fill: "#2563eb", text: "#ffffff" },
  [TaskState.SUCCEEDED]: { fill: "#15803d", text: "#ffffff" },
  [TaskState.FAILED]: { fill: "#b91c1c", text: "#ffffff" },
  [TaskState.ERROR]: { fill: "#7f1d1d", text: "#ffffff" },
  [TaskState.SKIPPED]: { fill: "#f3f4f6", text: "#4b5563" },
  [TaskState.CANCELLED]: { fill: "#d1d5db", text: "#1f2937" },
  [TaskState.RETRYING]: { fill: "#fde68a", text: "#78350f" },
};

/** CSS class of a run state's badge. */
export function runStateClass(state: RunState): string {
  return `badge state-${runStateName(state)}`;
}

/** Milliseconds since the epoch, or undefined for an unset timestamp. */
export function ms(t: Timestamp | undefined): number | undefined {
  return t === undefined ? undefined : timestampMs(t);
}

/** `2m 05s`, `1h 02m`, `850ms`. */
export function duration(millis: number): string {
  if (millis < 1000) return `${Math.max(0, Math.round(millis))}ms`;
  const s = Math.floor(millis / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, "0")}m`;
}

/** Duration from `start` to `end` (or to now while running); empty before it started. */
export function span(
  start: Timestamp | undefined,
  end: Timestamp | undefined,
  now: number,
): string {
  const from = ms(start);
  if (from === undefined) return "";
  return duration((ms(end) ?? now) - from);
}

/** A local date and time, to the second. */
export function when(t: Timestamp | undefined): string {
  const at = ms(t);
  if (at === undefined) return "";
  return new Date(at).toLocaleString(undefined, {
    dateStyle: "short",
    timeStyle: "medium",
  });
}

/** `in 2m 05s` or `5s ago`, from `now`; empty for an unset timestamp. */
export function fromNow(t: Timestamp | undefined, now: number): string {
  const at = ms(t);
  if (at === undefined) return "";
  const d = at - now;
  if (Math.abs(d) < 1000) return "now";
  return d > 0 ? `in ${duration(d)}` : `${duration(-d)} ago`;
}
