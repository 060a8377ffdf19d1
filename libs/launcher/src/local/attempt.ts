// One attempt of the local backend while its process may run: the attempt core's bookkeeping
// (src/attempt/core.ts), the durable record beside its log (records.ts), and the promises the
// backend waits on. Facts about the process — spawned as pid X, exited with code Y, never started
// — reach the core the same way whether this backend saw them or a record left by an earlier
// instance tells them.
import type { Logger } from "@odin/service-kit";
import { AttemptCore, attemptKey, type Observation } from "../attempt/core.js";
import type { ObjectEvent, TaskStateEvent } from "../backend.js";
import type { AttemptFiles } from "./paths.js";
import { storeObjectEvent, storeTerminal, writeRecord, type AttemptRecord } from "./records.js";

/** `source` of the object events the local backend makes. */
export const localEventSource = "odin-local-launcher";
/** `objectKind` of the object events the local backend makes. */
export const localObjectKind = "Process";
// Keeps a record small even for a task that keeps tripping warnings.
const maxObjectEvents = 50;

/** The local backend needs no pending timeout: a process starts or fails at once. */
const coreOptions = { defaultPendingTimeoutMs: Infinity, startedAt: 0 };

/** A core for an attempt whose record says what was reported already. */
export function coreOf(record: AttemptRecord): AttemptCore {
  const core = new AttemptCore(
    { runId: record.runId, task: record.task, attempt: record.attempt },
    { ...coreOptions, reported: record.reported },
  );
  core.observe({ kind: "named", objectName: record.objectName }, 0);
  return core;
}

/**
 * Feeds how the attempt ended to its core and, when that is to be reported, writes it into the
 * record (in memory: the caller persists it before delivering the events).
 */
export function settleRecord(
  core: AttemptCore,
  record: AttemptRecord,
  outcome: Observation,
  now: number,
): TaskStateEvent[] {
  const { events } = core.observe({ kind: "ended", outcome }, now);
  for (const event of events) {
    record.status = event.state;
    record.terminal = storeTerminal(event);
    record.finishedAt = record.terminal.time;
  }
  return events;
}

/** An object event for a record. */
export function recordObjectEvent(
  record: AttemptRecord,
  type: ObjectEvent["type"],
  reason: string,
  message: string,
  time = new Date(),
): void {
  const events = record.events;
  if (events.length >= maxObjectEvents) events.splice(1, 1);
  events.push(
    storeObjectEvent({
      time,
      type,
      reason,
      message,
      objectKind: localObjectKind,
      objectName: record.objectName,
      source: localEventSource,
      count: 1,
      attempt: record.attempt,
    }),
  );
}

function deferred(): [Promise<void>, () => void] {
  let done!: () => void;
  const promise = new Promise<void>((resolve) => (done = resolve));
  return [promise, done];
}

/** One attempt launched by this backend instance, until its process has exited. */
export class LocalAttempt {
  readonly key: string;
  readonly core: AttemptCore;
  pid?: number;
  /** Set once the process is gone (or never started). */
  processGone = false;
  /** Resolves when the process is gone (or never started). */
  readonly gone: Promise<void>;
  readonly markGone: () => void;
  /** Resolves once the process has been spawned, or has failed to be. */
  readonly spawned: Promise<void>;
  readonly markSpawned: () => void;
  /** Resolves when the attempt has settled: final record written, terminal event queued. */
  readonly settled: Promise<void>;
  readonly markSettled: () => void;
  killTimer?: NodeJS.Timeout;
  /** Looks at an adopted attempt's process (not this launcher's child) until it is gone. */
  watchTimer?: NodeJS.Timeout;

  constructor(
    readonly files: AttemptFiles,
    readonly taskPath: string,
    readonly record: AttemptRecord,
    private readonly logger: Logger,
  ) {
    this.core = coreOf(record);
    this.key = attemptKey(this.core.id);
    [this.gone, this.markGone] = deferred();
    [this.spawned, this.markSpawned] = deferred();
    [this.settled, this.markSettled] = deferred();
  }

  /** Records an object event (kept in the record, served by `events`). */
  objectEvent(type: ObjectEvent["type"], reason: string, message: string): void {
    recordObjectEvent(this.record, type, reason, message);
    this.persist();
  }

  /** Writes the record; a failure is logged (the attempt goes on). */
  persist(): void {
    try {
      writeRecord(this.files.record, this.record);
    } catch (error) {
      this.logger.error("local backend could not write an attempt record", {
        path: this.files.record,
        error,
      });
    }
  }
}
