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
import { CacheFiles } from "./files.js";
import { FailedPreconditionError } from "@odin/service-kit";

function checkRef(ref: AttemptRef): AttemptRef {
  checkRunId(ref.runId);
  checkTaskName(ref.task);
  checkAttempt(ref.attempt ?? 0, true);
  return ref.attempt ? ref : { runId: ref.runId, task: ref.task };
}

/** A backend behind the launcher's request checks; it is also the scheduler's launcher port. */
export class Launcher {
  private readonly files: CacheFiles | undefined;

  /**
   * `readRoots`: where the cache may read inputs and outputs (the data root first: links for cached
   * outputs are made only under it); none: the cache's file requests are refused.
   */
  constructor(
    readonly backend: TaskBackend,
    options: { readRoots?: readonly string[] } = {},
  ) {
    this.files = options.readRoots?.length ? new CacheFiles(options.readRoots) : undefined;
  }

  /**
   * Content digests of files and directories for the scheduler's cache (in order; `missing` for
   * what is not there), after making the requested links of a cached task's outputs.
   */
  async hashFiles(
    paths: readonly string[],
    links: readonly { target: string; path: string }[] = [],
  ): Promise<string[]> {
    if (!this.files)
      throw new FailedPreconditionError(
        "this launcher has no data volume to read for the cache (set ODIN_DATA_PATH)",
      );
    await this.files.link(links);
    return this.files.digests(paths);
  }

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
