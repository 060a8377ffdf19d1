// The one launch path: the k8s-launcher service's handlers and embedded mode's scheduler both call
// a Launcher, so every launch, cancel, deletion, log and event request gets the same checks of its
// ids and paths before it reaches a backend, whichever way it came.
import {
  checkAttempt,
  checkLaunch,
  checkRunId,
  checkTaskName,
  type LaunchSpec,
} from "@odin/pipeline-spec";
import type {
  AttemptRef,
  LaunchResult,
  LogLine,
  LogOptions,
  ObjectEvent,
  TaskBackend,
} from "./backend.js";

function checkRef(ref: AttemptRef): AttemptRef {
  checkRunId(ref.runId);
  checkTaskName(ref.task);
  checkAttempt(ref.attempt ?? 0, true);
  return ref.attempt ? ref : { runId: ref.runId, task: ref.task };
}

/** A backend behind the launcher's request checks; it is also the scheduler's launcher port. */
export class Launcher {
  constructor(readonly backend: TaskBackend) {}

  /** Launches one attempt (idempotent per run, task and attempt). */
  launch(spec: LaunchSpec): Promise<LaunchResult> {
    checkLaunch(spec);
    return this.backend.launch(spec);
  }

  /** Stops an attempt (every attempt when `attempt` is 0 or absent); resolves to the objects removed. */
  cancel(runId: string, task: string, attempt = 0): Promise<number> {
    return this.backend.cancel(checkRef({ runId, task, attempt }));
  }

  /** Removes a run's objects; with `purgeData`, its `RUN_PATH` too (always `<DATA_PATH>/<run>`). */
  deleteRun(runId: string, purgeData: boolean): Promise<{ deleted: number; dataPurged: boolean }> {
    checkRunId(runId);
    return this.backend.deleteRun(runId, { purgeData });
  }

  /** A task's log lines (the latest attempt when none is given). */
  logs(ref: AttemptRef, options: LogOptions): AsyncIterable<LogLine> {
    return this.backend.logs(checkRef(ref), options);
  }

  /** Platform events of a task's objects. */
  events(ref: AttemptRef): Promise<ObjectEvent[]> {
    return this.backend.events(checkRef(ref));
  }
}
