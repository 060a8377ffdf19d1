// The local backend: each attempt of a task is a process on this machine (embedded mode). The
// task's image is ignored; its `command` + `args` run without a shell, in `TASK_PATH`, in a
// process group of their own led by a small supervisor (process.ts) that records the program's
// exit status, with a small environment. stdout and stderr go straight into one log file per
// attempt, and a small record beside it (see records.ts) makes launches idempotent and lets a
// restarted launcher adopt the attempts still running and report the ones it lost (recovery.ts).
// What becomes of an attempt — reported once, nothing after a cancel — is the attempt core's
// (src/attempt/core.ts): this class turns process facts (spawned, exited, never started) into
// facts for it.
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { appendFile, mkdir, open, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { objectName as attemptObjectName } from "@odin/pipeline-spec";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  silentLogger,
  type Logger,
} from "@odin/service-kit";
import { attemptKey, type Observation } from "../attempt/core.js";
import { EventDelivery } from "../attempt/delivery.js";
import type {
  AttemptRef,
  LaunchResult,
  LaunchSpec,
  LogLine,
  LogOptions,
  ObjectEvent,
  ReportedState,
  TaskBackend,
  TaskStateEvent,
} from "../backend.js";
import { LocalAttempt, settleRecord } from "./attempt.js";
import { readLogLines } from "./logfile.js";
import {
  attemptFiles,
  attemptOfFile,
  checkAttempt,
  checkRunId,
  checkTaskName,
  resolveUnder,
  staysUnder,
} from "./paths.js";
import {
  checkProgram,
  defaultInheritedEnv,
  defaultMaxOutputsBytes,
  findProgram,
  pickEnv,
  exitOutcome,
  processInfo,
  readExitStatus,
  readOutputs,
  signalGroup,
  spawnFailure,
  statusToExit,
  supervisedCommand,
  taskEnvironment,
} from "./process.js";
import {
  createRecord,
  listDir,
  loadObjectEvent,
  readRecord,
  removeRunRecords,
  updateRecord,
  type AttemptRecord,
} from "./records.js";
import { isSameProcess, recoverAttempts } from "./recovery.js";

export { launcherRestartedReason } from "./recovery.js";

/** How a {@link LocalBackend} is set up. */
export interface LocalBackendOptions {
  /** Directory of the log files and attempt records: `<logDir>/<run>/<task>/<attempt>.log|.json`. */
  logDir: string;
  /**
   * Root every `TASK_PATH` and `RUN_PATH` must lie below (the `DATA_PATH` of embedded mode).
   * Launches elsewhere are refused, and `deleteRun` purges nothing outside it.
   */
  dataRoot: string;
  /** Time between SIGTERM and SIGKILL when stopping a process group, in ms (default 5000). */
  killGraceMs?: number;
  /** Largest `$TASK_PATH/outputs.json` read, in bytes (default 64 KiB). */
  maxOutputsBytes?: number;
  /** Variables of `parentEnv` every task gets (default PATH, HOME, LANG). Nothing else leaks. */
  inheritEnv?: readonly string[];
  /** The environment `inheritEnv` picks from (default: this process's). */
  parentEnv?: Readonly<Record<string, string | undefined>>;
  /** Where warnings go (the ignored image, unreadable outputs, failed reports). */
  logger?: Logger;
  /**
   * How often a log follower looks for new lines when no change notification comes, and how often
   * an adopted attempt's process is looked at, in ms (default 250).
   */
  logPollMs?: number;
}

const container = "main";

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs tasks as local processes (embedded mode). Semantics:
 * - cancel: SIGTERM to the process group, SIGKILL after `killGraceMs`; a cancelled attempt
 *   reports nothing more (as the Kubernetes backend, which deletes the objects).
 * - timeout: not this backend's; the scheduler's run engine enforces a task's `timeout` (it
 *   cancels the attempt and records FAILED/DeadlineExceeded itself).
 * - restart: `close` stops the processes. A launcher that dies without closing (SIGKILL, a crash)
 *   leaves them running under their supervisors; on `start`, the next instance adopts those (and
 *   those that ended meanwhile, from the exit status they left): it follows them, serves their
 *   logs and reports how they end. Attempts it cannot account for — stopped by `close`, or whose
 *   supervisor is gone without a status — are stopped if still alive and reported ERROR with
 *   reason `LauncherRestarted`, once.
 */
export class LocalBackend implements TaskBackend {
  private readonly logDir: string;
  private readonly dataRoot: string;
  private readonly killGraceMs: number;
  private readonly maxOutputsBytes: number;
  private readonly inherited: Record<string, string>;
  private readonly logger: Logger;
  private readonly logPollMs: number;

  /** Attempts of this instance whose process may still run. */
  private readonly live = new Map<string, LocalAttempt>();
  /** Written into every record, so `start` does not mistake this instance's attempts for lost ones. */
  private readonly instance = randomUUID();
  private readonly warnedImages = new Set<string>();
  private readonly delivery: EventDelivery;
  private started = false;
  private closed = false;
  /** The bash each task's supervisor runs in (found on this process's PATH when first needed). */
  private bash: string | undefined;

  constructor(options: LocalBackendOptions) {
    this.logDir = resolve(options.logDir);
    this.dataRoot = resolve(options.dataRoot);
    if (this.dataRoot === dirname(this.dataRoot)) {
      throw new InvalidArgumentError(
        "the local backend's data root may not be the file-system root",
      );
    }
    this.killGraceMs = options.killGraceMs ?? 5000;
    this.maxOutputsBytes = options.maxOutputsBytes ?? defaultMaxOutputsBytes;
    this.inherited = pickEnv(
      options.parentEnv ?? process.env,
      options.inheritEnv ?? defaultInheritedEnv,
    );
    this.logger = options.logger ?? silentLogger;
    this.logPollMs = options.logPollMs ?? 250;
    this.delivery = new EventDelivery({
      logger: this.logger,
      baseDelayMs: 50,
      onDelivered: (event) => this.markReported(event),
    });
  }

  /** Delivers events through `report` (queued ones first), after reporting lost attempts. */
  start(report: (event: TaskStateEvent) => Promise<void>): Promise<void> {
    if (this.closed)
      return Promise.reject(new FailedPreconditionError("the local backend is closed"));
    if (this.started) {
      return Promise.reject(new FailedPreconditionError("the local backend is already started"));
    }
    this.started = true;
    const recovered = recoverAttempts(this.logDir, this.instance, this.logger);
    for (const event of recovered.events) this.delivery.send(attemptKey(event), event);
    for (const record of recovered.adopt) this.adopt(record);
    this.delivery.start(report);
    return Promise.resolve();
  }

  /** Runs the attempt's `command` + `args` as a process; a repeated launch starts nothing. */
  async launch(spec: LaunchSpec): Promise<LaunchResult> {
    if (this.closed) throw new FailedPreconditionError("the local backend is closed");
    checkRunId(spec.runId);
    checkTaskName(spec.task.name);
    checkAttempt(spec.attempt);
    checkProgram(spec);
    resolveUnder(spec.paths.runPath, this.dataRoot, "RUN_PATH");
    const taskPath = resolveUnder(spec.paths.taskPath, this.dataRoot, "TASK_PATH");
    const { runId, attempt } = spec;
    const task = spec.task.name;
    const objectName = attemptObjectName(runId, task, attempt);
    const key = attemptKey({ runId, task, attempt });
    if (this.live.has(key)) return { objectName, alreadyExisted: true };

    // Claim the attempt: creating its record is atomic, and the record outlives this process.
    // Everything up to here is synchronous, so two concurrent launches cannot both claim it.
    const files = attemptFiles(this.logDir, runId, task, attempt);
    mkdirSync(files.dir, { recursive: true, mode: 0o700 });
    // The log exists before the claim, so a claimed attempt always has one (appending nothing
    // to the log of an attempt that exists already changes nothing).
    writeFileSync(files.log, "", { flag: "a", mode: 0o600 });
    const record: AttemptRecord = {
      version: 1,
      runId,
      task,
      attempt,
      objectName,
      launcher: this.instance,
      taskPath,
      status: "LAUNCHING",
      launchedAt: new Date().toISOString(),
      reported: [],
      events: [],
    };
    try {
      createRecord(files.record, record);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST")
        return { objectName, alreadyExisted: true };
      throw error;
    }
    const live = new LocalAttempt(files, taskPath, record, this.logger);
    this.live.set(key, live);
    await this.run(live, spec);
    return { objectName, alreadyExisted: false };
  }

  /** Stops one attempt, or every running attempt of the task; resolves once they have exited. */
  async cancel(ref: AttemptRef): Promise<number> {
    checkRunId(ref.runId);
    checkTaskName(ref.task);
    if (ref.attempt !== undefined && ref.attempt !== 0) checkAttempt(ref.attempt);
    const targets = [...this.live.values()].filter(
      (a) =>
        a.record.runId === ref.runId &&
        a.record.task === ref.task &&
        (ref.attempt === undefined || ref.attempt === 0 || a.record.attempt === ref.attempt) &&
        !a.processGone &&
        !a.core.cancelled,
    );
    await Promise.all(targets.map((a) => this.stop(a, "cancel")));
    return targets.length;
  }

  /**
   * Stops the run's processes and forgets its attempts (their records go; a later launch of the
   * same attempt starts it again). Logs stay readable unless `purgeData`, which also removes
   * `RUN_PATH` — only when it is `<something below the data root>/<runId>`.
   */
  async deleteRun(
    runId: string,
    options: { purgeData: boolean; runPath?: string },
  ): Promise<{ deleted: number; dataPurged: boolean }> {
    checkRunId(runId);
    const runPath = options.purgeData ? await this.checkRunPath(runId, options.runPath) : undefined;
    const running = [...this.live.values()].filter((a) => a.record.runId === runId);
    await Promise.all(running.map((a) => (a.processGone ? a.settled : this.stop(a, "cancel"))));

    const runDir = join(this.logDir, runId);
    const deleted = removeRunRecords(runDir);
    let dataPurged = false;
    if (runPath !== undefined) {
      await rm(runDir, { recursive: true, force: true });
      dataPurged = await exists(runPath);
      if (dataPurged) await rm(runPath, { recursive: true, force: true });
    }
    return { deleted, dataPurged };
  }

  /** The attempt's log (the latest attempt when none is given): tail, then follow while it runs. */
  async *logs(ref: AttemptRef, options: LogOptions): AsyncIterable<LogLine> {
    checkRunId(ref.runId);
    checkTaskName(ref.task);
    const attempt = this.resolveAttempt(ref);
    const files = attemptFiles(this.logDir, ref.runId, ref.task, attempt);
    const pod = attemptObjectName(ref.runId, ref.task, attempt);
    if (options.pod !== undefined && options.pod !== pod) return;
    if (options.container !== undefined && options.container !== container) return;
    if (!existsSync(files.log)) {
      throw new NotFoundError(
        `no log for attempt ${attempt} of task "${ref.task}" in run "${ref.runId}"`,
      );
    }
    const live = this.live.get(attemptKey({ ...ref, attempt }));
    const follow = options.follow
      ? {
          live: () => live !== undefined && !live.processGone,
          finished: live?.gone ?? Promise.resolve(),
          signal: options.signal,
          pollMs: this.logPollMs,
        }
      : undefined;
    for await (const line of readLogLines(files.log, options.tailLines, follow)) {
      yield { pod, container, line };
    }
  }

  /** The object events this backend recorded for the attempt (the latest when none is given). */
  events(ref: AttemptRef): Promise<ObjectEvent[]> {
    try {
      checkRunId(ref.runId);
      checkTaskName(ref.task);
      const attempt = this.resolveAttempt(ref, false);
      if (attempt === undefined) return Promise.resolve([]);
      const live = this.live.get(attemptKey({ ...ref, attempt }));
      const record =
        live?.record ?? readRecord(attemptFiles(this.logDir, ref.runId, ref.task, attempt).record);
      return Promise.resolve((record?.events ?? []).map(loadObjectEvent));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Stops every running process (SIGTERM, SIGKILL after the grace period) and reporting. Their
   * records still say RUNNING, so the next instance reports them lost (ERROR/LauncherRestarted).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.live.values()].map((a) => this.stop(a, "close")));
    await this.delivery.close();
  }

  // ---- running an attempt ----

  private async run(live: LocalAttempt, spec: LaunchSpec): Promise<void> {
    const { task } = spec;
    if (task.image) {
      live.objectEvent(
        "Warning",
        "ImageIgnored",
        `image "${task.image}" is ignored: the local backend runs the command on this machine`,
      );
      if (!this.warnedImages.has(task.image)) {
        this.warnedImages.add(task.image);
        this.logger.warn("the local backend ignores task images and runs commands directly", {
          image: task.image,
          task: task.name,
        });
      }
    }

    let logFile;
    try {
      await mkdir(this.dataRoot, { recursive: true });
      if (!(await staysUnder(live.taskPath, this.dataRoot))) {
        await this.finishUnstarted(
          live,
          "ERROR",
          "InvalidTaskPath",
          this.escapeMessage(live.taskPath),
        );
        return;
      }
      await mkdir(live.taskPath, { recursive: true });
      // Checked again once it exists: a link could have appeared on the way.
      if (!(await staysUnder(live.taskPath, this.dataRoot))) {
        await this.finishUnstarted(
          live,
          "ERROR",
          "InvalidTaskPath",
          this.escapeMessage(live.taskPath),
        );
        return;
      }
      logFile = await open(live.files.log, "a", 0o600);
    } catch (error) {
      await this.finishUnstarted(
        live,
        "ERROR",
        "SetupFailed",
        `could not prepare TASK_PATH ${live.taskPath} or the log: ${errorMessage(error)}`,
      );
      return;
    }

    const [file, ...commandArgs] = task.command as [string, ...string[]];
    const env = taskEnvironment(spec, this.inherited);
    // Found here, as exec would find it, so a missing or non-executable program is reported as
    // such rather than as an exit status of its supervisor.
    const program = findProgram(file, live.taskPath, env.PATH);
    if (!("path" in program)) {
      await logFile.close();
      await this.finishUnstarted(live, "FAILED", program.reason, program.message);
      return;
    }
    let child: ChildProcess;
    try {
      this.bash ??= this.findBash();
      // A status left by an earlier launch of this attempt (its record deleted since) is not this one's.
      rmSync(live.files.exitStatus, { force: true });
      const [supervisor, supervisorArgs] = supervisedCommand(
        this.bash,
        live.files.exitStatus,
        file,
        program.path,
        [...commandArgs, ...task.args],
      );
      // No shell interprets the command: the arguments reach the program exactly as given.
      // `detached` makes the supervisor the leader of a new process group (and session), so a
      // cancel reaches everything the program started and the launcher's death reaches nothing.
      // stdout and stderr share one append-mode descriptor, so lines land in the order written.
      child = spawn(supervisor, supervisorArgs, {
        cwd: live.taskPath,
        env,
        detached: true,
        stdio: ["ignore", logFile.fd, logFile.fd],
        windowsHide: true,
      });
    } catch (error) {
      await logFile.close();
      await this.finishUnstarted(
        live,
        "FAILED",
        "SpawnFailed",
        `cannot run ${file}: ${errorMessage(error)}`,
      );
      return;
    }
    // Listeners first: "spawn" and "error" are emitted on the next tick.
    child.on("spawn", () => this.onSpawn(live, spec, child));
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (live.pid !== undefined || child.pid !== undefined) {
        this.logger.warn("local task process reported an error", {
          objectName: live.record.objectName,
          error,
        });
        return;
      }
      const { reason, message } = spawnFailure(error, this.bash ?? "bash", live.taskPath);
      void this.finishUnstarted(
        live,
        "FAILED",
        reason,
        `cannot start the task's supervisor: ${message}`,
      );
    });
    child.on("exit", (code, signal) => {
      void this.onExit(live, code, signal).catch((error: unknown) =>
        this.logger.error("local backend failed to record a process exit", {
          objectName: live.record.objectName,
          error,
        }),
      );
    });
    // The child holds its own copies of the descriptor once spawn has returned.
    await logFile.close();
    await live.spawned;
  }

  private escapeMessage(taskPath: string): string {
    return `TASK_PATH ${taskPath} leads out of the data root ${this.dataRoot} through a symbolic link`;
  }

  private onSpawn(live: LocalAttempt, spec: LaunchSpec, child: ChildProcess): void {
    const pid = child.pid;
    if (pid === undefined) return;
    live.pid = pid;
    const info = processInfo(pid);
    live.record.pid = pid;
    live.record.supervised = true;
    if (info) live.record.processStart = info.start;
    live.record.status = "RUNNING";
    live.record.startedAt = new Date().toISOString();
    live.objectEvent("Normal", "Started", `Started process ${pid} (${spec.task.command[0]})`);
    for (const event of live.core.observe({ kind: "running" }, Date.now()).events) {
      this.delivery.send(live.key, event);
    }
    live.markSpawned();
  }

  private async onExit(
    live: LocalAttempt,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): Promise<void> {
    // No pid: the spawn failed, and the "error" handler reports it.
    if (live.processGone || live.pid === undefined) return;
    live.processGone = true;
    clearTimeout(live.killTimer);
    clearInterval(live.watchTimer);
    // Whatever the task left running in its group goes with it, as in a container.
    signalGroup(live.pid, "SIGKILL");
    live.markGone();
    if (this.closed) {
      // The record keeps saying RUNNING and the status of a program this launcher stopped is
      // dropped: the next instance reports the attempt lost.
      rmSync(live.files.exitStatus, { force: true });
      this.finish(live);
      return;
    }
    if (live.core.cancelled) {
      live.record.status = "CANCELLED";
      live.record.finishedAt = new Date().toISOString();
      live.persist();
      this.finish(live);
      return;
    }
    const outputs = await readOutputs(live.taskPath, this.maxOutputsBytes);
    if (outputs.problem !== undefined) {
      live.objectEvent("Warning", "OutputsIgnored", outputs.problem);
      this.logger.warn("task outputs ignored", {
        objectName: live.record.objectName,
        problem: outputs.problem,
      });
    }
    // The supervisor's record of the program's exit; without one (the supervisor itself was
    // killed), what became of the supervisor, if this launcher saw it.
    const status = readExitStatus(live.files.exitStatus);
    const exit = status !== undefined ? statusToExit(status) : { code, signal };
    const outcome: Observation =
      exit.code === null && exit.signal === null
        ? {
            state: "ERROR",
            reason: "ProcessLost",
            message:
              "the task's process ended without leaving its exit status (its supervisor was killed)",
          }
        : exitOutcome(exit.code, exit.signal, outputs.json);
    if (outcome.state === "SUCCEEDED") {
      live.objectEvent("Normal", "Completed", "exited with code 0");
    } else {
      live.objectEvent("Warning", "Failed", outcome.message ?? "failed");
    }
    this.settle(live, outcome);
  }

  /**
   * Takes over an attempt a previous instance launched whose program still runs (or ended while
   * no launcher ran): its process is looked at every `logPollMs` until it is gone, then it ends
   * as if this instance had launched it.
   */
  private adopt(record: AttemptRecord): void {
    const files = attemptFiles(this.logDir, record.runId, record.task, record.attempt);
    const live = new LocalAttempt(files, record.taskPath!, record, this.logger);
    const pid = record.pid!;
    live.pid = pid;
    record.launcher = this.instance;
    record.status = "RUNNING";
    live.objectEvent(
      "Normal",
      "Adopted",
      `process ${pid} outlived the launcher that started it; this launcher follows it`,
    );
    this.live.set(live.key, live);
    live.markSpawned();
    this.logger.info("adopted a task process left by a previous launcher", {
      objectName: record.objectName,
      pid,
    });
    for (const event of live.core.observe({ kind: "running" }, Date.now()).events) {
      this.delivery.send(live.key, event);
    }
    const check = (): void => {
      if (live.processGone || isSameProcess(pid, record.processStart)) return;
      clearInterval(live.watchTimer);
      // Not this launcher's child: its exit status is the one its supervisor wrote.
      void this.onExit(live, null, null).catch((error: unknown) =>
        this.logger.error("local backend failed to record a process exit", {
          objectName: record.objectName,
          error,
        }),
      );
    };
    live.watchTimer = setInterval(check, this.logPollMs);
    check();
  }

  /** Ends an attempt whose process never ran (bad TASK_PATH, command not found …), saying why in its log too. */
  private async finishUnstarted(
    live: LocalAttempt,
    state: ReportedState,
    reason: string,
    message: string,
  ): Promise<void> {
    if (live.processGone) return;
    await appendFile(live.files.log, `odin: ${message}\n`).catch(() => undefined);
    live.processGone = true;
    live.markGone();
    live.objectEvent("Warning", "Failed", message);
    this.settle(live, { state, reason, message });
  }

  /** The attempt ended: the record says how before the event goes out (a restart re-reports it). */
  private settle(live: LocalAttempt, outcome: Observation): void {
    const events = settleRecord(live.core, live.record, outcome, Date.now());
    if (live.core.cancelled && events.length === 0) live.record.status = "CANCELLED";
    live.persist();
    for (const event of events) this.delivery.send(live.key, event);
    this.finish(live);
  }

  private finish(live: LocalAttempt): void {
    this.live.delete(live.key);
    live.markSpawned();
    live.markSettled();
  }

  /** Stops the process group: SIGTERM, then SIGKILL after the grace period; resolves when settled. */
  private async stop(live: LocalAttempt, why: "cancel" | "close"): Promise<void> {
    if (why === "cancel") live.core.observe({ kind: "cancelling" }, Date.now());
    await live.spawned;
    if (!live.processGone && live.pid !== undefined) {
      const pid = live.pid;
      live.objectEvent(
        "Normal",
        "Killing",
        `Stopping process group ${pid} (${why}): SIGTERM, then SIGKILL after ${this.killGraceMs} ms`,
      );
      signalGroup(pid, "SIGTERM");
      live.killTimer ??= setTimeout(() => {
        if (!live.processGone) signalGroup(pid, "SIGKILL");
      }, this.killGraceMs);
    }
    await live.settled;
  }

  // ---- reporting ----

  private markReported(event: TaskStateEvent): void {
    const key = attemptKey(event);
    const live = this.live.get(key);
    if (live) {
      if (!live.record.reported.includes(event.state)) live.record.reported.push(event.state);
      live.persist();
      return;
    }
    try {
      updateRecord(
        attemptFiles(this.logDir, event.runId, event.task, event.attempt).record,
        (r) => {
          if (!r.reported.includes(event.state)) r.reported.push(event.state);
        },
      );
    } catch (error) {
      this.logger.warn("local backend could not mark an event reported", { key, error });
    }
  }

  // ---- helpers ----

  /** The bash that runs the supervisors, found on this process's PATH. */
  private findBash(): string {
    const found = findProgram("bash", "/", process.env.PATH);
    if ("path" in found) return found.path;
    throw new FailedPreconditionError(
      "the local backend runs each task under a small bash supervisor (it records the task's exit status, so a restarted odin server can adopt running tasks), and no bash is on PATH; install bash",
    );
  }

  /** The attempt a ref names: the given one, or the latest this backend knows of. */
  private resolveAttempt(ref: AttemptRef): number;
  private resolveAttempt(ref: AttemptRef, required: false): number | undefined;
  private resolveAttempt(ref: AttemptRef, required = true): number | undefined {
    if (ref.attempt !== undefined && ref.attempt !== 0) {
      checkAttempt(ref.attempt);
      return ref.attempt;
    }
    let latest: number | undefined;
    for (const a of this.live.values()) {
      if (a.record.runId === ref.runId && a.record.task === ref.task) {
        latest = Math.max(latest ?? 0, a.record.attempt);
      }
    }
    for (const name of listDir(join(this.logDir, ref.runId, ref.task))) {
      const n = attemptOfFile(name);
      if (n !== undefined) latest = Math.max(latest ?? 0, n);
    }
    if (latest === undefined && required) {
      throw new NotFoundError(`task "${ref.task}" of run "${ref.runId}" has no attempts here`);
    }
    return latest;
  }

  /** The RUN_PATH to purge, checked: `<data root or below>/<runId>`, its parent not a way out. */
  private async checkRunPath(runId: string, given: string | undefined): Promise<string> {
    const runPath = resolveUnder(given ?? join(this.dataRoot, runId), this.dataRoot, "RUN_PATH");
    if (basename(runPath) !== runId) {
      throw new InvalidArgumentError(
        `RUN_PATH ${JSON.stringify(runPath)} does not end in the run id "${runId}"; refusing to delete it`,
      );
    }
    const parent = dirname(runPath);
    if (
      parent !== this.dataRoot &&
      (await exists(parent)) &&
      !(await staysUnder(parent, this.dataRoot))
    ) {
      throw new InvalidArgumentError(
        `RUN_PATH ${JSON.stringify(runPath)} leads out of the data root through a symbolic link; refusing to delete it`,
      );
    }
    return runPath;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
