import { randomUUID } from "node:crypto";
import { requestsEarlyExit, RunEngine, type Decision, type TaskStatus } from "@odin/dag";
import {
  partitionOf,
  runPartitions,
  subjects,
  type EventBus,
  type Subscription,
  type WorkShare,
} from "@odin/events";
import type { WebhookNotifier } from "@odin/notify";
import {
  isFinishedRun as isFinished,
  isTerminalState,
  mergeNotifyTargets,
  MissingOutputError,
  reportedStates,
  taskStates,
  type NotifyTarget,
  type ParameterValue,
  type Pipeline,
  type Problem,
  type Task,
  type ReportedState,
  type TaskState,
} from "@odin/pipeline-spec";
import { events, taskStateFromProto } from "@odin/proto";
import { partitionKey, RunPlacement } from "./placement.js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  isRetryable,
  NotFoundError,
  type Logger,
  type SchedulerMetrics,
} from "@odin/service-kit";
import { StoreUnavailableError, type Watch } from "@odin/run-store";
import { type CheckoutSource, type LauncherPort, type PipelineSource } from "./ports.js";
import { runToProto, taskRunToProto } from "./convert.js";
import type { RunRecord, TaskRecord } from "./records.js";
import { resolveTask } from "./resolve.js";
import {
  cacheKey,
  defaultCacheTtlMs,
  imageIdentity,
  isCacheable,
  pinnedDigest,
  resultDigestOf,
  taskFilePaths,
  type CacheEntry,
  type CachedFile,
} from "./cache.js";
import type { RecordChange, SchedulerStore } from "./store.js";
import { RunIndex, type Cursor, type RunFilter } from "./run-index.js";
import {
  defaultPublicUrl,
  deliverRunEnd,
  dueNotifications,
  orphanedNotifications,
} from "./notifications.js";

/** What the scheduler needs; every part is a port with a production and an embedded adapter. */
export interface SchedulerOptions {
  store: SchedulerStore;
  bus: EventBus;
  pipelines: PipelineSource;
  checkouts: CheckoutSource;
  launcher: LauncherPort;
  /** `DATA_PATH` of new runs: where their `RUN_PATH` directories go. */
  dataPath: string;
  /** Most tasks launching or running at once across all runs (the global cap). */
  maxRunningTasks?: number;
  /**
   * Name of the durable consumers of task events (default `dag-scheduler`): `<name>-<partition>`
   * for each partition's, `<name>` for events published before partitions.
   */
  consumer?: string;
  /** Where the counts of runs and tasks, launch latencies and run ends are recorded. */
  metrics?: SchedulerMetrics;
  logger: Logger;
  now?: () => number;
  /** Posts a run's end to its pipeline's `notify:` webhooks; unset: nothing is posted. */
  notifier?: WebhookNotifier;
  /** The web UI's address, for the run links notifications carry (default {@link defaultPublicUrl}). */
  publicUrl?: string | (() => string | undefined);
  /** How old a cached result may be for a task that sets no `cache_ttl` (default 30 days). */
  cacheTtlMs?: number;
  /**
   * Which runs this replica drives, among the live replicas (`Membership` over the event bus): the
   * runs of the partitions it owns ({@link partitionKey}). Unset: every run (one replica,
   * embedded mode).
   */
  share?: WorkShare;
}

/** Pages of GetRun up to this many tasks read their records one by one rather than the whole run. */
const pagedReadsUpTo = 100;

/** Pipelines of runs driven by other replicas kept for reading their tasks. */
const readPipelinesKept = 16;

/** How often at most the replica driving a run records its task counts in the run's record. */
const countsEveryMs = 1000;

/** What a launch left for the cache to do once its attempt succeeds. */
interface CacheWork {
  /** Digests of the task's path inputs, taken when the attempt was launched; unset: not recorded. */
  inputs?: Promise<CachedFile[] | undefined>;
}

/** A filter of cache entries (`odin cache ls|rm`). */
export interface CacheFilter {
  pipeline?: string;
  task?: string;
  /** Keys or unique prefixes (at least 8 hex digits). */
  keys?: readonly string[];
}

/** A change a watcher of one run is told about; `lost`: the run store lost it (NATS lost its storage). */
export type RunChange =
  | { kind: "run"; record: RunRecord }
  | { kind: "task"; task: string; record: TaskRecord }
  | { kind: "lost" };

/** A run with all its tasks (absent records filled in as PENDING). */
export interface RunView {
  run: RunRecord;
  tasks: { name: string; record: TaskRecord }[];
}

interface ActiveRun {
  record: RunRecord;
  pipeline: Pipeline;
  engine: RunEngine;
  /** Set when the store lost the run: nothing more is done for it. */
  lost?: boolean;
  /** The counts last recorded in the run's record (JSON), and the pending write's timer. */
  countsRecorded?: string;
  countsTimer?: NodeJS.Timeout;
}

/** The state a task event reports, if it is one a launcher may report. */
function reportedState(e: events.TaskEvent): ReportedState | undefined {
  const state = taskStateFromProto(e.state);
  return (reportedStates as readonly (TaskState | undefined)[]).includes(state)
    ? (state as ReportedState)
    : undefined;
}
/** The global cap when none is configured. */
const defaultMaxRunningTasks = 10_000;
/** How long `delete` of a running run waits for its cancel before ending it itself. */
const deleteCancelWaitMs = 10_000;

function statusOf(record: TaskRecord | undefined): TaskStatus {
  if (!record) return { state: "PENDING", attempt: 0 };
  const status: TaskStatus = { state: record.state, attempt: record.attempt };
  if (record.launchTime !== undefined) status.launchTime = record.launchTime;
  if (record.nextAttemptTime !== undefined) status.nextAttemptTime = record.nextAttemptTime;
  if (record.firstAttempt !== undefined) status.firstAttempt = record.firstAttempt;
  if (record.state === "SUCCEEDED" && record.outputsJson && earlyExitIn(record.outputsJson))
    status.earlyExit = true;
  return status;
}

/** Whether reported outputs (JSON text) ask to end the run early; unreadable outputs do not. */
function earlyExitIn(outputsJson: string): boolean {
  try {
    return requestsEarlyExit(JSON.parse(outputsJson));
  } catch {
    return false;
  }
}

const pendingRecord: TaskRecord = { state: "PENDING", attempt: 0 };

/** Env variable names whose values are not shown in a task's launched command. */
const SECRET_NAME = /(TOKEN|PASSWORD|PASSWD|SECRET|KEY|CREDENTIAL)/i;

/** Whether a failure may pass by itself: the store, or a service called, did not answer. */
function isTransient(err: unknown): boolean {
  return err instanceof StoreUnavailableError || isRetryable(err);
}

/** How long to wait before trying again after `tries` failures: 0.5 s, doubling up to 5 s. */
function backoffMs(tries: number): number {
  return Math.min(5_000, 500 * 2 ** Math.min(tries, 4));
}

/** Decisions (store writes, launches) acted on at once. */
const maxDecisionsInFlight = 256;

/**
 * The dag-scheduler: the only writer of runs. Every replica follows every change of the run store
 * (its watch); the live replicas split the unfinished runs between them (`share`), and each keeps
 * a RunEngine for the runs it drives. Decisions are recorded by compare-and-set, so while two
 * replicas both drive a run (a moment around a replica joining or dying) only one records each
 * decision — and only the one that recorded a launch performs it. Runs are split by partition
 * ({@link partitionOf}): task events from launchers carry their run's partition in their subject,
 * and each replica consumes the durable consumers of its own partitions, so the replica driving a
 * run applies its events — with the records it has just written, so its compare-and-sets hold.
 * Events are applied to the store idempotently, so a replica that still consumes a partition it
 * has just lost (or one of the events launchers published before partitions, on a consumer every
 * replica shares) changes nothing but the records.
 */
export class Scheduler {
  private readonly runs = new Map<string, ActiveRun>();
  private readonly loading = new Map<string, Promise<ActiveRun | undefined>>();
  private readonly watchers = new Map<string, Set<(change: RunChange) => void>>();
  private readonly index = new RunIndex();
  private readonly runListeners = new Set<(id: string, run: RunRecord | undefined) => void>();
  private readonly stops: (() => Promise<void>)[] = [];
  private queue: (() => Promise<void>)[] = [];
  private queueHead = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private closed = false;
  /** Bumped when the store lost everything: engines being built before that are dropped. */
  private storeGeneration = 0;
  /** Every cache entry's key → its partial key and creation time (from the store's watch). */
  private readonly cacheIndex = new Map<
    string,
    { partial: string; createTime: number; task: string }
  >();
  /** How many entries each task has (`<pipeline>\0<task>`): a task with none misses at once. */
  private readonly taskIndex = new Map<string, number>();
  /** How many entries have each partial key: a launch whose partial key is unknown misses at once. */
  private readonly partialIndex = new Map<string, number>();
  /** The digest each image last ran as (reported by launchers). */
  private readonly imageDigests = new Map<string, string>();
  /** Launches of this replica whose success the cache must record: `<run>/<task>/<attempt>`. */
  private readonly cacheWork = new Map<string, CacheWork>();
  /** Result digests being computed here: `<run>/<task>` → the digest (undefined on failure). */
  private readonly results = new Map<string, Promise<string | undefined>>();
  /** Tasks launching or running in each run another replica drives (from its record's counts). */
  private readonly elsewhere = new Map<string, number>();
  private elsewhereTotal = 0;
  /** The task-event consumers of the partitions this replica owns, by partition. */
  private readonly partitionConsumers = new Map<number, Subscription>();
  /** The latest change of {@link partitionConsumers}: one at a time. */
  private consuming: Promise<void> = Promise.resolve();
  /** Pipelines of runs read here but driven elsewhere (`<run>@<commit>`), the last few. */
  private readonly readPipelines = new Map<string, Promise<Pipeline>>();
  /** Chooses new runs' ids so that the replicas get even work. */
  private readonly placement: RunPlacement;

  constructor(private readonly options: SchedulerOptions) {
    this.placement = new RunPlacement(options.share, () => this.index.unfinished());
    options.store.onRunWritten = (record, revision) =>
      this.index.apply(record.id, record, revision);
    // Each change is published by the replica that recorded it, once.
    options.store.onRecordWritten = (change) => this.publish(change);
    options.metrics?.follow({
      runs: () => {
        const counts: Record<string, number> = { PENDING: 0, RUNNING: 0 };
        for (const { record } of this.runs.values())
          counts[record.state] = (counts[record.state] ?? 0) + 1;
        return counts;
      },
      tasks: () => {
        const counts = Object.fromEntries(taskStates.map((state) => [state, 0]));
        for (const { engine } of this.runs.values())
          for (const [state, n] of Object.entries(engine.counts()))
            counts[state] = (counts[state] ?? 0) + n;
        return counts;
      },
      queuedTasks: () => {
        let n = 0;
        for (const { engine } of this.runs.values()) n += engine.queuedTasks;
        return n;
      },
    });
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private get log(): Logger {
    return this.options.logger;
  }

  /** Follows the store, picks up unfinished runs (after a restart), and consumes task events. */
  async start(): Promise<void> {
    // Task changes matter here for the runs this replica drives (or is loading) and those it
    // streams to a caller; the others are only remembered, undecoded.
    const watch: Watch = await this.options.store.watch((change) => this.onChange(change), {
      tasksOf: (runId) =>
        this.runs.has(runId) || this.loading.has(runId) || this.watchers.has(runId),
    });
    this.stops.push(() => watch.stop());
    for await (const entry of this.options.store.cacheEntries())
      this.indexCacheEntry(entry.key, entry);
    for (const image of await this.options.store.images())
      this.imageDigests.set(image.image, image.digest);
    for (const { record, revision } of await this.options.store.listRuns()) {
      this.index.apply(record.id, record, revision);
    }
    for (const record of this.index.unfinished()) this.noteElsewhere(record.id, record);
    // The index may hold newer records than the listing (from the watch): activate those.
    for (const record of this.index.unfinished()) {
      if (this.owns(record.id)) await this.activate(record);
    }
    const share = this.options.share;
    if (share) {
      const stop = share.onChange(() => this.rebalance());
      this.stops.push(() => Promise.resolve(void stop()));
    }
    // Events launchers published before partitions: every replica shares their consumer.
    const unpartitioned = await this.consumeTaskEvents(
      this.consumerName(),
      subjects.unpartitionedTasks,
    );
    this.stops.push(() => unpartitioned.stop());
    this.stops.push(() => this.stopPartitionConsumers());
    await this.followPartitions();
    this.pump();
    if (this.options.notifier) {
      // Notifications a stopped replica left pending are taken over (now, and every minute).
      this.takeOverNotifications();
      const sweep = setInterval(() => this.takeOverNotifications(), 60_000);
      sweep.unref();
      this.stops.push(() => Promise.resolve(clearInterval(sweep)));
    }
  }

  /** Stops following the store and consuming events. Runs go on when a replica starts again. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const run of this.runs.values()) if (run.countsTimer) clearTimeout(run.countsTimer);
    for (const stop of this.stops.reverse()) await stop().catch(() => undefined);
  }

  // -- API ------------------------------------------------------------------------------------

  /** Starts a run of a pipeline at a commit (default: the newest). A repeated request id returns the same run. */
  async submit(input: {
    pipeline: string;
    commit?: string;
    labels?: Record<string, string>;
    requestId?: string;
    submittedBy: string;
    /** Values of the pipeline's parameters (text is read as the declared type). */
    parameters?: Readonly<Record<string, unknown>>;
    /**
     * The run's id, chosen by the caller (a schedule's tick claim): submitting it again creates
     * nothing and returns the run made first. Default: a new id.
     */
    runId?: string;
    /** Reuse no earlier result (`odin run --no-cache`). */
    noCache?: boolean;
    /** Webhooks its end is posted to besides the pipeline's (a schedule's `notify`). */
    notify?: readonly NotifyTarget[];
  }): Promise<RunRecord> {
    // A request id's claim names its run id before the run is written. A repeated request finds
    // the run, or, when the first call never wrote it (its process died between the two writes, or
    // it is still on its way), writes it itself under the claimed id: the run store creates a run
    // once, so whichever call gets there second returns the first one's run.
    let claimedRunId: string | undefined;
    if (input.requestId) {
      checkRequestId(input.requestId);
      claimedRunId = await this.options.store.runOfRequest(input.requestId);
      const existing = claimedRunId && (await this.options.store.getRun(claimedRunId));
      if (existing) return existing;
    }
    for (const [k, v] of Object.entries(input.labels ?? {})) {
      if (!/^[A-Za-z0-9][-A-Za-z0-9_./]{0,62}$/.test(k) || v.length > 63) {
        throw new InvalidArgumentError(
          `label ${k}=${v} is not a valid label (keys and values up to 63 characters)`,
        );
      }
    }
    const got = await this.options.pipelines.getPipeline(
      input.pipeline,
      input.commit || undefined,
      input.parameters ?? {},
    );
    if (!got.pipeline) {
      const errors = got.problems.filter((p: Problem) => p.severity === "error");
      throw new InvalidArgumentError(
        // The first problem in the message itself: HTTP and grpcurl callers read the message first.
        `pipeline ${input.pipeline} at commit ${got.commit.slice(0, 12)} cannot run: ${errors[0]?.message ?? "it is not valid"}${errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length === 2 ? "" : "s"})` : ""}`,
        { problems: errors },
      );
    }
    const pipeline = got.pipeline;
    // A fresh id is placed where the replicas' work is least; it counts there until written.
    const placed =
      claimedRunId || input.runId
        ? undefined
        : this.placement.place(pipeline.name, pipeline.tasks.length);
    try {
      let runId = claimedRunId ?? input.runId ?? placed!.runId;
      if (input.requestId && !claimedRunId) {
        runId = await this.options.store.claimRequest(input.requestId, runId);
        const first = await this.options.store.getRun(runId);
        if (first) return first;
      }
      return await this.create(input, pipeline, got, runId);
    } finally {
      placed?.done();
    }
  }

  /** Writes a submitted run under `runId` and starts it if this replica drives it. */
  private async create(
    input: Parameters<Scheduler["submit"]>[0],
    pipeline: Pipeline,
    got: { commit: string; parameters: Record<string, ParameterValue> },
    runId: string,
  ): Promise<RunRecord> {
    // A templated pipeline's directory is rendered for the run with its parameters; a template
    // that does not render refuses the run here, before anything is written.
    const checkout = await this.options.checkouts.acquire(got.commit, runId, {
      pipeline: pipeline.path,
      parameters: got.parameters,
      attempt: 1,
    });
    const dataPath = this.options.dataPath.replace(/\/+$/, "") || "/";
    const record: RunRecord = {
      id: runId,
      pipeline: pipeline.path,
      pipelineName: pipeline.name,
      commit: checkout.commit,
      rootPath: checkout.path,
      ...(checkout.workPath
        ? { workPath: checkout.workPath, workDigest: checkout.workDigest ?? "" }
        : {}),
      dataPath,
      runPath: `${dataPath === "/" ? "" : dataPath}/${runId}`,
      state: "PENDING",
      attempt: 1,
      labels: { ...input.labels },
      taskCount: pipeline.tasks.length,
      createTime: this.now(),
      cancelRequested: false,
      submittedBy: input.submittedBy,
    };
    if (Object.keys(got.parameters).length > 0) record.parameters = got.parameters;
    if (input.noCache) record.noCache = true;
    if (input.notify && input.notify.length > 0) record.notify = mergeNotifyTargets(input.notify);
    if (!(await this.options.store.createRun(record))) {
      // The id was given and another submit of it got there first: that one is the run.
      const first = await this.getRun(runId);
      if (first.commit !== checkout.commit)
        await this.options.checkouts.release(checkout.commit, runId, 1).catch(() => undefined);
      return first;
    }
    this.log.info("run submitted", {
      run: runId,
      pipeline: pipeline.path,
      commit: checkout.commit,
      tasks: pipeline.tasks.length,
    });
    // The replica that drives it starts it (here, or from its watch).
    if (this.owns(runId)) await this.activate(record, pipeline);
    this.pump();
    return record;
  }

  /**
   * A fresh id for a run of a pipeline, chosen as a submit without one would (a schedule or
   * trigger names its run before submitting it).
   */
  newRunId(pipelineName: string): string {
    return this.placement.place(pipelineName, 0).runId;
  }

  /** A run and its tasks in pipeline order. */
  async get(runId: string): Promise<RunView> {
    const run = await this.getRun(runId);
    return { run, tasks: await this.tasksOf(run) };
  }

  /** A run's record. */
  async getRun(runId: string): Promise<RunRecord> {
    const run = await this.options.store.getRun(runId);
    if (!run) throw new NotFoundError(`no run ${runId} — "odin status" lists the runs`);
    return run;
  }

  /**
   * A run and one page of its tasks in pipeline order, with the number of tasks. A small page
   * reads only its own tasks' records: a client polling a 10,000-task run for its state with a
   * page of one must not make the store list 10,000 keys each time.
   */
  async getPage(
    runId: string,
    start: number,
    size: number,
  ): Promise<RunView & { taskCount: number }> {
    const run = await this.getRun(runId);
    const pipeline = await this.pipelineForReading(run);
    const names = pipeline.tasks.slice(start, start + size).map((t) => t.name);
    const records =
      names.length <= pagedReadsUpTo
        ? new Map(
            await Promise.all(
              names.map(
                async (name) => [name, await this.options.store.getTask(run.id, name)] as const,
              ),
            ),
          )
        : await this.options.store.listTasks(run.id);
    return {
      run,
      tasks: names.map((name) => ({ name, record: records.get(name) ?? pendingRecord })),
      taskCount: pipeline.tasks.length,
    };
  }

  /**
   * The pipeline of a run, to read its tasks in order: the engine's when this replica drives the
   * run, else asked of the registry once and kept for the last few runs read here — a client
   * polling a run another replica drives must not fetch its 10,000-task pipeline each time.
   */
  private pipelineForReading(run: RunRecord): Promise<Pipeline> {
    const driven = this.runs.get(run.id)?.pipeline;
    if (driven) return Promise.resolve(driven);
    const key = `${run.id}@${run.commit}`;
    let got = this.readPipelines.get(key);
    if (got === undefined) {
      got = this.pipelineOf(run);
      void got.catch(() => this.readPipelines.delete(key));
      this.readPipelines.set(key, got);
      // Oldest first in a Map: forget the oldest beyond the few kept.
      for (const k of this.readPipelines.keys()) {
        if (this.readPipelines.size <= readPipelinesKept) break;
        this.readPipelines.delete(k);
      }
    }
    return got;
  }

  /** A run's tasks in pipeline order (absent records filled in as PENDING). */
  async tasksOf(run: RunRecord): Promise<RunView["tasks"]> {
    const pipeline = await this.pipelineForReading(run);
    const records = await this.options.store.listTasks(run.id);
    return pipeline.tasks.map((t) => ({
      name: t.name,
      record: records.get(t.name) ?? pendingRecord,
    }));
  }

  /**
   * Some of a run's tasks, in pipeline order, each with its record (PENDING when it has none), and
   * the names its pipeline does not have. A run this replica is running answers from memory; for
   * any other only the named tasks' keys are read, not the run's every task.
   */
  async tasksNamed(
    runId: string,
    names: readonly string[],
  ): Promise<RunView & { unknown: string[] }> {
    const active = this.runs.get(runId);
    const run = active?.record ?? (await this.getRun(runId));
    const pipeline = active?.pipeline ?? (await this.pipelineForReading(run));
    const wanted = new Set(names);
    const tasks = pipeline.tasks.filter((t) => wanted.has(t.name)).map((t) => t.name);
    const known = new Set(tasks);
    const unknown = [...wanted].filter((n) => !known.has(n));
    const store = this.options.store;
    const records = active
      ? tasks.map((t) => store.cachedTask(runId, t))
      : await Promise.all(tasks.map((t) => store.getTask(runId, t)));
    return {
      run,
      tasks: tasks.map((name, i) => ({ name, record: records[i] ?? pendingRecord })),
      unknown,
    };
  }

  /**
   * A run as a watcher that has just called {@link follow} should start from: its record, and its
   * tasks when asked. For a run this replica is running both come from memory, as of the store
   * changes it has applied — the same changes `follow` reports after them — so opening a
   * 10,000-task run reads no key from the store; for any other run, from the store.
   */
  async watchView(
    runId: string,
  ): Promise<{ run: RunRecord; tasks(): RunView["tasks"] | Promise<RunView["tasks"]> }> {
    const active = this.runs.get(runId);
    if (active) {
      const store = this.options.store;
      return {
        run: active.record,
        tasks: () =>
          active.pipeline.tasks.map((t) => ({
            name: t.name,
            record: store.cachedTask(runId, t.name) ?? pendingRecord,
          })),
      };
    }
    const run = await this.getRun(runId);
    return { run, tasks: () => this.tasksOf(run) };
  }

  /** A page of runs, newest first, filtered, from memory (every replica follows every run). */
  list(filter: RunFilter, size: number, after?: Cursor): { runs: RunRecord[]; next?: Cursor } {
    return this.index.page(filter, size, after);
  }

  /** The unfinished runs this replica drives (the live replicas split them). */
  *activeRuns(): IterableIterator<RunRecord> {
    for (const active of this.runs.values()) yield active.record;
  }

  /** Calls `onChange` with every run created, changed or removed from now on; returns a function to stop. */
  followRuns(onChange: (id: string, run: RunRecord | undefined) => void): () => void {
    this.runListeners.add(onChange);
    return () => this.runListeners.delete(onChange);
  }

  /** Follows a run: `onChange` hears every change from now on; returns a function to stop. */
  follow(runId: string, onChange: (change: RunChange) => void): () => void {
    let set = this.watchers.get(runId);
    if (!set) this.watchers.set(runId, (set = new Set()));
    set.add(onChange);
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.watchers.delete(runId);
    };
  }

  /** Cancels a run: running tasks are stopped, the others will not start. An ended run is returned unchanged. */
  async cancel(runId: string, reason = ""): Promise<RunRecord> {
    const updated = await this.options.store.updateRun(runId, (r) =>
      isFinished(r.state) || r.cancelRequested
        ? undefined
        : { ...r, cancelRequested: true, message: reason || r.message },
    );
    if (!updated) throw new NotFoundError(`no run ${runId}`);
    // An ended run is returned as it is: cancelling is idempotent (the caller sees it ended).
    // Every replica's engine (this one's too) cancels when the store's watch shows the request.
    return updated;
  }

  /** Runs a finished run's failed, errored, skipped and cancelled tasks again; keeps what succeeded. */
  async retry(runId: string, requestId?: string): Promise<RunRecord> {
    // A repeated request id names the retry already made: it returns the run, starting nothing.
    const key = requestId ? `${checkRequestId(requestId)}.retry` : undefined;
    if (key && (await this.options.store.runOfRequest(key))) return this.getRun(runId);
    const run = await this.options.store.getRun(runId);
    if (!run) throw new NotFoundError(`no run ${runId}`);
    if (!isFinished(run.state))
      throw new FailedPreconditionError(
        `run ${runId} is ${run.state.toLowerCase()}; only a finished run can be retried`,
      );
    if (run.state === "SUCCEEDED")
      throw new FailedPreconditionError(`run ${runId} succeeded; there is nothing to retry`);
    // The claim holds a value of this call's own, so that of two calls with the same request id
    // only the one whose value landed retries.
    const claim = `${runId} ${randomUUID()}`;
    if (key && (await this.options.store.claimRequest(key, claim)) !== claim)
      return this.getRun(runId);
    const pipeline = await this.pipelineOf(run);
    const records = await this.options.store.listTasks(runId);
    // Tasks first, while the run is finished and no replica acts on it; then the run itself.
    for (const t of pipeline.tasks) {
      const r = records.get(t.name);
      if (
        r &&
        (r.state === "FAILED" ||
          r.state === "ERROR" ||
          r.state === "SKIPPED" ||
          r.state === "CANCELLED")
      ) {
        await this.options.store.updateTask(runId, t.name, (cur) =>
          cur && cur.state === r.state
            ? { state: "PENDING", attempt: cur.attempt, firstAttempt: cur.attempt + 1 }
            : undefined,
        );
      }
    }
    // The same rendering as the run's first attempt: kept if repo-sync still has it, else made
    // again from the same commit and parameters.
    const checkout = await this.options.checkouts.acquire(run.commit, runId, {
      pipeline: run.pipeline,
      parameters: run.parameters ?? {},
      attempt: run.attempt + 1,
    });
    const updated = await this.options.store.updateRun(runId, (r) =>
      isFinished(r.state)
        ? {
            ...r,
            rootPath: checkout.path,
            workPath: checkout.workPath,
            workDigest: checkout.workPath ? (checkout.workDigest ?? "") : undefined,
            state: "RUNNING",
            attempt: r.attempt + 1,
            cancelRequested: false,
            endTime: undefined,
            reason: undefined,
            message: undefined,
            taskCounts: undefined,
            notifications: undefined,
            notifyClaim: undefined,
            notifyClaimTime: undefined,
          }
        : undefined,
    );
    if (!updated) throw new NotFoundError(`no run ${runId}`);
    this.log.info("run retried", { run: runId, attempt: updated.attempt });
    if (this.owns(runId)) await this.activate(updated, pipeline);
    this.pump();
    return updated;
  }

  /** Removes a run's Kubernetes objects; with `purgeRecords` its records, with `purgeData` its RUN_PATH. */
  async delete(
    runId: string,
    options: { purgeRecords: boolean; purgeData: boolean },
  ): Promise<{ deleted: number; dataPurged: boolean }> {
    const run = await this.options.store.getRun(runId);
    if (!run) throw new NotFoundError(`no run ${runId}`);
    if (!isFinished(run.state)) {
      // Cancelled like `odin cancel` (running tasks stopped, waiting ones recorded CANCELLED), so
      // no task is left RUNNING or PENDING; then its objects go.
      const ended = this.untilFinished(runId, deleteCancelWaitMs);
      if (!run.cancelRequested) await this.cancel(runId, "the run was deleted");
      if (!(await ended)) {
        // No replica finished the cancel in time (e.g. the launcher is unreachable): end the run
        // and its unfinished tasks here.
        await this.endUnfinished(runId, "Deleted", "the run was deleted");
      }
    }
    const result = await this.options.launcher.deleteRun(runId, options.purgeData);
    if (options.purgeRecords) {
      await this.options.store.deleteRun(runId);
      await this.options.checkouts.release(run.commit, runId).catch(() => undefined);
    }
    return result;
  }

  /**
   * Why a run waits, when the reason is not in its record: a run that has launched nothing while
   * the global cap is full waits for capacity (computed when read, not written on every change).
   */
  explain(run: RunRecord): RunRecord {
    const active = this.runs.get(run.id);
    if (active && !isFinished(run.state)) run = { ...run, taskCounts: active.engine.counts() };
    if (run.state !== "PENDING" || run.cancelRequested || run.reason) return run;
    const max = this.options.maxRunningTasks ?? defaultMaxRunningTasks;
    let running = 0;
    running += this.runningElsewhere();
    for (const active of this.runs.values()) running += active.engine.activeTasks;
    if (running < max) return run;
    return {
      ...run,
      reason: "WaitingForCapacity",
      message: `${running} of the ${max} tasks allowed at once across all runs are running (the global cap, ODIN_MAX_RUNNING_TASKS / --max-running-tasks)`,
    };
  }

  /** Resolves true when the run has finished (false after `ms`). */
  private async untilFinished(runId: string, ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), ms);
      timer.unref();
      const stop = this.follow(runId, (change) => {
        if (change.kind === "lost" || (change.kind === "run" && isFinished(change.record.state)))
          done(true);
      });
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        stop();
        resolve(ok);
      };
      void this.options.store.getRun(runId).then((r) => {
        if (!r || isFinished(r.state)) done(true);
      });
    });
  }

  /** Records a run and each of its unfinished tasks as CANCELLED. */
  private async endUnfinished(runId: string, reason: string, message: string): Promise<void> {
    const run = await this.options.store.getRun(runId);
    if (!run) return;
    const now = this.now();
    const pipeline = await this.pipelineOf(run).catch(() => undefined);
    const records = await this.options.store.listTasks(runId);
    const names = pipeline ? pipeline.tasks.map((t) => t.name) : [...records.keys()];
    for (const name of names) {
      await this.options.store.updateTask(runId, name, (cur) =>
        !cur || !isTerminalState(cur.state)
          ? { ...(cur ?? pendingRecord), state: "CANCELLED", endTime: now, reason, message }
          : undefined,
      );
    }
    const ended = await this.options.store.updateRun(runId, (r) =>
      isFinished(r.state)
        ? undefined
        : { ...r, state: "CANCELLED", cancelRequested: true, endTime: now, reason },
    );
    if (ended) this.options.metrics?.runFinished("CANCELLED");
    this.deactivate(runId);
  }

  // -- Following the store --------------------------------------------------------------------

  private onChange(change: RecordChange): void {
    if (change.kind === "reset") {
      this.forgetLostRuns();
      return;
    }
    if (change.kind === "cache") {
      this.indexCacheEntry(change.key, change.entry);
      return;
    }
    if (change.kind === "image") {
      this.imageDigests.set(change.record.image, change.record.digest);
      return;
    }
    // Runs watchers hear every change but stale ones (this replica's own writes reach the index
    // before the watch brings them, and are told when it does).
    if (change.kind === "run" && (this.index.revisionOf(change.runId) ?? 0) <= change.revision) {
      this.index.apply(change.runId, change.record, change.revision);
      this.noteElsewhere(change.runId, change.record);
      this.tellRunListeners(change.runId, change.record);
    }
    if (change.kind === "run") {
      if (!change.record) {
        this.deactivate(change.runId);
        return;
      }
      this.notify(change.runId, { kind: "run", record: change.record });
      const active = this.runs.get(change.runId);
      if (!active) {
        if (!isFinished(change.record.state) && this.owns(change.runId))
          void this.activate(change.record);
        return;
      }
      active.record = change.record;
      if (isFinished(change.record.state)) this.deactivate(change.runId);
      else if (change.record.cancelRequested) this.execute(active, active.engine.cancel());
      return;
    }
    if (change.record)
      this.notify(change.runId, { kind: "task", task: change.task, record: change.record });
    const active = this.runs.get(change.runId);
    if (!active || !change.record) return;
    if (change.record.state === "SUCCEEDED") this.succeeded(active, change.task, change.record);
    this.execute(active, active.engine.observe(change.task, statusOf(change.record), this.now()));
    this.countsChanged(active);
    this.pump();
  }

  /** Whether this replica drives a run (among the live replicas). */
  private owns(runId: string): boolean {
    return this.ownsPartition(partitionOf(runId));
  }

  private ownsPartition(partition: number): boolean {
    return this.options.share?.owns(partitionKey(partition)) ?? true;
  }

  private consumerName(partition?: number): string {
    const name = this.options.consumer ?? "dag-scheduler";
    return partition === undefined ? name : `${name}-${partition}`;
  }

  private consumeTaskEvents(durable: string, filter: string): Promise<Subscription> {
    return this.options.bus.consume(
      {
        durable,
        filter,
        ackWaitMs: 30_000,
        retryDelayMs: 500,
        // Events of different tasks are independent; a task's own events are applied monotonically.
        concurrency: 64,
      },
      (m) => this.onTaskEvent(events.TaskEvent.decode(m.data)),
    );
  }

  /**
   * Consumes the task events of the partitions this replica owns, and stops consuming those it
   * no longer owns (what it has taken in hand is still applied). One change at a time.
   */
  private followPartitions(): Promise<void> {
    const next = this.consuming.then(async () => {
      for (let p = 0; p < runPartitions; p++) {
        if (this.closed) return;
        const consumer = this.partitionConsumers.get(p);
        const owned = this.ownsPartition(p);
        if (owned && !consumer) {
          this.partitionConsumers.set(
            p,
            await this.consumeTaskEvents(this.consumerName(p), subjects.partitionTasks(p)),
          );
        } else if (!owned && consumer) {
          this.partitionConsumers.delete(p);
          await consumer.stop();
        }
      }
    });
    this.consuming = next.catch(() => undefined);
    return next;
  }

  private async stopPartitionConsumers(): Promise<void> {
    await this.consuming;
    const consumers = [...this.partitionConsumers.values()];
    this.partitionConsumers.clear();
    await Promise.all(consumers.map((c) => c.stop()));
  }

  /**
   * The live replicas changed: runs now another's are dropped (their engines only; what is in
   * flight finishes, by compare-and-set), and unfinished runs now this one's are picked up from
   * the store as after a restart — launches recorded and maybe never sent are sent again.
   */
  private rebalance(): void {
    if (this.closed) return;
    this.followPartitions().catch((err: unknown) => {
      this.log.warn(
        "cannot consume the task events of this replica's partitions; trying again in 5 s",
        {
          error: (err as Error).message,
        },
      );
      setTimeout(() => this.rebalance(), 5000).unref();
    });
    let dropped = 0;
    for (const [runId, run] of [...this.runs]) {
      if (this.owns(runId)) continue;
      if (run.countsTimer) clearTimeout(run.countsTimer);
      this.deactivate(runId);
      dropped++;
    }
    let taken = 0;
    for (const record of this.index.unfinished()) {
      if (this.runs.has(record.id) || !this.owns(record.id)) continue;
      void this.activate(record);
      taken++;
    }
    if (dropped > 0 || taken > 0)
      this.log.info("runs moved between scheduler replicas", { dropped, taken });
    this.pump();
  }

  /**
   * Records a driven run's task counts in its record, at most every {@link countsEveryMs}: so
   * every replica lists them, and counts the run's running tasks against the global cap.
   */
  private countsChanged(run: ActiveRun): void {
    if (run.countsTimer !== undefined || this.closed || !this.options.share) return;
    run.countsTimer = setTimeout(() => {
      run.countsTimer = undefined;
      if (this.runs.get(run.record.id) !== run || run.lost || this.closed) return;
      const counts = run.engine.counts();
      const json = JSON.stringify(counts);
      if (json === run.countsRecorded) return;
      run.countsRecorded = json;
      this.options.store
        .updateRun(run.record.id, (r) =>
          isFinished(r.state) ? undefined : { ...r, taskCounts: counts },
        )
        .catch((err: unknown) => {
          run.countsRecorded = undefined;
          this.log.warn("could not record a run's task counts", {
            run: run.record.id,
            error: (err as Error).message,
          });
        });
    }, countsEveryMs);
    run.countsTimer.unref();
  }

  private tellRunListeners(id: string, run: RunRecord | undefined): void {
    for (const listener of this.runListeners) {
      try {
        listener(id, run);
      } catch (err) {
        this.log.warn("a runs watcher failed", { error: (err as Error).message });
      }
    }
  }

  /**
   * The store lost every record (NATS came back without its storage): the runs this replica was
   * driving are gone for good. Their engines are dropped so nothing more is recorded or launched
   * for them; runs submitted from now on are picked up from the new store like any other.
   */
  private forgetLostRuns(): void {
    this.storeGeneration++;
    this.cacheIndex.clear();
    this.partialIndex.clear();
    this.taskIndex.clear();
    this.imageDigests.clear();
    const lost = [...this.runs.keys()];
    for (const active of this.runs.values()) active.lost = true;
    this.runs.clear();
    this.log.error("the run store was lost: NATS came back without its JetStream storage", {
      runsLost: lost.length,
      runs: lost.slice(0, 20),
      action:
        "runs in flight are gone (GetRun answers NOT_FOUND) and must be submitted again; their Kubernetes objects are left: delete them by label (kubectl delete pods,jobs -l odin.dev/run=<id>); see deploy/README.md, 'NATS lost its store'",
    });
    this.elsewhere.clear();
    this.elsewhereTotal = 0;
    // Listings forget every run of the old store, and runs watchers hear each one removed.
    for (const id of this.index.clear()) this.tellRunListeners(id, undefined);
    // Followers of a run the new store does not have hear that it is gone.
    for (const runId of [...this.watchers.keys()]) {
      this.options.store.getRun(runId).then(
        (run) => {
          if (run === undefined) this.notify(runId, { kind: "lost" });
        },
        () => undefined,
      );
    }
  }

  /**
   * Publishes a change this replica recorded as a RunEvent on `odin.events.run.<run>` for other
   * consumers; the message id (`run.<run>.<revision>`) makes a repeat a no-op.
   */
  private publish(change: Extract<RecordChange, { kind: "run" | "task" }>): void {
    if (!change.record || this.closed) return;
    const event: events.RunEvent = {
      runId: change.runId,
      revision: BigInt(change.revision),
      time: new Date(this.now()),
      change:
        change.kind === "run"
          ? { $case: "run", value: runToProto(change.record) }
          : { $case: "taskRun", value: taskRunToProto(change.runId, change.task, change.record) },
    };
    this.options.bus
      .publish(subjects.run(change.runId), events.RunEvent.encode(event).finish(), {
        msgId: `run.${change.runId}.${change.revision}`,
        // A notification: the change itself is already recorded, so no need to wait for an ack.
        noAck: true,
      })
      .catch((err: unknown) =>
        this.log.warn("could not publish a run event", {
          run: change.runId,
          error: (err as Error).message,
        }),
      );
  }

  private notify(runId: string, change: RunChange): void {
    for (const w of this.watchers.get(runId) ?? []) {
      try {
        w(change);
      } catch (err) {
        this.log.warn("a run watcher failed", { run: runId, error: (err as Error).message });
      }
    }
  }

  private async pipelineOf(run: RunRecord): Promise<Pipeline> {
    const got = await this.options.pipelines.getPipeline(
      run.pipeline,
      run.commit,
      run.parameters ?? {},
    );
    if (!got.pipeline)
      throw new FailedPreconditionError(
        `pipeline ${run.pipeline} at commit ${run.commit.slice(0, 12)} is no longer valid`,
      );
    return got.pipeline;
  }

  /**
   * Builds the engine of an unfinished run from the store, once, and acts on what it owes. When
   * the store, the registry or repo-sync cannot be reached, it tries again (after `tries` failures
   * so far) until they can: a run that has started nothing yet would not change, and would wait
   * forever.
   */
  private activate(record: RunRecord, known?: Pipeline, tries = 0): Promise<ActiveRun | undefined> {
    const existing = this.runs.get(record.id);
    if (existing) return Promise.resolve(existing);
    const pending = this.loading.get(record.id);
    if (pending) return pending;
    const generation = this.storeGeneration;
    const load = (async () => {
      try {
        const pipeline = known ?? (await this.pipelineOf(record));
        const tasks = await this.options.store.listTasks(record.id);
        // A change the watch brought while the tasks were listed may be newer than the listing,
        // and no engine heard it: each task is restored from the newest record seen (the store
        // keeps the higher revision of the two), or a run taken over just as a task ended would
        // wait for it forever.
        const store = this.options.store;
        const engine = RunEngine.restore(
          pipeline,
          (name) => {
            const newest = store.cachedTask(record.id, name) ?? tasks.get(name);
            return newest ? statusOf(newest) : undefined;
          },
          // When the tasks ready now became ready: a run that has started no task yet, when it was
          // submitted (whichever replica or restart gets here); a run retried here, now. Others
          // (restored mid-way): not known, and their launches are not measured.
          {
            cancelRequested: record.cancelRequested,
            ...(tasks.size === 0 && record.attempt === 1
              ? { readySince: record.createTime }
              : known
                ? { readySince: this.now() }
                : {}),
          },
        );
        const active: ActiveRun = { record, pipeline, engine };
        if (this.closed || generation !== this.storeGeneration || !this.owns(record.id))
          return undefined;
        this.runs.set(record.id, active);
        this.noteElsewhere(record.id, record);
        this.execute(active, engine.resume());
        for (const { task, attempt } of engine.relaunches())
          void this.launchRecorded(active, task, attempt);
        this.pump();
        return active;
      } catch (err) {
        if (!isTransient(err)) {
          this.log.error("cannot load run; it will be retried when it changes", {
            run: record.id,
            error: (err as Error).message,
          });
          return undefined;
        }
        const delay = backoffMs(tries);
        if (tries === 0)
          this.log.warn("cannot load run yet; trying again", {
            run: record.id,
            inMs: delay,
            error: (err as Error).message,
          });
        setTimeout(() => {
          const current = this.index.get(record.id);
          if (
            !current ||
            this.closed ||
            generation !== this.storeGeneration ||
            isFinished(current.state) ||
            !this.owns(record.id)
          )
            return;
          void this.activate(current, known, tries + 1);
        }, delay).unref();
        return undefined;
      } finally {
        this.loading.delete(record.id);
      }
    })();
    this.loading.set(record.id, load);
    return load;
  }

  private deactivate(runId: string): void {
    this.runs.delete(runId);
    this.noteElsewhere(runId, this.index.get(runId));
  }

  // -- Task events from launchers ------------------------------------------------------------

  private async onTaskEvent(e: events.TaskEvent): Promise<void> {
    const state = reportedState(e);
    if (!state) return;
    const now = this.now();
    const time = e.time ? e.time.getTime() : now;
    // The engines hear the change through the store's watch, like every other change.
    const { written } = await this.options.store.updateTask(e.runId, e.task, (cur) => {
      if (
        !cur ||
        cur.attempt !== e.attempt ||
        isTerminalState(cur.state) ||
        cur.state === "RETRYING"
      )
        return undefined;
      if (state === "RUNNING" && cur.state === "RUNNING") return undefined;
      const next: TaskRecord = { ...cur, state, objectName: e.objectName || cur.objectName };
      if (state === "RUNNING") next.startTime = time;
      else {
        next.endTime = time;
        next.startTime ??= cur.launchTime;
        if (e.exitCode !== undefined) next.exitCode = e.exitCode;
        if (e.reason) next.reason = e.reason;
        if (e.message) next.message = e.message;
        if (e.outputsJson) next.outputsJson = e.outputsJson;
        if (e.imageDigest) next.imageDigest = e.imageDigest;
      }
      return next;
    });
    // The digest an image (tag) ran as: what the cache keys the next launches of it by.
    if (state === "SUCCEEDED" && written && e.imageDigest) {
      const active = this.runs.get(e.runId);
      const image = active?.pipeline.tasks[active.engine.graph.indexOf(e.task) ?? -1]?.image;
      if (image && !pinnedDigest(image) && this.imageDigests.get(image) !== e.imageDigest) {
        this.imageDigests.set(image, e.imageDigest);
        await this.options.store
          .putImage({ image, digest: e.imageDigest, time: now })
          .catch((err: unknown) =>
            this.log.warn("could not record an image digest", {
              image,
              error: (err as Error).message,
            }),
          );
      }
    }
  }

  // -- Acting on decisions --------------------------------------------------------------------

  private execute(run: ActiveRun, decisions: readonly Decision[]): void {
    for (const d of decisions) this.queue.push(() => this.act(run, d));
    this.drain();
  }

  /**
   * Performs a decision; when the store or the launcher cannot be reached, performs it again until
   * it can. The engine applied the decision already and nothing else would make it decide again:
   * a write that timed out may have landed or not (a launch recorded but never sent to the
   * launcher, or never recorded while the engine counts it launching), and the run would stall.
   * Every decision is safe to repeat: each write is a compare-and-set on what the store holds, and
   * a repeated launch re-sends the recorded attempt, which the launcher does once.
   */
  private async act(run: ActiveRun, d: Decision, tries = 0): Promise<void> {
    try {
      await this.perform(run, d, tries > 0);
      if (tries > 0)
        this.log.info("acted on a decision after the store or launcher came back", {
          run: run.record.id,
          decision: d.kind,
          task: "task" in d ? d.task : undefined,
          tries: tries + 1,
        });
    } catch (err) {
      const transient = isTransient(err);
      const fields = {
        run: run.record.id,
        decision: d.kind,
        task: "task" in d ? d.task : undefined,
        error: (err as Error).message,
      };
      if (!transient) {
        this.log.error("could not act on a decision; it is retried when the run changes", fields);
        return;
      }
      if (tries === 0) this.log.warn("could not act on a decision; trying again", fields);
      const delay = backoffMs(tries);
      setTimeout(() => {
        if (this.closed || run.lost || this.runs.get(run.record.id) !== run) return;
        this.queue.push(() => this.act(run, d, tries + 1));
        this.drain();
      }, delay).unref();
    }
  }

  /**
   * Acts on queued decisions, a bounded number at once: cancelling or skipping a 100,000-task run
   * must not send 100,000 writes to the store at the same moment.
   */
  private drain(): void {
    while (this.inFlight < maxDecisionsInFlight && this.queueHead < this.queue.length) {
      const work = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as never;
      this.inFlight++;
      void work().finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Acts on a decision; `again` when an earlier try failed and may have written already. */
  private async perform(run: ActiveRun, d: Decision, again = false): Promise<void> {
    if (run.lost) return;
    const store = this.options.store;
    const runId = run.record.id;
    const now = this.now();
    switch (d.kind) {
      case "launch":
        return this.launch(run, d.task, d.attempt, again);
      case "retry": {
        await this.record(run, d.task, (cur) =>
          cur && cur.attempt === d.attempt && (cur.state === "FAILED" || cur.state === "ERROR")
            ? { ...cur, state: "RETRYING", nextAttemptTime: d.at }
            : undefined,
        );
        this.armTimer(d.at);
        return;
      }
      case "skip":
      case "cancelled": {
        const state: TaskState = d.kind === "skip" ? "SKIPPED" : "CANCELLED";
        await this.record(run, d.task, (cur) => {
          if (cur?.state === "RETRYING" && !(d.kind === "skip" && d.earlyExit)) {
            // Its last attempt failed and no retry follows: skipped, it stays FAILED with that
            // attempt's exit code and reason; cancelled, it is CANCELLED with no exit code.
            const { nextAttemptTime: _due, exitCode: _exit, ...rest } = cur;
            return d.kind === "skip"
              ? {
                  ...cur,
                  state: "FAILED",
                  nextAttemptTime: undefined,
                  message: `${cur.message ? `${cur.message}; ` : ""}not retried: ${d.reason}`,
                }
              : {
                  ...rest,
                  state: "CANCELLED",
                  endTime: now,
                  reason: "Cancelled",
                  message: "the run was cancelled while the task waited to retry",
                };
          }
          if (cur?.state === "RETRYING" && d.kind === "skip") {
            // The run ends early: the retry it waited for will not happen.
            const { nextAttemptTime: _due, ...rest } = cur;
            return { ...rest, state, endTime: now, reason: "Skipped", message: d.reason };
          }
          return !cur || cur.state === "PENDING"
            ? {
                ...(cur ?? pendingRecord),
                state,
                endTime: now,
                reason: d.kind === "skip" ? "Skipped" : "Cancelled",
                message: d.kind === "skip" ? d.reason : "the run was cancelled",
              }
            : undefined;
        });
        return;
      }
      case "timeout":
      case "cancel": {
        await this.options.launcher.cancel(runId, d.task, d.attempt);
        const timeout = d.kind === "timeout";
        const limit = run.pipeline.tasks[run.engine.graph.indexOf(d.task)!]?.timeoutMs ?? 0;
        await this.record(run, d.task, (cur) =>
          cur && cur.attempt === d.attempt && (cur.state === "LAUNCHING" || cur.state === "RUNNING")
            ? {
                ...cur,
                state: timeout ? "FAILED" : "CANCELLED",
                endTime: now,
                reason: timeout ? "DeadlineExceeded" : "Cancelled",
                message: timeout
                  ? `the task ran longer than its timeout (${Math.round(limit / 1000)} s)`
                  : "the run was cancelled",
              }
            : undefined,
        );
        return;
      }
      case "finish": {
        // Whether this call's compare-and-set wrote the end: true on exactly one replica.
        let ended = false;
        const finished = await store.updateRun(runId, (r) => {
          ended = !isFinished(r.state);
          if (!ended) return undefined;
          const next: RunRecord = {
            ...r,
            state: d.state,
            endTime: now,
            // A SUCCEEDED run has no reason unless a task ended it early.
            reason: d.state === "SUCCEEDED" && !d.earlyExitBy ? undefined : d.reason,
            startTime: r.startTime ?? now,
            taskCounts: run.engine.counts(),
          };
          // Written with the end, so the posts due are known even if this replica stops now.
          const due = this.options.notifier && dueNotifications(run.pipeline, d.state, r.notify);
          if (due) next.notifications = due;
          return next;
        });
        if (finished && ended) {
          this.options.metrics?.runFinished(d.state);
          this.log.info("run finished", { run: runId, state: d.state, reason: d.reason });
          this.notifyEnd(run, finished);
        }
        if (finished && isFinished(finished.state)) {
          // Ended: this replica forgets the run now, not when the store's watch brings the end
          // back, so a watcher who read the end from the store does not get the run from memory.
          run.record = finished;
          if (this.runs.get(runId) === run) this.deactivate(runId);
          await this.options.checkouts
            .release(run.record.commit, runId, run.record.attempt)
            .catch(() => undefined);
        }
        return;
      }
    }
  }

  /** Posts an ended run's due notifications in the background: the run never waits for them. */
  private notifyEnd(run: ActiveRun, ended: RunRecord): void {
    const notifier = this.options.notifier;
    if (!notifier || !ended.notifications) return;
    const tasks = run.pipeline.tasks.map((t) => ({
      name: t.name,
      record: this.options.store.cachedTask(ended.id, t.name),
    }));
    void deliverRunEnd({
      store: this.options.store,
      notifier,
      publicUrl: this.publicUrl(),
      run: ended,
      tasks,
    });
  }

  /**
   * Delivers the notifications of ended runs that stayed pending far longer than a delivery takes
   * (their deliverer stopped). One replica takes each run over: the claim is a compare-and-set of
   * the run's `notifyClaim`, and the old deliverer's progress writes no longer land.
   */
  private takeOverNotifications(): void {
    const now = this.now();
    for (const seen of this.index.all()) {
      if (!orphanedNotifications(seen, now)) continue;
      let claimed = false;
      void this.options.store
        .updateRun(seen.id, (r) => {
          claimed =
            r.attempt === seen.attempt &&
            (r.notifyClaim ?? 0) === (seen.notifyClaim ?? 0) &&
            orphanedNotifications(r, now);
          return claimed
            ? { ...r, notifyClaim: (r.notifyClaim ?? 0) + 1, notifyClaimTime: now }
            : undefined;
        })
        .then(async (run) => {
          if (!run || !claimed || this.closed) return;
          this.log.warn("delivering notifications another replica left pending", { run: run.id });
          const pipeline = await this.pipelineOf(run);
          const records = await this.options.store.listTasks(run.id);
          await deliverRunEnd({
            store: this.options.store,
            notifier: this.options.notifier!,
            publicUrl: this.publicUrl(),
            run,
            tasks: pipeline.tasks.map((t) => ({ name: t.name, record: records.get(t.name) })),
          });
        })
        .catch((err: unknown) =>
          this.log.warn("could not take over pending notifications; tried again in a minute", {
            run: seen.id,
            error: (err as Error).message,
          }),
        );
    }
  }

  private publicUrl(): string {
    return (
      (typeof this.options.publicUrl === "function"
        ? this.options.publicUrl()
        : this.options.publicUrl) ?? defaultPublicUrl
    );
  }

  /**
   * Records a decision by compare-and-set. What it wrote reaches the engine through the store's
   * watch (the engine applied its own decision already); when another replica recorded something
   * else first, the engine adopts that at once, undoing its optimistic launch.
   */
  private async record(
    run: ActiveRun,
    task: string,
    mutate: (cur: TaskRecord | undefined) => TaskRecord | undefined,
  ): Promise<TaskRecord | undefined> {
    // A run the store lost records nothing more: a write now would land in the new store.
    const { record, written } = await this.options.store.updateTask(run.record.id, task, (cur) =>
      run.lost ? undefined : mutate(cur),
    );
    if (run.lost) return undefined;
    if (written) return record;
    this.execute(run, run.engine.reconcile(task, statusOf(record), this.now()));
    this.pump();
    return undefined;
  }

  /**
   * Records an attempt as LAUNCHING and sends it to the launcher. `again`: an earlier try may have
   * recorded it before failing, so an attempt found LAUNCHING is sent (at worst a second time:
   * the launcher starts an attempt once).
   */
  private async launch(
    run: ActiveRun,
    task: string,
    attempt: number,
    again = false,
  ): Promise<void> {
    const now = this.now();
    const readyAt = run.engine.readySince(task);
    const launched = this.launchedCommand(run, task);
    let landed: TaskRecord | undefined;
    const recorded = await this.record(run, task, (cur) => {
      const at = cur?.attempt ?? 0;
      const state = cur?.state ?? "PENDING";
      landed = again && at === attempt && state === "LAUNCHING" ? cur : undefined;
      if (at !== attempt - 1 || (state !== "PENDING" && state !== "RETRYING")) return undefined;
      const next: TaskRecord = { state: "LAUNCHING", attempt, launchTime: now };
      if (cur?.firstAttempt !== undefined) next.firstAttempt = cur.firstAttempt;
      if (launched) next.launched = launched;
      return next;
    });
    if (!recorded && landed === undefined) return;
    if (run.record.state === "PENDING") {
      const started = await this.options.store.updateRun(run.record.id, (r) =>
        r.state === "PENDING" ? { ...r, state: "RUNNING", startTime: now } : undefined,
      );
      if (started) run.record = started;
    }
    await this.launchRecorded(run, task, attempt, 0, readyAt);
  }

  /**
   * What a task will be started with (recorded with its launch, for people to read), or undefined
   * when it cannot be resolved yet — launching then fails with the reason, as it did before.
   */
  private launchedCommand(run: ActiveRun, task: string): TaskRecord["launched"] {
    const spec = run.pipeline.tasks[run.engine.graph.indexOf(task)!];
    if (!spec) return undefined;
    try {
      const { task: resolved } = resolveTask(run.record, run.pipeline, spec, (upstream) =>
        this.options.store.cachedTask(run.record.id, upstream),
      );
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(resolved.env))
        env[k] = SECRET_NAME.test(k) ? "(hidden)" : v;
      return { command: resolved.command, args: resolved.args, env };
    } catch {
      return undefined;
    }
  }

  /**
   * Calls the launcher for an attempt already recorded as LAUNCHING (idempotent; retried while
   * unreachable). With `readyAt` (when the task became ready), the launch latency is recorded.
   */
  private async launchRecorded(
    run: ActiveRun,
    task: string,
    attempt: number,
    tries = 0,
    readyAt?: number,
  ): Promise<void> {
    const spec = run.pipeline.tasks[run.engine.graph.indexOf(task)!];
    if (!spec || run.lost) return;
    const runId = run.record.id;
    try {
      const { task: resolved, variables } = resolveTask(
        run.record,
        run.pipeline,
        spec,
        (upstream) => this.options.store.cachedTask(runId, upstream),
      );
      let hashInputs: (() => void) | undefined;
      if (this.options.launcher.hashFiles && Object.keys(spec.outputs).length > 0) {
        if (isCacheable(spec) && !run.record.noCache && (await this.reuse(run, spec, attempt)))
          return;
        // Recorded once the attempt succeeds; the inputs are hashed alongside the launch, once it
        // has been asked for (a miss must not wait for them).
        const work: CacheWork = {};
        this.cacheWork.set(`${runId}/${task}/${attempt}`, work);
        if (isCacheable(spec))
          hashInputs = () => {
            work.inputs = this.hashInputs(run, spec);
          };
      }
      const launching = this.options.launcher.launch({
        runId,
        pipeline: run.record.pipeline,
        commit: run.record.commit,
        task: resolved,
        attempt,
        paths: {
          rootPath: variables.ROOT_PATH!,
          workPath: variables.WORK_PATH!,
          dataPath: variables.DATA_PATH!,
          runPath: variables.RUN_PATH!,
          taskPath: variables.TASK_PATH!,
        },
      });
      hashInputs?.();
      await launching;
      if (readyAt !== undefined)
        this.options.metrics?.launched(Math.max(0, this.now() - readyAt) / 1000);
    } catch (err) {
      if (isRetryable(err) && !this.closed) {
        const delay = Math.min(30_000, 500 * 2 ** Math.min(tries, 6));
        this.log.warn("launcher unavailable; launch retried", {
          run: runId,
          task,
          attempt,
          inMs: delay,
          error: (err as Error).message,
        });
        setTimeout(() => {
          const active = this.runs.get(runId);
          if (
            active &&
            active.engine.status(task).attempt === attempt &&
            active.engine.status(task).state === "LAUNCHING"
          ) {
            void this.launchRecorded(active, task, attempt, tries + 1, readyAt);
          }
        }, delay).unref();
        return;
      }
      const missing = err instanceof MissingOutputError;
      await this.record(run, task, (cur) =>
        cur && cur.attempt === attempt && cur.state === "LAUNCHING"
          ? {
              ...cur,
              state: missing ? "FAILED" : "ERROR",
              endTime: this.now(),
              reason: missing ? "MissingOutput" : "LaunchRefused",
              message: (err as Error).message,
            }
          : undefined,
      );
    }
  }

  // -- The cache (docs/caching.md) --------------------------------------------------------------

  private indexCacheEntry(key: string, entry: CacheEntry | undefined): void {
    const count = (index: Map<string, number>, k: string, by: number): void => {
      const n = (index.get(k) ?? 0) + by;
      if (n > 0) index.set(k, n);
      else index.delete(k);
    };
    const known = this.cacheIndex.get(key);
    if (known) {
      count(this.partialIndex, known.partial, -1);
      count(this.taskIndex, known.task, -1);
      this.cacheIndex.delete(key);
    }
    if (!entry) return;
    const task = `${entry.pipeline}\0${entry.task}`;
    this.cacheIndex.set(key, { partial: entry.partial, createTime: entry.createTime, task });
    count(this.partialIndex, entry.partial, 1);
    count(this.taskIndex, task, 1);
  }

  /** The cache key of a task now; `wait`: let upstream results being hashed here finish first. */
  private async keyOf(
    run: ActiveRun,
    spec: Task,
    image: string | undefined,
    wait: boolean,
  ): Promise<{ partial: string; key?: string } | undefined> {
    const compute = () =>
      cacheKey({
        run: run.record,
        pipeline: run.pipeline,
        task: spec,
        image,
        recordOf: (t) => this.options.store.cachedTask(run.record.id, t),
        taskOf: (t) => run.pipeline.tasks[run.engine.graph.indexOf(t) ?? -1],
      });
    const first = compute();
    if (!first || first.key || !wait) return first;
    const pending = spec.depends
      .map((d) => this.results.get(`${run.record.id}/${d}`))
      .filter((p) => p !== undefined);
    if (pending.length === 0) return first;
    await Promise.all(pending);
    return compute();
  }

  /**
   * Looks the task up, and when an earlier result is still valid, records it SUCCEEDED from that
   * result instead of launching it. Costs a map lookup when nothing was recorded for this task as
   * it is now; hashes the inputs and the recorded outputs only when something was.
   */
  private async reuse(run: ActiveRun, spec: Task, attempt: number): Promise<boolean> {
    if (!this.taskIndex.has(`${run.record.pipeline}\0${spec.name}`)) return false;
    const image = imageIdentity(spec, this.imageDigests.get(spec.image));
    const first = cacheKey({
      run: run.record,
      pipeline: run.pipeline,
      task: spec,
      image,
      recordOf: (t) => this.options.store.cachedTask(run.record.id, t),
      taskOf: (t) => run.pipeline.tasks[run.engine.graph.indexOf(t) ?? -1],
    });
    if (!first || !this.partialIndex.has(first.partial)) return false;
    const runId = run.record.id;
    try {
      const keys = await this.keyOf(run, spec, image, true);
      const key = keys?.key;
      const known = key ? this.cacheIndex.get(key) : undefined;
      if (!key || !known) return false;
      const ttl = spec.cacheTtlMs ?? this.options.cacheTtlMs ?? defaultCacheTtlMs;
      if (known.createTime + ttl < this.now()) {
        this.log.info("cache entry expired", { run: runId, task: spec.name, key });
        return false;
      }
      const entry = await this.options.store.getCacheEntry(key);
      if (!entry) return false;
      const paths = taskFilePaths(run.record, run.pipeline, spec);
      const why = await this.staleReason(entry, paths);
      if (why) {
        this.log.info("cache miss", { run: runId, task: spec.name, key, why });
        return false;
      }
      // The outputs where this run's dependents look for them: links to the earlier run's files.
      const byName = new Map(entry.outputs.map((o) => [o.name, o.path]));
      const links = paths.outputs
        .filter((o) => byName.has(o.name) && byName.get(o.name) !== o.path)
        .map((o) => ({ target: byName.get(o.name)!, path: o.path }));
      if (links.length > 0) await this.options.launcher.hashFiles!([], links);
      const now = this.now();
      const recorded = await this.record(run, spec.name, (cur) =>
        cur && cur.attempt === attempt && cur.state === "LAUNCHING"
          ? {
              ...cur,
              state: "SUCCEEDED",
              startTime: now,
              endTime: now,
              reason: "Cached",
              message: `cached from run ${entry.runId} (attempt ${entry.attempt}); not run again`,
              ...(entry.outputsJson ? { outputsJson: entry.outputsJson } : {}),
              resultDigest: entry.resultDigest,
              cachedFrom: { runId: entry.runId, attempt: entry.attempt, key },
            }
          : undefined,
      );
      if (!recorded) return true;
      this.log.info("cache hit", { run: runId, task: spec.name, from: entry.runId, key });
      void this.options.store
        .updateCacheEntry(key, (cur) => cur && { ...cur, hits: (cur.hits ?? 0) + 1 })
        .catch(() => undefined);
      return true;
    } catch (err) {
      this.log.warn("cache lookup failed; the task is launched", {
        run: runId,
        task: spec.name,
        error: (err as Error).message,
      });
      return false;
    }
  }

  /** Why an entry's result cannot be reused now (an input or output changed), or undefined. */
  private async staleReason(
    entry: CacheEntry,
    paths: ReturnType<typeof taskFilePaths>,
  ): Promise<string | undefined> {
    if (entry.inputs.length !== paths.inputs.length) return "the inputs changed";
    const missing = entry.outputs.find((o) => o.digest === "missing");
    if (missing) return `output ${missing.name} was missing when recorded`;
    const digests = await this.options.launcher.hashFiles!([
      ...paths.inputs.map((i) => i.path),
      ...entry.outputs.map((o) => o.path),
    ]);
    for (const [i, input] of paths.inputs.entries()) {
      if (entry.inputs[i]!.name !== input.name || entry.inputs[i]!.digest !== digests[i])
        return `input ${input.name} changed`;
    }
    for (const [i, output] of entry.outputs.entries()) {
      const now = digests[paths.inputs.length + i];
      if (now === "missing") return `output ${output.name} (${output.path}) is gone`;
      if (now !== output.digest) return `output ${output.name} (${output.path}) changed`;
    }
    return undefined;
  }

  /** Digests of a task's path inputs now (undefined when they cannot be read: nothing recorded). */
  private hashInputs(run: ActiveRun, spec: Task): Promise<CachedFile[] | undefined> {
    let inputs: { name: string; path: string }[];
    try {
      inputs = taskFilePaths(run.record, run.pipeline, spec).inputs;
    } catch {
      return Promise.resolve(undefined);
    }
    if (inputs.length === 0) return Promise.resolve([]);
    return this.options.launcher.hashFiles!(inputs.map((i) => i.path)).then(
      (digests) => inputs.map((i, n) => ({ ...i, digest: digests[n]! })),
      (err: unknown) => {
        this.log.warn("cannot hash a task's inputs; its result is not cached", {
          run: run.record.id,
          task: spec.name,
          error: (err as Error).message,
        });
        return undefined;
      },
    );
  }

  /** A task launched by this replica succeeded: hash its outputs, and record its result. */
  private succeeded(run: ActiveRun, task: string, record: TaskRecord): void {
    const id = `${run.record.id}/${task}/${record.attempt}`;
    const work = this.cacheWork.get(id);
    if (!work || record.cachedFrom) return;
    this.cacheWork.delete(id);
    const spec = run.pipeline.tasks[run.engine.graph.indexOf(task)!];
    if (!spec) return;
    const result = this.recordResult(run, spec, record, work).catch((err: unknown) => {
      this.log.warn("could not record a task's result for the cache", {
        run: run.record.id,
        task,
        error: (err as Error).message,
      });
      return undefined;
    });
    const key = `${run.record.id}/${task}`;
    this.results.set(key, result);
    void result.finally(() => {
      if (this.results.get(key) === result) this.results.delete(key);
    });
  }

  private async recordResult(
    run: ActiveRun,
    spec: Task,
    record: TaskRecord,
    work: CacheWork,
  ): Promise<string | undefined> {
    const runId = run.record.id;
    const paths = taskFilePaths(run.record, run.pipeline, spec);
    const digests = await this.options.launcher.hashFiles!(paths.outputs.map((o) => o.path));
    const outputs = paths.outputs.map((o, i) => ({ ...o, digest: digests[i]! }));
    const resultDigest = resultDigestOf(record.outputsJson, outputs);
    await this.options.store.updateTask(runId, spec.name, (cur) =>
      cur && cur.attempt === record.attempt && cur.state === "SUCCEEDED" && !cur.resultDigest
        ? { ...cur, resultDigest }
        : undefined,
    );
    if (!work.inputs) return resultDigest;
    const inputs = await work.inputs;
    const gone = outputs.find((o) => o.digest === "missing");
    if (!inputs || gone) {
      if (gone)
        this.log.warn("a declared output is missing after success; the result is not cached", {
          run: runId,
          task: spec.name,
          output: gone.name,
          path: gone.path,
        });
      return resultDigest;
    }
    const image = pinnedDigest(spec.image)
      ? imageIdentity(spec, undefined)
      : imageIdentity(spec, record.imageDigest);
    const keys = await this.keyOf(run, spec, image, true);
    if (!keys?.key) {
      this.log.info("result not cached: its key is not known", {
        run: runId,
        task: spec.name,
        why: image ? "an upstream result was not hashed" : "no image digest was reported",
      });
      return resultDigest;
    }
    const entry: CacheEntry = {
      key: keys.key,
      partial: keys.partial,
      pipeline: run.record.pipeline,
      task: spec.name,
      runId,
      attempt: record.attempt,
      createTime: this.now(),
      image: image!,
      inputs,
      outputs,
      ...(record.outputsJson ? { outputsJson: record.outputsJson } : {}),
      resultDigest,
    };
    await this.options.store.updateCacheEntry(keys.key, () => entry);
    this.log.info("result cached", { run: runId, task: spec.name, key: keys.key });
    return resultDigest;
  }

  /** Resolves once the task results being recorded for the cache now are recorded. */
  async cacheIdle(): Promise<void> {
    while (this.results.size > 0) await Promise.all([...this.results.values()]);
  }

  /** Cache entries, newest first, filtered. */
  async listCache(filter: CacheFilter, limit = 1000): Promise<CacheEntry[]> {
    const out: CacheEntry[] = [];
    for await (const entry of this.options.store.cacheEntries()) {
      if (matchesCacheFilter(entry, filter)) out.push(entry);
    }
    out.sort((a, b) => b.createTime - a.createTime);
    return out.slice(0, limit);
  }

  /** Forgets cache entries (their files stay); returns how many. */
  async deleteCache(filter: CacheFilter): Promise<number> {
    for (const k of filter.keys ?? []) {
      if (!/^[0-9a-f]{8,64}$/.test(k))
        throw new InvalidArgumentError(
          `cache key ${JSON.stringify(k)} must be 8 to 64 hex digits ("odin cache ls" shows them)`,
        );
    }
    const matched = await this.listCache(filter, Number.POSITIVE_INFINITY);
    for (const k of filter.keys ?? []) {
      const n = matched.filter((e) => e.key.startsWith(k)).length;
      if (n > 1)
        throw new InvalidArgumentError(
          `cache key prefix ${k} names ${n} entries; give more digits`,
        );
    }
    for (const entry of matched) await this.options.store.deleteCacheEntry(entry.key);
    if (matched.length > 0) this.log.info("cache entries removed", { count: matched.length });
    return matched.length;
  }

  // -- Launching what is ready, within the caps -------------------------------------------------

  /** Launches ready tasks of every run within the global cap, and arms the timer for what is due later. */
  private pump(): void {
    if (this.closed) return;
    const now = this.now();
    let running = this.runningElsewhere();
    for (const run of this.runs.values()) running += run.engine.activeTasks;
    let slots = (this.options.maxRunningTasks ?? defaultMaxRunningTasks) - running;
    let wake = Number.POSITIVE_INFINITY;
    for (const run of this.runs.values()) {
      const decisions = run.engine.next(now, Math.max(0, slots));
      slots -= decisions.filter((d) => d.kind === "launch").length;
      this.execute(run, decisions);
      wake = Math.min(wake, run.engine.nextWakeAt() ?? Number.POSITIVE_INFINITY);
    }
    this.armTimer(wake);
  }

  /**
   * Tasks launching or running in the runs other replicas drive, as their records last counted
   * them (up to a second old): the global cap holds across replicas within that.
   */
  private runningElsewhere(): number {
    return this.elsewhereTotal;
  }

  /** Keeps {@link runningElsewhere} in step with a run's latest record (undefined: removed). */
  private noteElsewhere(runId: string, record: RunRecord | undefined): void {
    if (!this.options.share) return;
    const n =
      record && !isFinished(record.state) && !this.runs.has(runId)
        ? (record.taskCounts?.LAUNCHING ?? 0) + (record.taskCounts?.RUNNING ?? 0)
        : 0;
    this.elsewhereTotal += n - (this.elsewhere.get(runId) ?? 0);
    if (n === 0) this.elsewhere.delete(runId);
    else this.elsewhere.set(runId, n);
  }

  private armTimer(at: number): void {
    if (!Number.isFinite(at) || at >= this.timerAt || this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.pump();
      },
      Math.max(0, at - this.now()),
    );
    this.timer.unref();
  }
}

function matchesCacheFilter(entry: CacheEntry, f: CacheFilter): boolean {
  if (f.pipeline && entry.pipeline !== f.pipeline) return false;
  if (f.task && entry.task !== f.task) return false;
  if (f.keys?.length && !f.keys.some((k) => entry.key.startsWith(k))) return false;
  return true;
}

/** A client's request id: what the store can key on. Returns it. */
function checkRequestId(requestId: string): string {
  if (!/^[-_a-zA-Z0-9]{1,128}$/.test(requestId))
    throw new InvalidArgumentError(
      "request_id must be 1-128 letters, digits, '-' or '_' (a UUID works)",
    );
  return requestId;
}
