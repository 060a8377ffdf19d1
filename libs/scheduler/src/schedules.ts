// Cron schedules: every scheduler replica follows every schedule and wakes at its ticks; which
// replica starts a tick's run is decided by compare-and-set of the schedule's tick record in the
// run store, so a tick starts exactly one run however many replicas there are. The claim names the
// run id before the run is submitted: whoever finishes a claim (the claimer, or another replica
// after the claimer died) submits that id, and the run store creates it once.
import {
  CronTicks,
  checkCron,
  checkTimezone,
  isFinishedRun,
  mergeNotifyTargets,
  newRunId,
  notifyTarget,
  scheduleNamePattern,
  tickGraceMs,
  type CatchupPolicy,
  type ConcurrencyPolicy,
  type NotifyTarget,
  type ParameterValue,
  type Problem,
} from "@odin/pipeline-spec";
import { subjects, type EventBus, type Subscription } from "@odin/events";
import { events } from "@odin/proto";
import {
  jsonCodec,
  KeyExistsError,
  listLatest,
  RevisionMismatchError,
  updateWithRetry,
  type Change,
  type KeyValueStore,
  type Watch,
} from "@odin/run-store";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  type Logger,
} from "@odin/service-kit";
import type { DeclaredScheduleSource, PipelineSource } from "./ports.js";
import type { RunRecord } from "./records.js";
import { scheduleLabel, scheduleLabelValue } from "./run-labels.js";

/** A schedule as the run store keeps it (`schedules.<name>`). */
export interface ScheduleRecord {
  /** `nightly` (created with the API), or `<pipeline path>:<name>` (declared in `main.yml`). */
  name: string;
  /** Pipeline directory in the repository. */
  pipeline: string;
  /** The pipeline's `name`, the prefix of its runs' ids. */
  pipelineName: string;
  cron: string;
  timezone: string;
  /** Values of the pipeline's parameters for each run. */
  parameters: Record<string, ParameterValue>;
  catchup: CatchupPolicy;
  concurrency: ConcurrencyPolicy;
  paused: boolean;
  /** `api`: created with CreateSchedule; `pipeline`: declared in the pipeline's `schedules:`. */
  source: "api" | "pipeline";
  createdBy: string;
  createTime: number;
  /** The CreateSchedule request id that made it (a retried create returns it). */
  requestId?: string;
  /**
   * Webhooks its runs post to when they end, besides their pipeline's `notify:` (each named once);
   * absent when none.
   */
  notify?: NotifyTarget[];
}

/**
 * Where a schedule stands (`ticks.<name>`): the newest tick decided and, while a tick's run is
 * being started, the claim naming it. Written only by compare-and-set.
 */
export interface TickRecord {
  /** The newest tick (epoch ms) decided: claimed, run or skipped. Ticks up to it are never run again. */
  lastTick: number;
  /** The run the last finished claim started. */
  lastRunId?: string;
  /** A tick whose run is being started; any replica may finish it (submitting `runId` again is harmless). */
  claim?: {
    tick: number;
    runId: string;
    /** The active run `replace` cancels first. */
    replaces?: string;
    /** The replica that claimed it, and when (its clock). */
    by: string;
    at: number;
  };
  /** Ticks not run: missed while no scheduler ran (`catchup: skip`) or `forbid` with a run active. */
  skipped: number;
  /** Why the last tick started no run (the pipeline did not load, …). */
  lastError?: string;
}

/** A schedule with where it stands, as ListSchedules shows it. */
export interface ScheduleView {
  schedule: ScheduleRecord;
  ticks?: TickRecord;
  /** The next tick (epoch ms) when not paused. */
  nextTick?: number;
}

/** A schedule's name as one key token: bytes outside `[-_a-zA-Z0-9]` as `=XX`. */
function token(name: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(name)) {
    const c = String.fromCharCode(byte);
    out += /[-_a-zA-Z0-9]/.test(c) ? c : `=${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** Key of a schedule's record. */
export const scheduleKey = (name: string): string => `schedules.${token(name)}`;
/** Key of a schedule's tick record. */
export const ticksKey = (name: string): string => `ticks.${token(name)}`;
/** Who a schedule's runs are submitted by. */
export const scheduleSubmitter = (name: string): string => `schedule:${name}`;

const scheduleCodec = jsonCodec<ScheduleRecord>();
const ticksCodec = jsonCodec<TickRecord>();

/** What schedules need of the scheduler: submit and cancel runs, read one. */
export interface RunStarter {
  submit(input: {
    pipeline: string;
    parameters?: Readonly<Record<string, unknown>>;
    labels?: Record<string, string>;
    submittedBy: string;
    runId?: string;
    notify?: readonly NotifyTarget[];
  }): Promise<RunRecord>;
  cancel(runId: string, reason?: string): Promise<RunRecord>;
  getRun(runId: string): Promise<RunRecord>;
  /** A fresh run id for a pipeline (default: any, by `newRunId`; the scheduler spreads them). */
  newRunId?(pipelineName: string): string;
}

/** What a ScheduleRunner needs. */
export interface ScheduleRunnerOptions {
  kv: KeyValueStore;
  runs: RunStarter;
  pipelines: PipelineSource;
  /** The schedules pipelines declare; without it only schedules made with the API run. */
  declared?: DeclaredScheduleSource;
  /** With `declared`: a `repo.synced` event reads them again at once, at the synced commit. */
  bus?: EventBus;
  logger: Logger;
  now?: () => number;
  /** How long a claim by another replica is left to it before this one finishes it (default 10 s). */
  takeoverMs?: number;
  /** Wake at ticks by itself (default true); tests drive `evaluateAll` with their own clock. */
  timers?: boolean;
  /** Tests: called after a claim is recorded, before its run is submitted. */
  afterClaim?: (name: string, claim: NonNullable<TickRecord["claim"]>) => Promise<void>;
}

/** How soon a tick that failed for a passing reason (a service unreachable) is tried again. */
const retryMs = 5_000;
/** How long another replica's claim is its own before this one finishes it. */
const defaultTakeoverMs = 10_000;
/** Every schedule is looked at this often anyway (a claim left by a replica that died, clock jumps). */
const sweepMs = 60_000;

/**
 * Follows every schedule in the run store and starts their runs at their ticks. One per scheduler
 * replica; all replicas do the same and the tick record's compare-and-set picks one per tick.
 */
export class ScheduleRunner {
  private readonly schedules = new Map<string, ScheduleRecord>();
  private readonly ticks = new Map<string, CronTicks>();
  /** When each schedule next needs a look (its next tick, or a claim to take over). */
  private readonly wakeAt = new Map<string, number>();
  private readonly evaluating = new Map<string, Promise<void>>();
  /** Schedules with another replica's claim to finish if it does not (looked at even when paused). */
  private readonly takeovers = new Set<string>();
  private readonly replica = Math.random().toString(36).slice(2, 10);
  private watch: Watch | undefined;
  private synced: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** When the declared schedules were last read from the pipelines. */
  private lastSync = 0;

  constructor(private readonly options: ScheduleRunnerOptions) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private get kv(): KeyValueStore {
    return this.options.kv;
  }

  /** Follows the schedules in the store and wakes at their ticks. */
  async start(): Promise<void> {
    this.watch = await this.kv.watch("schedules.>", (change) => this.onChange(change));
    for (const entry of await listLatest(this.kv, "schedules.>")) {
      const record = scheduleCodec.decode(entry.value);
      if (!this.schedules.has(record.name)) this.remember(record);
    }
    await this.syncDeclared().catch((err: unknown) =>
      this.options.logger.warn("cannot read the schedules pipelines declare; trying again soon", {
        error: (err as Error).message,
      }),
    );
    // A push or sync that changes a pipeline's schedules: read them now, not at the next sweep.
    if (this.options.declared && this.options.bus) {
      this.synced = await this.options.bus.subscribe(subjects.repoSynced, (m) => {
        if (this.closed) return;
        const { commit } = events.RepoSynced.decode(m.data);
        void this.syncDeclared(commit || undefined).catch((err: unknown) =>
          this.options.logger.warn("cannot read the schedules pipelines declare", {
            commit,
            error: (err as Error).message,
          }),
        );
      });
    }
    this.arm();
  }

  /**
   * Makes the declared schedules in the store match the pipelines' `schedules:` at the newest
   * commit: new ones created, changed ones updated (paused stays as set), removed ones deleted.
   * A pipeline that does not load now keeps its schedules. Every replica does it; the writes are
   * compare-and-set and converge.
   */
  async syncDeclared(commit?: string): Promise<void> {
    if (!this.options.declared) return;
    this.lastSync = this.now();
    const pipelines = await this.options.declared.declaredSchedules(commit);
    const desired = new Map<string, ScheduleRecord>();
    const invalid = new Set<string>();
    const now = this.now();
    for (const p of pipelines) {
      if (!p.valid) invalid.add(p.pipeline);
      for (const spec of p.schedules) {
        const name = `${p.pipeline}:${spec.name}`;
        const notify = mergeNotifyTargets(spec.notify);
        desired.set(name, {
          name,
          pipeline: p.pipeline,
          pipelineName: p.pipelineName,
          cron: spec.cron,
          timezone: spec.timezone,
          parameters: spec.parameters,
          catchup: spec.catchup,
          concurrency: spec.concurrency,
          paused: false,
          source: "pipeline",
          createdBy: `${p.pipeline}/main.yml`,
          createTime: now,
          ...(notify.length > 0 ? { notify } : {}),
        });
      }
    }
    const same = (a: ScheduleRecord, b: ScheduleRecord): boolean =>
      a.pipelineName === b.pipelineName &&
      a.cron === b.cron &&
      a.timezone === b.timezone &&
      a.catchup === b.catchup &&
      a.concurrency === b.concurrency &&
      JSON.stringify(a.parameters) === JSON.stringify(b.parameters) &&
      JSON.stringify(a.notify ?? []) === JSON.stringify(b.notify ?? []);
    const existing = new Map<string, ScheduleRecord>();
    for (const entry of await listLatest(this.kv, "schedules.>")) {
      const record = scheduleCodec.decode(entry.value);
      if (record.source === "pipeline") existing.set(record.name, record);
    }
    for (const [name, want] of desired) {
      const have = existing.get(name);
      if (have && same(have, want)) continue;
      if (!have) {
        await this.kv
          .create(scheduleKey(name), scheduleCodec.encode(want))
          .catch((err: unknown) => {
            if (!(err instanceof KeyExistsError)) throw err;
          });
      } else {
        await updateWithRetry<ScheduleRecord>(
          this.kv,
          scheduleKey(name),
          (current) =>
            current && current.source === "pipeline" && !same(current, want)
              ? { ...want, paused: current.paused, createTime: current.createTime }
              : undefined,
          scheduleCodec,
        );
      }
      this.options.logger.info(have ? "declared schedule changed" : "declared schedule added", {
        schedule: name,
        cron: want.cron,
        timezone: want.timezone,
      });
    }
    for (const [name, have] of existing) {
      if (desired.has(name) || invalid.has(have.pipeline)) continue;
      await this.kv.delete(scheduleKey(name)).catch(() => undefined);
      await this.kv.delete(ticksKey(name)).catch(() => undefined);
      this.options.logger.info("declared schedule removed from its pipeline", { schedule: name });
    }
  }

  /** Stops following and waking; a claim in flight is finished by another replica. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.synced?.stop();
    await this.watch?.stop();
    await Promise.allSettled([...this.evaluating.values()]);
  }

  private onChange(change: Change): void {
    if (change.op === "reset") {
      this.schedules.clear();
      this.ticks.clear();
      this.wakeAt.clear();
      this.takeovers.clear();
      return;
    }
    if (change.op === "delete") {
      for (const [name] of this.schedules) if (scheduleKey(name) === change.key) this.forget(name);
    } else this.remember(scheduleCodec.decode(change.value));
    this.arm();
  }

  private remember(record: ScheduleRecord): void {
    const known = this.schedules.get(record.name);
    if (!known || known.cron !== record.cron || known.timezone !== record.timezone)
      this.ticks.set(record.name, new CronTicks(record.cron, record.timezone));
    this.schedules.set(record.name, record);
    this.wakeAt.delete(record.name);
  }

  private forget(name: string): void {
    this.schedules.delete(name);
    this.ticks.delete(name);
    this.wakeAt.delete(name);
    this.takeovers.delete(name);
  }

  /** When a schedule should next be looked at. */
  private dueAt(name: string): number {
    const known = this.wakeAt.get(name);
    if (known !== undefined) return known;
    const now = this.now();
    const next = this.ticks.get(name)?.next(now) ?? now + sweepMs;
    const at = Math.min(next, now + sweepMs);
    this.wakeAt.set(name, at);
    return at;
  }

  private arm(): void {
    if (this.closed || this.options.timers === false) return;
    if (this.timer) clearTimeout(this.timer);
    let at = this.now() + sweepMs;
    for (const [name, record] of this.schedules)
      if (!record.paused || this.takeovers.has(name)) at = Math.min(at, this.dueAt(name));
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const now = this.now();
        if (now - this.lastSync >= sweepMs)
          void this.syncDeclared().catch((err: unknown) =>
            this.options.logger.warn("cannot read the schedules pipelines declare", {
              error: (err as Error).message,
            }),
          );
        const due = [...this.schedules.keys()].filter((name) => this.dueAt(name) <= now);
        for (const name of due) this.wakeAt.delete(name);
        void Promise.allSettled(due.map((name) => this.evaluate(name))).then(() => this.arm());
      },
      Math.max(0, at - this.now()),
    );
    this.timer.unref();
  }

  /** Whether this replica follows a schedule of that name. */
  knows(name: string): boolean {
    return this.schedules.has(name);
  }

  /** Looks at every schedule once (what the timer does for those due): tests call it with their clock. */
  async evaluateAll(): Promise<void> {
    await Promise.allSettled([...this.schedules.keys()].map((name) => this.evaluate(name)));
  }

  /** Decides the schedule's due tick, if any, and starts its run; one evaluation per schedule at a time. */
  evaluate(name: string): Promise<void> {
    const running = this.evaluating.get(name);
    if (running) return running;
    const job = this.decide(name)
      .catch((err: unknown) => {
        this.lookAgainAt(name, this.now() + retryMs);
        this.options.logger.warn("schedule tick not decided yet; trying again", {
          schedule: name,
          error: (err as Error).message,
        });
      })
      .finally(() => this.evaluating.delete(name));
    this.evaluating.set(name, job);
    return job;
  }

  private lookAgainAt(name: string, at: number): void {
    this.wakeAt.set(name, Math.min(this.wakeAt.get(name) ?? Number.POSITIVE_INFINITY, at));
  }

  private async decide(name: string): Promise<void> {
    for (let attempt = 0; attempt < 10 && !this.closed; attempt++) {
      const schedule = this.schedules.get(name);
      if (!schedule) return;
      const key = ticksKey(name);
      const entry = await this.kv.get(key);
      if (!entry) {
        if (schedule.paused) return;
        // First look at this schedule: ticks count from its creation.
        const first: TickRecord = { lastTick: schedule.createTime, skipped: 0 };
        await this.kv.create(key, ticksCodec.encode(first)).catch((err: unknown) => {
          if (!(err instanceof KeyExistsError)) throw err;
        });
        continue;
      }
      const state = ticksCodec.decode(entry.value);
      const now = this.now();
      if (state.claim) {
        const takeoverAt = state.claim.at + (this.options.takeoverMs ?? defaultTakeoverMs);
        if (state.claim.by !== this.replica && now < takeoverAt) {
          // Its claimer is starting the run; look again in case it died doing so (also when
          // the schedule has been paused since: the tick was decided before).
          this.lookAgainAt(name, takeoverAt);
          this.takeovers.add(name);
          return;
        }
        if (state.claim.by !== this.replica)
          this.options.logger.info("finishing a schedule tick another replica claimed", {
            schedule: name,
            tick: new Date(state.claim.tick).toISOString(),
            run: state.claim.runId,
          });
        await this.finish(schedule, state.claim);
        continue;
      }
      this.takeovers.delete(name);
      if (schedule.paused) return;
      const cron = this.ticks.get(name);
      const oldest = cron?.next(state.lastTick);
      if (cron === undefined || oldest === undefined || oldest > now) return;
      // Ticks less than the grace late are decided one at a time, oldest first: a replica that died
      // holding a claim delays the ticks after it by the takeover wait, and they must still run.
      // Older ones (no scheduler ran) are decided together, by the catch-up policy.
      const tick = now - oldest <= tickGraceMs ? oldest : cron.newestDue(state.lastTick, now);
      if (tick === undefined) return;
      const skip = (why: string): TickRecord => ({
        ...state,
        lastTick: tick,
        skipped: state.skipped + 1,
        lastError: why,
      });
      let next: TickRecord;
      if (schedule.catchup === "skip" && now - tick > tickGraceMs) {
        next = skip(
          `tick ${new Date(tick).toISOString()} was missed (no scheduler ran then; catchup: skip)`,
        );
      } else {
        const previous = state.lastRunId
          ? await this.options.runs.getRun(state.lastRunId).catch(() => undefined)
          : undefined;
        const active = previous && !isFinishedRun(previous.state) ? previous : undefined;
        if (active && schedule.concurrency === "forbid") {
          next = skip(
            `tick ${new Date(tick).toISOString()} skipped: run ${active.id} is still ${active.state.toLowerCase()} (concurrency: forbid)`,
          );
        } else {
          next = {
            ...state,
            lastTick: tick,
            claim: {
              tick,
              runId:
                this.options.runs.newRunId?.(schedule.pipelineName) ??
                newRunId(schedule.pipelineName),
              by: this.replica,
              at: now,
              ...(active && schedule.concurrency === "replace" ? { replaces: active.id } : {}),
            },
          };
        }
      }
      try {
        await this.kv.update(key, ticksCodec.encode(next), entry.revision);
      } catch (err) {
        // Another replica decided this tick (or changed the schedule's ticks): look again.
        if (err instanceof RevisionMismatchError) continue;
        throw err;
      }
      // A backlog (ticks delayed by a claim taken over): the next one is decided at once.
      const following = cron.next(tick);
      if (following !== undefined && following <= now) this.lookAgainAt(name, now);
      if (!next.claim) {
        this.options.logger.info("schedule tick skipped", { schedule: name, why: next.lastError });
        return;
      }
      await this.options.afterClaim?.(name, next.claim);
      await this.finish(schedule, next.claim);
      return;
    }
  }

  /** Starts a claimed tick's run (cancelling the run it replaces first) and clears the claim. */
  private async finish(
    schedule: ScheduleRecord,
    claim: NonNullable<TickRecord["claim"]>,
  ): Promise<void> {
    let error: string | undefined;
    try {
      if (claim.replaces)
        await this.options.runs
          .cancel(claim.replaces, `replaced by the next tick of schedule ${schedule.name}`)
          .catch((err: unknown) => {
            if (!(err instanceof NotFoundError)) throw err;
          });
      const labels = { [scheduleLabel]: scheduleLabelValue(schedule.name) };
      const run = await this.options.runs.submit({
        pipeline: schedule.pipeline,
        parameters: schedule.parameters,
        labels,
        submittedBy: scheduleSubmitter(schedule.name),
        runId: claim.runId,
        ...(schedule.notify ? { notify: schedule.notify } : {}),
      });
      this.options.logger.info("schedule started a run", {
        schedule: schedule.name,
        tick: new Date(claim.tick).toISOString(),
        run: run.id,
      });
    } catch (err) {
      // A pipeline that cannot run now will not run for this tick either: the tick ends with the
      // reason recorded. Anything else (a service unreachable) leaves the claim to be finished.
      if (!(err instanceof InvalidArgumentError || err instanceof FailedPreconditionError))
        throw err;
      error = `tick ${new Date(claim.tick).toISOString()} started no run: ${err.message}`;
      this.options.logger.warn("schedule tick started no run", {
        schedule: schedule.name,
        error: err.message,
      });
    }
    await updateWithRetry<TickRecord>(
      this.kv,
      ticksKey(schedule.name),
      (current) => {
        if (current?.claim?.runId !== claim.runId) return undefined;
        const next: TickRecord = { ...current, claim: undefined };
        if (error === undefined) {
          next.lastRunId = claim.runId;
          delete next.lastError;
        } else next.lastError = error;
        return next;
      },
      ticksCodec,
    );
  }

  // -- API ------------------------------------------------------------------------------------

  /** Creates a schedule of a pipeline; its parameters are checked against the pipeline now. */
  async create(input: {
    name: string;
    pipeline: string;
    cron: string;
    timezone?: string;
    parameters?: Readonly<Record<string, unknown>>;
    catchup?: CatchupPolicy;
    concurrency?: ConcurrencyPolicy;
    paused?: boolean;
    /** Webhooks its runs post to, besides the pipeline's: secret names, states in any case (none = every end). */
    notify?: readonly { webhookSecret: string; on: readonly string[] }[];
    createdBy: string;
    requestId?: string;
  }): Promise<ScheduleRecord> {
    if (!scheduleNamePattern.test(input.name))
      throw new InvalidArgumentError(
        `schedule name "${input.name}" must be lower-case letters, digits and "-", starting and ending with a letter or digit (at most 63)`,
      );
    const timezone = input.timezone || "UTC";
    const bad = checkCron(input.cron) ?? checkTimezone(timezone);
    if (bad !== undefined) throw new InvalidArgumentError(bad);
    const targets: NotifyTarget[] = [];
    for (const [i, n] of (input.notify ?? []).entries()) {
      const got = notifyTarget(n.webhookSecret, n.on);
      if ("error" in got) throw new InvalidArgumentError(`notify[${i}]: ${got.error}`);
      targets.push(got.target);
    }
    const notify = mergeNotifyTargets(targets);
    const got = await this.options.pipelines.getPipeline(
      input.pipeline,
      undefined,
      input.parameters ?? {},
    );
    if (!got.pipeline) {
      const errors = got.problems.filter((p: Problem) => p.severity === "error");
      throw new InvalidArgumentError(
        `pipeline ${input.pipeline} cannot run with these parameters: ${errors[0]?.message ?? "it is not valid"}`,
        { problems: errors },
      );
    }
    const record: ScheduleRecord = {
      name: input.name,
      pipeline: got.pipeline.path,
      pipelineName: got.pipeline.name,
      cron: input.cron.trim(),
      timezone,
      // Only the values given: a default changed in the pipeline later applies to later runs.
      parameters: Object.fromEntries(
        Object.entries(got.parameters).filter(([k]) => Object.hasOwn(input.parameters ?? {}, k)),
      ),
      catchup: input.catchup ?? "skip",
      concurrency: input.concurrency ?? "allow",
      paused: input.paused ?? false,
      source: "api",
      createdBy: input.createdBy,
      createTime: this.now(),
    };
    if (input.requestId) record.requestId = input.requestId;
    if (notify.length > 0) record.notify = notify;
    try {
      await this.kv.create(scheduleKey(record.name), scheduleCodec.encode(record));
    } catch (err) {
      const existing =
        err instanceof KeyExistsError && input.requestId
          ? await this.kv.get(scheduleKey(record.name))
          : undefined;
      const made = existing ? scheduleCodec.decode(existing.value) : undefined;
      if (made && made.requestId === input.requestId) return made;
      if (err instanceof KeyExistsError)
        throw new AlreadyExistsError(
          `schedule ${record.name} exists; remove it first ("odin schedule rm ${record.name}") or pick another name`,
        );
      throw err;
    }
    // Ticks count from now; a tick record left by a removed schedule of the same name is replaced.
    await this.kv.put(
      ticksKey(record.name),
      ticksCodec.encode({ lastTick: record.createTime, skipped: 0 }),
    );
    this.remember(record);
    this.arm();
    return record;
  }

  /** A created schedule as ListSchedules shows it. */
  viewOf(record: ScheduleRecord): Promise<ScheduleView> {
    return this.view(record, this.now());
  }

  /** Every schedule (of pipelines under `pipeline`, when given), by name, with where it stands. */
  async list(pipeline = ""): Promise<ScheduleView[]> {
    const out: ScheduleView[] = [];
    const now = this.now();
    for (const entry of await listLatest(this.kv, "schedules.>")) {
      const schedule = scheduleCodec.decode(entry.value);
      if (
        pipeline &&
        schedule.pipeline !== pipeline &&
        !schedule.pipeline.startsWith(`${pipeline}/`)
      )
        continue;
      out.push(await this.view(schedule, now));
    }
    return out.sort((a, b) => a.schedule.name.localeCompare(b.schedule.name));
  }

  /** One schedule with where it stands. */
  async get(name: string): Promise<ScheduleView> {
    const entry = await this.kv.get(scheduleKey(name));
    if (!entry) throw new NotFoundError(`no schedule ${name} — "odin schedule ls" lists them`);
    return this.view(scheduleCodec.decode(entry.value), this.now());
  }

  private async view(schedule: ScheduleRecord, now: number): Promise<ScheduleView> {
    const ticks = await this.kv.get(ticksKey(schedule.name));
    const view: ScheduleView = { schedule };
    if (ticks) view.ticks = ticksCodec.decode(ticks.value);
    if (!schedule.paused) {
      const next = new CronTicks(schedule.cron, schedule.timezone).next(now);
      if (next !== undefined) view.nextTick = next;
    }
    return view;
  }

  /** Pauses or resumes a schedule; ticks while paused are not run (resuming counts from now). */
  async setPaused(name: string, paused: boolean): Promise<ScheduleView> {
    const outcome = await updateWithRetry<ScheduleRecord>(
      this.kv,
      scheduleKey(name),
      (current) => (current && current.paused !== paused ? { ...current, paused } : undefined),
      scheduleCodec,
    );
    if (!outcome.value)
      throw new NotFoundError(`no schedule ${name} — "odin schedule ls" lists them`);
    if (!paused && outcome.written) {
      const now = this.now();
      await updateWithRetry<TickRecord>(
        this.kv,
        ticksKey(name),
        (current) =>
          current && current.lastTick < now ? { ...current, lastTick: now } : undefined,
        ticksCodec,
      );
    }
    this.remember(outcome.value);
    this.arm();
    return this.view(outcome.value, this.now());
  }

  /** Removes a schedule created with the API; a declared one is removed from its pipeline. */
  async remove(name: string): Promise<void> {
    const entry = await this.kv.get(scheduleKey(name));
    if (!entry) throw new NotFoundError(`no schedule ${name} — "odin schedule ls" lists them`);
    const record = scheduleCodec.decode(entry.value);
    if (record.source === "pipeline")
      throw new FailedPreconditionError(
        `schedule ${name} is declared in ${record.pipeline}/main.yml; remove it there (or pause it: "odin schedule pause ${name}")`,
      );
    await this.kv.delete(scheduleKey(name));
    await this.kv.delete(ticksKey(name)).catch(() => undefined);
    this.forget(name);
  }
}
