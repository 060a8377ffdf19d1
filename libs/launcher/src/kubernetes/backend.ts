// The Kubernetes adapter of the launcher port: a task attempt becomes a Pod, Job or training job
// (built by @odin/k8s-manifests), and what happens to it is learned from watches (watches.ts) —
// never by polling. This class is the I/O shell around the attempt core (src/attempt/core.ts):
// it turns what the watches see into facts with classify.ts, feeds them to each attempt's core,
// delivers the events that come back (src/attempt/delivery.ts), arms the timers the core asks
// for, and carries out its commands. Objects are created, read and deleted by objects.ts; logs
// are saved and followed by pod-logs.ts.
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type KubeConfig, Log, type V1Pod } from "@kubernetes/client-node";
import {
  buildManifest,
  defaultManifestConfig,
  ManifestError,
  selectorFor,
  shardLabel,
  type Manifest,
  type ManifestConfig,
  type SelectorScope,
} from "@odin/k8s-manifests";
import type { WorkShare } from "@odin/events";
import { resourceTypes, type ResourceType } from "@odin/pipeline-spec";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  fromKubernetesError,
  InvalidArgumentError,
  NotFoundError,
  silentLogger,
  UnavailableError,
  type KubernetesApiMetrics,
  type Logger,
} from "@odin/service-kit";
import { Alarms } from "../attempt/alarms.js";
import {
  AttemptCore,
  attemptKey,
  type AttemptCoreOptions,
  type AttemptFact,
  type AttemptId,
  type AttemptStep,
} from "../attempt/core.js";
import { EventDelivery } from "../attempt/delivery.js";
import { gpuInventory } from "./gpus.js";
import type {
  AttemptRef,
  GpuNode,
  LaunchResult,
  LaunchSpec,
  LogLine,
  LogOptions,
  ObjectEvent,
  TaskBackend,
  TaskStateEvent,
} from "../backend.js";
import {
  attemptIdOf,
  cancelledAnnotation,
  type ObjectLike,
  ownerEnded,
  ownerOutcome,
  legacyPendingTimeoutAnnotation,
  pendingTimeoutAnnotation,
  podEnded,
  podOutcome,
  podRunning,
  podStartTime,
  podStuck,
  toDate,
} from "./classify.js";
import { inScope, scopeOf, taskEvents } from "./events.js";
import {
  defaultRetryPolicy,
  KubernetesHttp,
  kubernetesApis,
  type KubernetesApis,
  type RetryPolicy,
  TokenBucket,
} from "./http.js";
import { SavedLogs } from "./logs.js";
import {
  controllerOf,
  httpCode,
  kindByName,
  KubernetesObjects,
  type OwnerKind,
} from "./objects.js";
import { type AttemptView, PodLogs } from "./pod-logs.js";
import { purgeRunData } from "./purge.js";
import { shardCount, shardKey, shardOf, shardSelector, unshardedSelector } from "./shards.js";
import { Watches, type WatchHandlers, type WatchSetup } from "./watches.js";

/** How the Kubernetes backend is set up. */
export interface KubernetesBackendOptions {
  /** Where the API server is and how to authenticate (in cluster: `KubeConfig.loadFromDefault()`). */
  kubeConfig: KubeConfig;
  /** Namespace, image pull secrets, … of the objects (over `defaultManifestConfig`). */
  manifest?: Partial<ManifestConfig>;
  /**
   * The launcher's own view of `DATA_PATH`: `deleteRun` with `purgeData` removes `<dataRoot>/<run>`
   * and nothing outside it. Unset: purging data is refused.
   */
  dataRoot?: string;
  /** Directory of saved logs (default `<dataRoot>/.odin-logs`, else `<tmp>/odin-logs`). */
  logDir?: string;
  /** How long a pod may stay unschedulable or unable to pull its image when its task sets no `pending_timeout` (default 5 min). */
  defaultPendingTimeoutMs?: number;
  /** Client-side rate limit of API requests per second (default 50) … */
  qps?: number;
  /** … and the burst above it (default 100). */
  burst?: number;
  /** Retries of API requests on 429, 5xx and network errors. */
  retry?: Partial<RetryPolicy>;
  /** Resource types to watch (default all six); a missing CRD is retried in the background. */
  resourceTypes?: readonly ResourceType[];
  /** How long an attempt's record is kept after its object is deleted (default 5 min). */
  tombstoneMs?: number;
  /** Pod logs saved at once (default 4). */
  logSaveConcurrency?: number;
  /** Records each API request's verb, status and latency, and rate-limit waits. */
  metrics?: KubernetesApiMetrics;
  /**
   * How the live launchers (`Membership` over the event bus) split the attempts: by shard (a label
   * on every object, see shards.ts). Each replica watches only its shards' objects (and those made
   * before objects carried the label), reports their attempts and saves their pods' logs; when
   * the launchers change it watches its new shards, and reports what their objects show. Unset:
   * this replica watches and reports every attempt.
   */
  share?: WorkShare;
  logger?: Logger;
}

/** A launcher taking attempts over reports again what ended this recently (ms). */
const reportAgainMs = 10 * 60_000;

/** Default `pending_timeout`: 5 minutes. */
export const defaultPendingTimeoutMs = 5 * 60_000;

/** What the backend remembers about one attempt besides its core's bookkeeping. */
class Attempt implements AttemptView {
  readonly key: string;
  kind?: ResourceType;
  /** Latest known state of each pod (kept after deletion, for exit codes). */
  readonly pods = new Map<string, V1Pod>();
  /** Log followers to wake on any change. */
  readonly listeners = new Set<() => void>();
  removeTimer?: NodeJS.Timeout;
  /** Every event the core gave, in order: what a launcher taking the attempt over reports. */
  readonly events: TaskStateEvent[] = [];
  /** When the core last gave an event (ms since the epoch). */
  lastEventAt = 0;
  /** Whether this replica reports the attempt (and saves its pods' logs). */
  reporting = true;

  constructor(
    readonly core: AttemptCore,
    public namespace: string,
  ) {
    this.key = attemptKey(core.id);
  }

  get id(): AttemptId {
    return this.core.id;
  }

  get done(): boolean {
    return this.core.done;
  }
}

/** {@link TaskBackend} on Kubernetes. */
export class KubernetesBackend implements TaskBackend {
  /** Rate limit, retries and connection reuse of the API requests (for tests and metrics). */
  readonly http: KubernetesHttp;
  /** The saved logs. */
  readonly savedLogs: SavedLogs;
  private readonly apis: KubernetesApis;
  private readonly limiter: TokenBucket;
  private readonly manifestConfig: ManifestConfig;
  private readonly namespace: string;
  private readonly logger: Logger;
  private readonly tombstoneMs: number;
  private readonly objects: KubernetesObjects;
  private readonly watchSetup: WatchSetup;
  /** Every object when alone; with a share, those made before objects carried a shard label. */
  private readonly watches: Watches;
  /** With a share: the watches of this replica's shards, and which shards they select. */
  private sharded: Watches | undefined;
  private watchedShards: string | undefined;
  private resharding: Promise<void> = Promise.resolve();
  /** One-attempt watches of logs followed here whose attempt is another replica's. */
  private readonly extraWatches = new Set<Watches>();
  /** How many log follows here use each attempt another replica watches. */
  private readonly followed = new Map<string, number>();
  private handlers: WatchHandlers | undefined;
  private readonly podLogs: PodLogs;
  private readonly delivery: EventDelivery;
  private readonly alarms: Alarms;
  private readonly coreOptions: AttemptCoreOptions;
  private readonly attempts = new Map<string, Attempt>();
  private started = false;
  private closed = false;
  private unshare: (() => void) | undefined;

  constructor(private readonly options: KubernetesBackendOptions) {
    this.manifestConfig = { ...defaultManifestConfig, ...options.manifest };
    this.namespace = this.manifestConfig.namespace;
    this.logger = options.logger ?? silentLogger;
    const retry: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
    this.limiter = new TokenBucket(options.qps ?? 50, options.burst ?? 100);
    this.http = new KubernetesHttp(this.limiter, retry, options.metrics);
    this.apis = kubernetesApis(options.kubeConfig, this.http);
    this.tombstoneMs = options.tombstoneMs ?? 5 * 60_000;
    const types = options.resourceTypes ?? resourceTypes;
    this.objects = new KubernetesObjects(this.apis, this.namespace, types);
    const logDir =
      options.logDir ??
      (options.dataRoot ? join(options.dataRoot, ".odin-logs") : join(tmpdir(), "odin-logs"));
    this.savedLogs = new SavedLogs(resolve(logDir));
    this.watchSetup = {
      kubeConfig: options.kubeConfig,
      apis: this.apis,
      namespace: this.namespace,
      types,
      logger: this.logger,
      retry,
    };
    this.watches = new Watches({
      ...this.watchSetup,
      ...(options.share ? { selector: unshardedSelector } : {}),
    });
    this.podLogs = new PodLogs({
      apis: this.apis,
      logApi: new Log(options.kubeConfig),
      objects: this.objects,
      saved: this.savedLogs,
      logger: this.logger,
      concurrency: options.logSaveConcurrency ?? 4,
      attempt: (key) => this.attempts.get(key),
      podExists: (namespace, name) => this.hasPod(namespace, name),
    });
    this.delivery = new EventDelivery({ logger: this.logger });
    this.alarms = new Alarms((key, now) => {
      const a = this.attempts.get(key);
      if (a !== undefined && !this.closed) this.apply(a, a.core.tick(now));
    });
    this.coreOptions = {
      defaultPendingTimeoutMs: options.defaultPendingTimeoutMs ?? defaultPendingTimeoutMs,
      startedAt: Date.now(),
    };
  }

  // ---------------------------------------------------------------- watching

  async start(report: (event: TaskStateEvent) => Promise<void>): Promise<void> {
    if (this.started) throw new Error("KubernetesBackend.start was called twice");
    this.started = true;
    this.coreOptions.startedAt = Date.now();
    this.delivery.start(report);
    const share = this.options.share;
    if (share) this.unshare = share.onChange(() => this.rebalance());
    this.handlers = {
      pod: (pod, deleted) => this.onPod(pod, deleted),
      owner: (kind, obj, deleted) => this.onOwner(kind, obj, deleted),
    };
    try {
      await this.watches.start(this.handlers);
      if (share) await this.reshard();
    } catch (err) {
      await this.close();
      throw err;
    }
    this.logger.info("watching Odin's objects", {
      namespace: this.namespace,
      types: this.options.resourceTypes ?? resourceTypes,
      attempts: this.attempts.size,
    });
  }

  /** Whether this replica reports an attempt (its shard's launcher, among the live ones). */
  private owns(id: AttemptId): boolean {
    const share = this.options.share;
    return share === undefined || share.owns(shardKey(shardOf(id)));
  }

  /** The shards this replica watches. */
  private ownedShards(): number[] {
    const share = this.options.share;
    const shards: number[] = [];
    for (let s = 0; s < shardCount; s++) if (!share || share.owns(shardKey(s))) shards.push(s);
    return shards;
  }

  /** Whether a watch of this replica still has the pod (none has reported it deleted). */
  private hasPod(namespace: string, name: string): boolean {
    if (this.watches.hasPod(namespace, name) || this.sharded?.hasPod(namespace, name)) return true;
    for (const w of this.extraWatches) if (w.hasPod(namespace, name)) return true;
    return false;
  }

  /**
   * Watches this replica's shards (after the launchers changed): the new shards' objects are
   * listed (their attempts reported from what they show), then the old watches stop and the
   * attempts of shards now another's are forgotten. One change at a time.
   */
  private reshard(): Promise<void> {
    const run = this.resharding.then(async () => {
      const handlers = this.handlers;
      if (this.closed || handlers === undefined || !this.options.share) return;
      const shards = this.ownedShards();
      const key = shards.join(",");
      if (key === this.watchedShards) return;
      const next =
        shards.length > 0
          ? new Watches({ ...this.watchSetup, selector: shardSelector(shards), nodes: false })
          : undefined;
      try {
        await next?.start(handlers);
      } catch (err) {
        await next?.stop();
        throw err;
      }
      const old = this.sharded;
      this.sharded = next;
      this.watchedShards = key;
      await old?.stop();
      for (const a of [...this.attempts.values()]) this.forgetIfElsewhere(a);
      this.logger.info("watching this launcher's shards of Odin's objects", {
        shards: shards.length,
        of: shardCount,
      });
    });
    this.resharding = run.catch(() => undefined);
    return run;
  }

  /**
   * Forgets an attempt another replica reports (launched or cancelled through this one): this
   * replica does not watch its objects, so what it knows would only grow stale.
   */
  private forgetIfElsewhere(a: Attempt): void {
    if (!this.options.share || a.reporting || a.listeners.size > 0 || this.followed.has(a.key))
      return;
    if (this.attempts.get(a.key) !== a) return;
    this.attempts.delete(a.key);
    this.alarms.set(a.key, undefined);
    if (a.removeTimer) clearTimeout(a.removeTimer);
  }

  /**
   * While a log follow here reads an attempt this replica does not watch: a watch of that
   * attempt's objects alone, so the follow sees its pods start and end. Returns how to stop it.
   */
  private async watchAttempt(id: AttemptId): Promise<(() => Promise<void>) | undefined> {
    const handlers = this.handlers;
    if (!this.options.share || this.owns(id) || handlers === undefined) return undefined;
    const key = attemptKey(id);
    const w = new Watches({ ...this.watchSetup, selector: selectorFor(id), nodes: false });
    this.extraWatches.add(w);
    this.followed.set(key, (this.followed.get(key) ?? 0) + 1);
    const stop = async () => {
      this.extraWatches.delete(w);
      await w.stop();
      const n = (this.followed.get(key) ?? 1) - 1;
      if (n > 0) this.followed.set(key, n);
      else this.followed.delete(key);
      const a = this.attempts.get(key);
      if (a) this.forgetIfElsewhere(a);
    };
    try {
      await w.start(handlers);
    } catch (err) {
      await stop();
      throw err;
    }
    return stop;
  }

  /** The record of an attempt, made on first sight. */
  private attemptFor(id: AttemptId, namespace: string | undefined): Attempt {
    const key = attemptKey(id);
    let a = this.attempts.get(key);
    if (a === undefined) {
      a = new Attempt(new AttemptCore(id, this.coreOptions), namespace ?? this.namespace);
      a.reporting = this.owns(id);
      this.attempts.set(key, a);
    } else if (a.removeTimer) {
      clearTimeout(a.removeTimer);
      a.removeTimer = undefined;
    }
    return a;
  }

  /** What an object's annotations say: the task's pending_timeout, and whether Odin deleted it. */
  private noteAnnotations(a: Attempt, meta: ObjectLike["metadata"], main: boolean): void {
    const annotations = meta?.annotations ?? {};
    const pending = Number(
      annotations[pendingTimeoutAnnotation] ?? annotations[legacyPendingTimeoutAnnotation],
    );
    if (Number.isFinite(pending)) this.observe(a, { kind: "pending-timeout", ms: pending });
    if (main && meta?.annotations?.[cancelledAnnotation] !== undefined) {
      this.observe(a, { kind: "deleted-by-odin" });
    }
  }

  private onPod(pod: V1Pod, deleted: boolean): void {
    const id = attemptIdOf(pod.metadata);
    const name = pod.metadata?.name;
    if (id === undefined || name === undefined) return;
    const a = this.attemptFor(id, pod.metadata?.namespace);
    const owner = controllerOf(pod);
    const ownerKind = owner ? kindByName.get(owner.kind) : "Pod";
    if (ownerKind === undefined) return; // a pod of something Odin does not make
    a.kind ??= ownerKind;
    if (a.core.objectName === "") {
      this.observe(a, { kind: "named", objectName: owner?.name ?? name });
    }
    this.noteAnnotations(a, pod.metadata, ownerKind === "Pod");
    a.pods.set(name, pod);
    if (deleted) {
      this.observe(a, { kind: "unstuck", unit: name });
      this.podLogs.podGone(a.namespace, name);
      if (ownerKind === "Pod") this.mainObjectGone(a, "Pod", pod);
      this.notify(a);
      return;
    }
    if (podEnded(pod) && a.reporting) this.podLogs.podFinished(a.id, a.namespace, pod);
    const stuck = podStuck(pod);
    if (stuck === undefined) this.observe(a, { kind: "unstuck", unit: name });
    else {
      // Kubernetes' own time of a stall that began while the launcher was down keeps counting.
      const since = stuck.since ?? toDate(pod.status?.startTime);
      this.observe(a, {
        kind: "stuck",
        unit: name,
        stuck: { ...stuck, ...(since ? { since } : {}) },
      });
    }
    if (podRunning(pod)) {
      const time = podStartTime(pod);
      this.observe(a, { kind: "running", ...(time ? { time } : {}) });
    }
    if (ownerKind === "Pod") {
      const outcome = podOutcome(pod);
      if (outcome) this.observe(a, { kind: "ended", outcome });
    }
    this.notify(a);
  }

  private onOwner(kind: OwnerKind, o: ObjectLike, deleted: boolean): void {
    const id = attemptIdOf(o.metadata);
    const name = o.metadata?.name;
    if (id === undefined || name === undefined) return;
    const a = this.attemptFor(id, o.metadata?.namespace);
    a.kind = kind;
    this.observe(a, { kind: "named", objectName: name });
    this.noteAnnotations(a, o.metadata, true);
    if (deleted) this.mainObjectGone(a, kind, o);
    else if (!a.done && ownerEnded(kind, o)) void this.reportOwnerOutcome(a, kind, o);
    this.notify(a);
  }

  /** Reports a Job's or training job's end, looking its pods up when the watch has not shown them. */
  private async reportOwnerOutcome(a: Attempt, kind: OwnerKind, obj: ObjectLike): Promise<void> {
    let outcome = ownerOutcome(kind, obj, [...a.pods.values()]);
    if (outcome === undefined || a.done) return;
    if (!outcome.detailed) {
      try {
        for (const p of await this.objects.listPods(selectorFor(a.id), a.namespace)) {
          const n = p.metadata?.name;
          if (n !== undefined && (!a.pods.has(n) || podEnded(p))) a.pods.set(n, p);
        }
        outcome = ownerOutcome(kind, obj, [...a.pods.values()]) ?? outcome;
      } catch (err) {
        this.logger.warn("cannot read the pods of a finished job; reporting without exit code", {
          attempt: a.key,
          err,
        });
      }
    }
    const { detailed: _detailed, ...observation } = outcome;
    this.observe(a, { kind: "ended", outcome: observation });
  }

  /** The attempt's main object is gone: report how it ended, or that someone else deleted it. */
  private mainObjectGone(a: Attempt, kind: ResourceType, last: ObjectLike): void {
    const outcome = kind === "Pod" ? podOutcome(last as V1Pod) : undefined;
    if (outcome) this.observe(a, { kind: "ended", outcome });
    else if (kind !== "Pod" && ownerEnded(kind, last)) void this.reportOwnerOutcome(a, kind, last);
    else {
      const time = toDate(last.metadata?.deletionTimestamp);
      const what = `${kind} ${last.metadata?.name ?? "?"}`;
      this.observe(a, { kind: "deleted", what, ...(time ? { time } : {}) });
    }
    if (a.removeTimer) clearTimeout(a.removeTimer);
    a.removeTimer = setTimeout(() => {
      if (this.attempts.get(a.key) === a && a.listeners.size === 0) this.attempts.delete(a.key);
    }, this.tombstoneMs);
    a.removeTimer.unref();
  }

  /**
   * The live launchers changed: attempts now this replica's are reported from their first event
   * (repeats are dropped by the bus's message ids and change nothing in the scheduler) and the
   * logs of their finished pods saved; attempts now another's are left to it.
   */
  private rebalance(): void {
    if (this.closed) return;
    this.reshard().catch((err: unknown) => {
      this.logger.warn("cannot watch this launcher's new shards; trying again in 5 s", { err });
      setTimeout(() => this.rebalance(), 5000).unref();
    });
    let taken = 0;
    // What a launcher that went could have left unreported: events of attempts still going, and
    // of attempts that ended lately (it reports within seconds unless NATS is away).
    const since = Date.now() - reportAgainMs;
    for (const a of this.attempts.values()) {
      const owned = this.owns(a.id);
      if (owned === a.reporting) continue;
      a.reporting = owned;
      if (!owned || (a.done && a.lastEventAt < since)) continue;
      taken++;
      for (const event of a.events) this.delivery.send(a.key, event);
      for (const pod of a.pods.values())
        if (podEnded(pod) && this.hasPod(a.namespace, pod.metadata?.name ?? ""))
          this.podLogs.podFinished(a.id, a.namespace, pod);
    }
    if (taken > 0) this.logger.info("attempts reported again after taking them over", { taken });
  }

  // ---------------------------------------------------------------- the core's steps

  private observe(a: Attempt, fact: AttemptFact): void {
    this.apply(a, a.core.observe(fact, Date.now()));
  }

  /** Delivers a step's events, then carries out its commands; re-arms the attempt's timer. */
  private apply(a: Attempt, step: AttemptStep): void {
    for (const event of step.events) {
      a.events.push(event);
      a.lastEventAt = Date.now();
      if (a.reporting) this.delivery.send(a.key, event);
    }
    for (const command of step.commands) {
      // Once the ERROR is delivered, so the object cannot start later beside a retry.
      this.delivery.then(a.key, () => this.deleteAttemptObject(a, command.why));
    }
    this.alarms.set(a.key, a.core.wakeAt());
    if (step.events.length > 0) this.notify(a);
  }

  private notify(a: Attempt): void {
    for (const l of [...a.listeners]) l();
  }

  private async deleteAttemptObject(a: Attempt, why: string): Promise<boolean> {
    const name = a.core.objectName;
    if (a.kind === undefined || name === "") return false;
    try {
      await this.podLogs.saveNow(a.id, a.namespace, [...a.pods.values()]);
      return await this.objects.delete(a.kind, name, why);
    } catch (err) {
      this.logger.warn("cannot delete a stuck attempt's object", { attempt: a.key, err });
      return false;
    }
  }

  // ---------------------------------------------------------------- launch

  /**
   * Creates the attempt's object; a refusal is the caller's to record (this only throws the
   * mapped error), so a refused launch is recorded once, by the scheduler.
   */
  async launch(spec: LaunchSpec): Promise<LaunchResult> {
    this.checkOpen();
    const { runId, attempt } = spec;
    const pending = spec.task.pendingTimeoutMs;
    // The task's pending_timeout travels on the objects and pods, so a restarted launcher knows it.
    const task =
      pending === undefined
        ? spec.task
        : {
            ...spec.task,
            annotations: { ...spec.task.annotations, [pendingTimeoutAnnotation]: String(pending) },
          };
    let manifest: Manifest;
    // The attempt's shard, on every object and pod it makes: what the launchers' watches select.
    const shard = String(shardOf({ runId, task: spec.task.name, attempt }));
    try {
      manifest = buildManifest(
        { ...spec, task },
        {
          ...this.manifestConfig,
          extraLabels: { ...this.manifestConfig.extraLabels, [shardLabel]: shard },
        },
      );
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      throw new InvalidArgumentError(`cannot launch task ${spec.task.name}: ${err.message}`, {
        cause: err,
      });
    }
    const a = this.attemptFor({ runId, task: spec.task.name, attempt }, manifest.namespace);
    a.kind = manifest.kind;
    this.observe(a, { kind: "named", objectName: manifest.name });
    if (pending !== undefined) this.observe(a, { kind: "pending-timeout", ms: pending });
    try {
      return await this.createAttemptObject(a, manifest, spec);
    } finally {
      // Another replica's attempt: it watches the object made here.
      this.forgetIfElsewhere(a);
    }
  }

  private async createAttemptObject(
    a: Attempt,
    manifest: Manifest,
    spec: LaunchSpec,
  ): Promise<LaunchResult> {
    const { runId, attempt } = spec;
    const what = `create ${manifest.kind} ${manifest.name} in namespace ${manifest.namespace}`;
    for (let tries = 0; ; tries++) {
      try {
        await this.objects.create(manifest);
        return { objectName: manifest.name, alreadyExisted: false };
      } catch (err) {
        if (httpCode(err) !== 409) throw fromKubernetesError(err, what);
      }
      // Already there: launched before (or right now, by a concurrent call). Make sure it is ours.
      let existing: ObjectLike;
      try {
        existing = await this.objects.read(manifest.kind, manifest.name);
      } catch (err) {
        if (httpCode(err) === 404 && tries < 3) continue; // deleted in between: create again
        throw fromKubernetesError(err, `read ${manifest.kind} ${manifest.name}`);
      }
      const found = attemptIdOf(existing.metadata);
      if (found === undefined || attemptKey(found) !== a.key) {
        throw new AlreadyExistsError(
          `${what}: an object of that name exists and is not attempt ${attempt} of task ${spec.task.name} in run ${runId} (labels ${JSON.stringify(existing.metadata?.labels ?? {})})`,
        );
      }
      return { objectName: manifest.name, alreadyExisted: true };
    }
  }

  // ---------------------------------------------------------------- cancel and delete

  async cancel(ref: AttemptRef): Promise<number> {
    this.checkOpen();
    return this.removeObjects(scopeOf(ref), "cancel");
  }

  async deleteRun(
    runId: string,
    options: { purgeData: boolean; runPath?: string },
  ): Promise<{ deleted: number; dataPurged: boolean }> {
    this.checkOpen();
    const deleted = await this.removeObjects({ runId }, "delete-run");
    let dataPurged = false;
    if (options.purgeData) {
      dataPurged = await purgeRunData(this.options.dataRoot, runId, options.runPath);
      await this.savedLogs.removeRun(runId);
    }
    return { deleted, dataPurged };
  }

  /**
   * Deletes the objects of a scope: each attempt is marked cancelled first (so its deletion is
   * not reported as an ERROR), the logs of its pods are saved, then its main object is deleted
   * with background propagation (a Job's pods go with it).
   */
  private async removeObjects(scope: SelectorScope, why: string): Promise<number> {
    const selector = selectorFor(scope);
    const [mains, pods] = await Promise.all([
      this.objects.listMain(selector),
      this.objects.listPods(selector),
    ]);
    const targets = new Map<string, { kind: ResourceType; name: string; a: Attempt }>();
    for (const { kind, obj } of mains) {
      const id = attemptIdOf(obj.metadata);
      const name = obj.metadata?.name;
      if (id === undefined || name === undefined) continue;
      targets.set(`${kind}/${name}`, { kind, name, a: this.attemptFor(id, this.namespace) });
    }
    // Objects launched so recently that a list may not show them yet.
    for (const a of this.attempts.values()) {
      const name = a.core.objectName;
      if (a.kind === undefined || name === "" || a.done || !inScope(a.id, scope)) continue;
      targets.set(`${a.kind}/${name}`, { kind: a.kind, name, a });
    }
    for (const { a } of targets.values()) this.observe(a, { kind: "cancelling" });
    const podsByAttempt = new Map<Attempt, V1Pod[]>();
    for (const pod of pods) {
      const id = attemptIdOf(pod.metadata);
      if (id === undefined) continue;
      const a = this.attemptFor(id, this.namespace);
      podsByAttempt.set(a, [...(podsByAttempt.get(a) ?? []), pod]);
    }
    await Promise.all(
      [...podsByAttempt].map(([a, list]) =>
        this.podLogs
          .saveNow(a.id, a.namespace, list)
          .catch((err: unknown) =>
            this.logger.warn("cannot save logs before deleting", { attempt: a.key, err }),
          ),
      ),
    );
    const list = [...targets.values()];
    const results = await Promise.allSettled(
      list.map(({ kind, name }) => this.objects.delete(kind, name, why)),
    );
    let deleted = 0;
    let failure: Error | undefined;
    results.forEach((r, i) => {
      const target = list[i];
      if (r.status === "fulfilled") {
        if (r.value) deleted++;
      } else if (target) {
        // Not deleted: it runs on, and its end must still be reported.
        this.observe(target.a, { kind: "cancel-failed" });
        failure ??= r.reason instanceof Error ? r.reason : new Error(String(r.reason));
      }
    });
    for (const { a } of list) this.notify(a);
    for (const a of podsByAttempt.keys()) this.forgetIfElsewhere(a);
    for (const { a } of list) this.forgetIfElsewhere(a);
    if (failure !== undefined) throw failure;
    return deleted;
  }

  // ---------------------------------------------------------------- logs and events

  async *logs(ref: AttemptRef, options: LogOptions): AsyncIterable<LogLine> {
    this.checkOpen();
    const attempt = ref.attempt || (await this.latestAttempt(ref.runId, ref.task));
    if (attempt === undefined) {
      throw new NotFoundError(
        `no attempt of task ${ref.task} in run ${ref.runId} is known (no objects, no saved logs)`,
      );
    }
    const id = { runId: ref.runId, task: ref.task, attempt };
    const stop = options.follow ? await this.watchAttempt(id) : undefined;
    try {
      yield* this.podLogs.read(id, options);
    } finally {
      await stop?.();
    }
  }

  /** The highest attempt of a task the cluster, this launcher or its saved logs know. */
  private async latestAttempt(runId: string, task: string): Promise<number | undefined> {
    let best = 0;
    for (const a of this.attempts.values()) {
      if (a.id.runId === runId && a.id.task === task) best = Math.max(best, a.id.attempt);
    }
    const [mains, saved] = await Promise.all([
      this.objects.listMain(selectorFor({ runId, task })),
      this.savedLogs.attempts(runId, task).catch(() => []),
    ]);
    for (const { obj } of mains) best = Math.max(best, attemptIdOf(obj.metadata)?.attempt ?? 0);
    for (const n of saved) best = Math.max(best, n);
    return best > 0 ? best : undefined;
  }

  async events(ref: AttemptRef): Promise<ObjectEvent[]> {
    this.checkOpen();
    const known = [...this.attempts.values()].map((a) => ({
      id: a.id,
      names: [...(a.core.objectName ? [a.core.objectName] : []), ...a.pods.keys()],
    }));
    return taskEvents(ref, this.apis, this.objects, this.savedLogs, known);
  }

  // ---------------------------------------------------------------- GPU inventory

  /**
   * Nodes with `nvidia.com/gpu` capacity from the node informer; allocated GPUs are those
   * requested by the Odin pods the pod informer holds (the launcher's namespace) that have not
   * ended. No API call: what the informers hold is the answer.
   */
  gpuNodes(options: { allNodes: boolean }): Promise<GpuNode[]> {
    if (this.watches.nodeError !== undefined && this.watches.nodes().length === 0) {
      return Promise.reject(
        new FailedPreconditionError(
          "the launcher cannot list the cluster's nodes (its service account needs get/list/watch on nodes: see deploy/)",
        ),
      );
    }
    return this.odinPods().then((pods) => gpuInventory(this.watches.nodes(), pods, options));
  }

  /** Odin's pods: from the watch when it sees them all, else listed (each replica sees a share). */
  private async odinPods(): Promise<V1Pod[]> {
    if (!this.options.share) return this.watches.pods();
    return this.objects.listPods(selectorFor({}));
  }

  // ---------------------------------------------------------------- lifecycle

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unshare?.();
    await this.resharding;
    await this.watches.stop();
    await this.sharded?.stop();
    for (const w of this.extraWatches) await w.stop();
    this.alarms.clear();
    for (const a of this.attempts.values()) if (a.removeTimer) clearTimeout(a.removeTimer);
    this.podLogs.close();
    await this.delivery.close();
    this.limiter.drain();
    this.http.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new UnavailableError("the Kubernetes launcher is shutting down");
  }
}
