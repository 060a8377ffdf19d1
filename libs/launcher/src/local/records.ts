// The record of one attempt, a small JSON file beside its log. It is what makes launches
// idempotent across restarts, lets a restarted launcher report the attempts it lost, and keeps the
// attempt's object events. Reads and writes are synchronous on purpose: a record is a few hundred
// bytes, and a synchronous read-modify-write cannot interleave with another one in this process,
// so no lock is needed. Writes go through a temporary file and a rename, so a crash never leaves
// half a record.
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isDnsLabel } from "@odin/pipeline-spec";
import type { ObjectEvent, ReportedState, TaskStateEvent } from "../backend.js";
import { attemptOfFile } from "./paths.js";

/** Where an attempt is in its life, as the local backend tracks it. */
export type AttemptStatus =
  "LAUNCHING" | "RUNNING" | "SUCCEEDED" | "FAILED" | "ERROR" | "CANCELLED";

/** The terminal state event of an attempt, as stored (dates as ISO text). */
export interface StoredTerminal {
  state: ReportedState;
  time: string;
  exitCode?: number;
  reason?: string;
  message?: string;
  outputsJson?: string;
  imageDigest?: string;
}

/** An object event, as stored (dates as ISO text). */
export type StoredObjectEvent = Omit<ObjectEvent, "time"> & { time: string };

/** The content of `<attempt>.json`. */
export interface AttemptRecord {
  version: 1;
  runId: string;
  task: string;
  attempt: number;
  objectName: string;
  /** The backend instance that launched the attempt. */
  launcher?: string;
  status: AttemptStatus;
  /** Process id (= process group id) once spawned: the supervisor's, whose child the program is. */
  pid?: number;
  /**
   * True when the program runs under the supervisor, which writes its exit status beside the
   * record: a restarted launcher may then adopt the attempt. Older records have none.
   */
  supervised?: boolean;
  /** The attempt's `TASK_PATH` (where its outputs.json is read when it ends). */
  taskPath?: string;
  /** Start time of the process in clock ticks since boot (`/proc/<pid>/stat`), to tell a reused pid apart. */
  processStart?: string;
  launchedAt: string;
  startedAt?: string;
  finishedAt?: string;
  terminal?: StoredTerminal;
  /** States whose event `report` accepted. */
  reported: ReportedState[];
  events: StoredObjectEvent[];
}

/** The names in a directory; none when it cannot be read (missing, not a directory). */
export function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** Writes a new record; throws `EEXIST` when the attempt has one already (the launch claim). */
export function createRecord(path: string, record: AttemptRecord): void {
  writeFileSync(path, JSON.stringify(record), { flag: "wx", mode: 0o600 });
}

/** Replaces a record atomically. */
export function writeRecord(path: string, record: AttemptRecord): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
  renameSync(tmp, path);
}

/** Reads a record; undefined when there is none or it is not one (a warning is the caller's). */
export function readRecord(path: string): AttemptRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const value: unknown = JSON.parse(text);
  return isRecord(value) ? value : undefined;
}

/** Removes a record (missing is fine). */
export function removeRecord(path: string): void {
  rmSync(path, { force: true });
}

/** Removes the records of every attempt under a run's directory; returns how many there were. */
export function removeRunRecords(runDir: string): number {
  let removed = 0;
  for (const task of listDir(runDir)) {
    if (!isDnsLabel(task)) continue;
    for (const name of listDir(join(runDir, task))) {
      if (name.endsWith(".json") && attemptOfFile(name) !== undefined) {
        removeRecord(join(runDir, task, name));
        // The exit status goes with it: a later launch of the attempt starts afresh.
        removeRecord(join(runDir, task, name.replace(/\.json$/, ".exit")));
        removed++;
      }
    }
  }
  return removed;
}

/** Applies `change` to the stored record, if there is one; returns the new record. */
export function updateRecord(
  path: string,
  change: (record: AttemptRecord) => void,
): AttemptRecord | undefined {
  const record = readRecord(path);
  if (record === undefined) return undefined;
  change(record);
  writeRecord(path, record);
  return record;
}

/** The stored form of an object event. */
export function storeObjectEvent(event: ObjectEvent): StoredObjectEvent {
  return { ...event, time: event.time.toISOString() };
}

/** An object event from its stored form. */
export function loadObjectEvent(event: StoredObjectEvent): ObjectEvent {
  return { ...event, time: new Date(event.time) };
}

/** The stored form of a terminal state event. */
export function storeTerminal(event: TaskStateEvent): StoredTerminal {
  const t: StoredTerminal = { state: event.state, time: event.time.toISOString() };
  if (event.exitCode !== undefined) t.exitCode = event.exitCode;
  if (event.reason !== undefined) t.reason = event.reason;
  if (event.message !== undefined) t.message = event.message;
  if (event.outputsJson !== undefined) t.outputsJson = event.outputsJson;
  if (event.imageDigest !== undefined) t.imageDigest = event.imageDigest;
  return t;
}

/** The terminal state event of a record that has one. */
export function terminalEvent(record: AttemptRecord): TaskStateEvent | undefined {
  const t = record.terminal;
  if (t === undefined) return undefined;
  const event: TaskStateEvent = {
    runId: record.runId,
    task: record.task,
    attempt: record.attempt,
    state: t.state,
    objectName: record.objectName,
    time: new Date(t.time),
  };
  if (t.exitCode !== undefined) event.exitCode = t.exitCode;
  if (t.reason !== undefined) event.reason = t.reason;
  if (t.message !== undefined) event.message = t.message;
  if (t.outputsJson !== undefined) event.outputsJson = t.outputsJson;
  if (t.imageDigest !== undefined) event.imageDigest = t.imageDigest;
  return event;
}

const statuses = new Set<string>([
  "LAUNCHING",
  "RUNNING",
  "SUCCEEDED",
  "FAILED",
  "ERROR",
  "CANCELLED",
]);

// Records are written only by this backend, so a shape check (not a full schema) is enough to
// skip a file that is something else.
function isRecord(value: unknown): value is AttemptRecord {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Partial<AttemptRecord>;
  return (
    r.version === 1 &&
    typeof r.runId === "string" &&
    typeof r.task === "string" &&
    typeof r.attempt === "number" &&
    typeof r.objectName === "string" &&
    typeof r.status === "string" &&
    statuses.has(r.status) &&
    Array.isArray(r.reported) &&
    Array.isArray(r.events)
  );
}
