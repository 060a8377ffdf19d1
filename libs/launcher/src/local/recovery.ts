// What a starting local backend finds of an earlier instance. An attempt whose program ran under
// its supervisor and is still running — or ended while no launcher ran, leaving its exit status —
// is adopted: the new instance follows it and reports how it ends, as if nothing had happened.
// Other attempts it launched and never saw finish are lost — their process is stopped if it is
// still there (same pid and start time) and they end ERROR/LauncherRestarted, once — and attempts
// that finished but whose terminal event the bus never took are reported again. Everything goes
// through the attempt core, told what the record says was reported, so nothing is reported twice.
import { join } from "node:path";
import { isDnsLabel } from "@odin/pipeline-spec";
import type { Logger } from "@odin/service-kit";
import type { Observation } from "../attempt/core.js";
import type { TaskStateEvent } from "../backend.js";
import { coreOf, recordObjectEvent, settleRecord } from "./attempt.js";
import { attemptFiles, attemptOfFile } from "./paths.js";
import { processInfo, readExitStatus, signalGroup } from "./process.js";
import { listDir, readRecord, terminalEvent, writeRecord, type AttemptRecord } from "./records.js";

/** Reason of the ERROR reported for an attempt that was running when the launcher went away. */
export const launcherRestartedReason = "LauncherRestarted";

/** What a starting backend owes for the attempts another instance launched. */
export interface RecoveredAttempts {
  /** Events to report: attempts lost, terminal events never taken. */
  events: TaskStateEvent[];
  /** Attempts to adopt: their program still runs under its supervisor, or left its exit status. */
  adopt: AttemptRecord[];
}

/** True while `pid` is the very process a record names (same start time) and has not exited. */
export function isSameProcess(pid: number, start: string | undefined): boolean {
  const info = processInfo(pid);
  return info !== undefined && start !== undefined && info.start === start && info.state !== "Z";
}

/** What is owed for the attempts under `logDir` that another instance than `instance` launched. */
export function recoverAttempts(
  logDir: string,
  instance: string,
  logger: Logger,
): RecoveredAttempts {
  const events: TaskStateEvent[] = [];
  const adopt: AttemptRecord[] = [];
  for (const runId of listDir(logDir)) {
    if (!isDnsLabel(runId)) continue;
    for (const task of listDir(join(logDir, runId))) {
      if (!isDnsLabel(task)) continue;
      for (const name of listDir(join(logDir, runId, task))) {
        const attempt = attemptOfFile(name);
        if (attempt === undefined || !name.endsWith(".json")) continue;
        const files = attemptFiles(logDir, runId, task, attempt);
        const path = files.record;
        let record: AttemptRecord | undefined;
        try {
          record = readRecord(path);
        } catch (error) {
          logger.warn("unreadable attempt record skipped", { path, error });
          continue;
        }
        if (record?.runId !== runId || record.task !== task || record.attempt !== attempt) {
          logger.warn("attempt record skipped: it is not one of this backend's", { path });
          continue;
        }
        if (record.launcher === instance) continue;
        if (adoptable(record, files.exitStatus)) adopt.push(record);
        else events.push(...recoverAttempt(path, record, logger));
      }
    }
  }
  return { events, adopt };
}

/** An unfinished supervised attempt whose program still runs or left its exit status. */
function adoptable(record: AttemptRecord, exitStatusFile: string): boolean {
  if (record.status !== "LAUNCHING" && record.status !== "RUNNING") return false;
  if (!record.supervised || record.pid === undefined || record.taskPath === undefined) return false;
  return (
    isSameProcess(record.pid, record.processStart) || readExitStatus(exitStatusFile) !== undefined
  );
}

function recoverAttempt(path: string, record: AttemptRecord, logger: Logger): TaskStateEvent[] {
  const core = coreOf(record);
  const now = new Date();
  let outcome: Observation | undefined = record.terminal && terminalEvent(record);
  if (record.status === "LAUNCHING" || record.status === "RUNNING") {
    const killed =
      record.pid !== undefined && killLeftover(record.pid, record.processStart, logger);
    outcome = {
      state: "ERROR",
      time: now,
      reason: launcherRestartedReason,
      message: `the launcher restarted while the attempt was running${killed ? " (its process was stopped)" : ""}; its outcome is unknown`,
    };
    recordObjectEvent(record, "Warning", launcherRestartedReason, outcome.message ?? "", now);
  }
  if (outcome === undefined) return [];
  const events = settleRecord(core, record, outcome, now.getTime());
  if (outcome.reason === launcherRestartedReason) {
    record.status = "ERROR"; // even when an ERROR was reported already
    try {
      writeRecord(path, record);
    } catch (error) {
      logger.error("local backend could not write an attempt record", { path, error });
    }
  }
  return events;
}

/**
 * Kills a process group a previous instance left behind, if it is provably its: the leader is the
 * very process recorded (same start time), or the leader is gone — Linux does not hand out a
 * number still in use as a process group id, so members left in that group are the attempt's
 * (a program whose supervisor was killed).
 */
function killLeftover(pid: number, start: string | undefined, logger: Logger): boolean {
  const info = processInfo(pid);
  if (info === undefined && processInfo(process.pid) === undefined) return false; // no /proc
  if (info !== undefined && (start === undefined || info.start !== start || info.pgrp !== pid)) {
    return false;
  }
  try {
    return signalGroup(pid, "SIGKILL");
  } catch (error) {
    logger.warn("could not stop a process left by a previous launcher", { pid, error });
    return false;
  }
}
