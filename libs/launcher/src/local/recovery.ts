// What a starting local backend finds of an earlier instance: attempts it launched and never saw
// finish are lost — their process is stopped if it is still there (same pid and start time) and
// they end ERROR/LauncherRestarted, once — and attempts that finished but whose terminal event the
// bus never took are reported again. Both go through the attempt core, told what the record says
// was reported, so nothing is reported twice.
import { join } from "node:path";
import { isDnsLabel } from "@odin/pipeline-spec";
import type { Logger } from "@odin/service-kit";
import type { Observation } from "../attempt/core.js";
import type { TaskStateEvent } from "../backend.js";
import { coreOf, recordObjectEvent, settleRecord } from "./attempt.js";
import { attemptFiles, attemptOfFile } from "./paths.js";
import { processInfo, signalGroup } from "./process.js";
import { listDir, readRecord, terminalEvent, writeRecord, type AttemptRecord } from "./records.js";

/** Reason of the ERROR reported for an attempt that was running when the launcher went away. */
export const launcherRestartedReason = "LauncherRestarted";

/** The events owed for the attempts under `logDir` that another instance than `instance` launched. */
export function recoverLostAttempts(
  logDir: string,
  instance: string,
  logger: Logger,
): TaskStateEvent[] {
  const events: TaskStateEvent[] = [];
  for (const runId of listDir(logDir)) {
    if (!isDnsLabel(runId)) continue;
    for (const task of listDir(join(logDir, runId))) {
      if (!isDnsLabel(task)) continue;
      for (const name of listDir(join(logDir, runId, task))) {
        const attempt = attemptOfFile(name);
        if (attempt === undefined || !name.endsWith(".json")) continue;
        const path = attemptFiles(logDir, runId, task, attempt).record;
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
        events.push(...recoverAttempt(path, record, logger));
      }
    }
  }
  return events;
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

/** Kills a process group a previous instance left behind, if it is provably the same process. */
function killLeftover(pid: number, start: string | undefined, logger: Logger): boolean {
  const info = processInfo(pid);
  if (info === undefined || start === undefined || info.start !== start || info.pgrp !== pid) {
    return false;
  }
  try {
    return signalGroup(pid, "SIGKILL");
  } catch (error) {
    logger.warn("could not stop a process left by a previous launcher", { pid, error });
    return false;
  }
}
