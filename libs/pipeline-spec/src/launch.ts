// One attempt of one task, as the scheduler hands it to a launcher and a launcher to its backend
// (and k8s-manifests turns it into objects): the one launch type, and the checks every launch
// path runs on the ids in it, whichever transport it came by.
import { isAbsolute } from "node:path";
import type { Task } from "./model.js";
import { isDnsLabel } from "./names.js";

/** Where a task's files are, as its container (or process) sees them. */
export interface TaskPaths {
  rootPath: string;
  workPath: string;
  dataPath: string;
  runPath: string;
  taskPath: string;
}

/** One attempt of one task to start. `task` has its variables and references already substituted. */
export interface LaunchSpec {
  runId: string;
  /** Pipeline directory in the repository (`alice/sst2`). */
  pipeline: string;
  /** The commit the run is pinned to; "" when unknown. */
  commit: string;
  task: Task;
  /** 1 for the first attempt. */
  attempt: number;
  paths: TaskPaths;
}

/** Highest attempt number accepted (far above any retry policy; a guard against nonsense). */
export const maxAttempt = 1_000_000;

/**
 * A run id, task name or attempt number that cannot be used. Its name is the service kit's
 * `InvalidArgumentError`, so it reaches gRPC callers as INVALID_ARGUMENT without this pure lib
 * depending on the kit.
 */
export class InvalidIdError extends Error {
  override readonly name = "InvalidArgumentError";
}

/** A value as an error message quotes it: JSON, cut after 80 characters (ids can be huge). */
function quoted(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}… (${text.length} characters)` : text;
}

function checkLabel(value: unknown, what: string): void {
  if (typeof value !== "string" || !isDnsLabel(value)) {
    throw new InvalidIdError(
      `${what} ${quoted(value)} is not a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)`,
    );
  }
}

/** Throws unless `runId` is a DNS-1123 label (it names objects, directories and subject tokens). */
export function checkRunId(runId: string, what = "run_id"): void {
  checkLabel(runId, what);
}

/** Throws unless `task` is a DNS-1123 label. */
export function checkTaskName(task: string, what = "task"): void {
  checkLabel(task, what);
}

/** Throws unless `attempt` is a whole number from 1 (or 0 with `allowLatest`: "the latest / every attempt") to {@link maxAttempt}. */
export function checkAttempt(attempt: number, allowLatest = false): void {
  const min = allowLatest ? 0 : 1;
  if (!Number.isSafeInteger(attempt) || attempt < min || attempt > maxAttempt) {
    throw new InvalidIdError(
      `attempt ${String(attempt)} must be a whole number from ${min} to ${maxAttempt}${allowLatest ? " (0 = the latest / every attempt)" : ""}`,
    );
  }
}

/** Throws unless a launch names a valid run, task and attempt, has an image, and absolute paths. */
export function checkLaunch(spec: LaunchSpec): void {
  checkRunId(spec.runId);
  checkTaskName(spec.task.name, "task.name");
  checkAttempt(spec.attempt);
  if (spec.task.image.trim() === "") {
    throw new InvalidIdError(`task ${spec.task.name}: image is required`);
  }
  if (!isAbsolute(spec.paths.taskPath)) {
    throw new InvalidIdError(
      `paths.task_path must be an absolute path (the task's TASK_PATH), got ${JSON.stringify(spec.paths.taskPath)}`,
    );
  }
  for (const field of ["rootPath", "workPath", "dataPath", "runPath"] as const) {
    const value = spec.paths[field];
    if (value !== "" && !isAbsolute(value)) {
      throw new InvalidIdError(`paths.${field} must be absolute, got ${JSON.stringify(value)}`);
    }
  }
}
