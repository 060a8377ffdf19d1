// The Kubernetes adapter of the launcher port: a task attempt becomes a Pod, Job or training job
// (built by @odin/k8s-manifests), and what happens to it is learned from watches — informers on
// pods, jobs and each training CRD, label-selected on Odin's managed-by label — never by polling.
//
// Each attempt has a small in-memory record: what it is, which states were reported (each at
// most once; a terminal state, or a cancel by Odin, ends it), its pods, and timers for pods stuck
// pending. Events are delivered in order per attempt and retried until the bus takes them; their
// ids are deterministic (`eventId`), so a restarted launcher re-deriving a state from the objects
// it re-lists publishes a duplicate the bus drops.
import { lstat, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { Writable } from "node:stream";
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  Log,
  makeInformer,
  type Informer,
  type ObjectCache,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import {
  apiResources,
  buildManifest,
  defaultManifestConfig,
  managedByLabel,
  managedByValue,
  ManifestError,
  selectorFor,
  type Manifest,
  type ManifestConfig,
  type SelectorScope,
} from "@odin/k8s-manifests";
import type { ResourceType } from "@odin/pipeline-spec";
import {
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  fromKubernetesError,
  InvalidArgumentError,
  NotFoundError,
  silentLogger,
  UnavailableError,
  type Logger,
} from "@odin/service-kit";
import type {
  AttemptRef,
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
  attemptKey,
  cancelledAnnotation,
  objectEventOf,
  type AttemptId,
  type ObjectLike,
  type Observation,
  ownerEnded,
  ownerOutcome,
  pendingTimeoutAnnotation,
  podEnded,
  podOutcome,
  podRunning,
  podStartTime,
  podStuck,
  type Stuck,
  toDate,
} from "./classify.js";
import {
  backoffDelay,
  defaultRetryPolicy,
  isNetworkError,
  KubernetesHttp,
  kubernetesApis,
  type KubernetesApis,
  type RetryPolicy,
  TokenBucket,
} from "./http.js";
import { AsyncQueue, SavedLogs, toLogLines } from "./logs.js";

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
  logger?: Logger;
}

/** Default `pending_timeout`: 5 minutes. */
export const defaultPendingTimeoutMs = 5 * 60_000;

type OwnerKind = Exclude<ResourceType, "Pod">;
const allResourceTypes: readonly ResourceType[] = [
  "Pod",
  "Job",
  "TFJob",
  "PyTorchJob",
  "MPIJob",
  "ElasticJob",
];
const kindByName: ReadonlyMap<string, ResourceType> = new Map(
  allResourceTypes.map((k) => [apiResources[k].kind, k]),
);

interface StuckPod {
  stuck: Stuck;
  /** What Kubernetes said first (ErrImagePull has the registry's answer; the BackOff after it does not). */
  first: Stuck;
  since: number;
  timer: NodeJS.Timeout;
}

/** What the backend remembers about one attempt. */
interface Attempt {
  readonly id: AttemptId;
  readonly key: string;
  namespace: string;
  kind?: ResourceType;
  objectName?: string;
  /** RUNNING was reported. */
  running: boolean;
  /** The terminal state reported, if any. */
  terminal?: TaskStateEvent["state"];
  /** Odin itself deleted the attempt's objects: nothing more is reported. */
  cancelled: boolean;
  pendingTimeoutMs?: number;
  /** Latest known state of each pod (kept after deletion, for exit codes). */
  readonly pods: Map<string, V1Pod>;
  readonly stuck: Map<string, StuckPod>;
  /** Deliveries in order. */
  chain: Promise<void>;
  removeTimer?: NodeJS.Timeout;
  /** Log followers to wake on any change. */
  readonly listeners: Set<() => void>;
}

function isDone(a: Attempt): boolean {
  return a.terminal !== undefined || a.cancelled;
}

function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function controllerOf(pod: V1Pod): { kind: string; name: string } | undefined {
  const ref =
    pod.metadata?.ownerReferences?.find((r) => r.controller) ?? pod.metadata?.ownerReferences?.[0];
  return ref ? { kind: ref.kind, name: ref.name } : undefined;
}

function containerStarted(pod: V1Pod, container: string): boolean {
  const s = pod.status?.containerStatuses?.find((c) => c.name === container);
  return Boolean(s?.state?.running ?? s?.state?.terminated);
}

/** A Writable that cuts its input into lines and hands each over. */
function lineWriter(onLine: (line: string) => void): Writable {
  let partial = "";
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      const text = partial + (typeof chunk === "string" ? chunk : chunk.toString("utf8"));
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) onLine(l);
      callback();
    },
    final(callback) {
      if (partial !== "") onLine(partial);
      partial = "";
      callback();
    },
  });
}

/** One informer, restarted with backoff whenever its watch or list fails. */
class ResourceWatch {
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError: unknown;

  constructor(
    readonly kind: ResourceType,
    readonly informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>,
    private readonly logger: Logger,
    private readonly policy: RetryPolicy,
  ) {
    informer.on("error", (err: unknown) => this.failed(err));
    informer.on("connect", () => {
      this.lastError = undefined;
    });
  }

  /** Lists and starts watching; resolves with the error when the first list failed. */
  async start(): Promise<unknown> {
    this.lastError = undefined;
    await this.informer.start();
    return this.lastError;
  }

  /** A watch event arrived: the connection works. */
  healthy(): void {
    this.failures = 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.informer.stop();
  }

  private failed(err: unknown): void {
    this.lastError = err;
    if (this.stopped) return;
    const code = httpCode(err) ?? (err as { statusCode?: unknown } | null)?.statusCode;
    const delay = backoffDelay(this.failures, {
      baseDelayMs: this.policy.baseDelayMs,
      maxDelayMs: code === 404 ? 60_000 : Math.max(this.policy.maxDelayMs, 1000),
    });
    const fields = { kind: this.kind, err, retryInMs: Math.round(delay) };
    if (code === 404) {
      if (this.failures === 0)
        this.logger.warn(
          `the ${this.kind} API is not installed; ${this.kind} tasks cannot run`,
          fields,
        );
    } else if (this.failures === 0) this.logger.info("watch ended with an error; resuming", fields);
    else this.logger.warn("watch keeps failing; resuming", fields);
    this.failures++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) void this.informer.start();
    }, delay);
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
  private readonly retryPolicy: RetryPolicy;
  private readonly pendingTimeoutMs: number;
  private readonly tombstoneMs: number;
  private readonly watchedTypes: readonly ResourceType[];
  private readonly attempts = new Map<string, Attempt>();
  private readonly watches = new Map<ResourceType | "pods", ResourceWatch>();
  private readonly logApi: Log;
  private report: ((event: TaskStateEvent) => Promise<void>) | undefined;
  private startedAt = Date.now();
  private closed = false;
  // Saving logs of finished pods: a small work queue, and per attempt the saves in flight.
  private readonly saveQueue: (() => Promise<void>)[] = [];
  private savesRunning = 0;
  private readonly saveConcurrency: number;
  private readonly savedPods = new Set<string>();
  private readonly savesInFlight = new Map<string, Set<Promise<void>>>();
  private readonly followAborts = new Set<AbortController>();

  constructor(private readonly options: KubernetesBackendOptions) {
    this.manifestConfig = { ...defaultManifestConfig, ...options.manifest };
    this.namespace = this.manifestConfig.namespace;
    this.logger = options.logger ?? silentLogger;
    this.retryPolicy = { ...defaultRetryPolicy, ...options.retry };
    this.limiter = new TokenBucket(options.qps ?? 50, options.burst ?? 100);
    this.http = new KubernetesHttp(this.limiter, this.retryPolicy);
    this.apis = kubernetesApis(options.kubeConfig, this.http);
    this.logApi = new Log(options.kubeConfig);
    this.pendingTimeoutMs = options.defaultPendingTimeoutMs ?? defaultPendingTimeoutMs;
    this.tombstoneMs = options.tombstoneMs ?? 5 * 60_000;
    this.watchedTypes = options.resourceTypes ?? allResourceTypes;
    this.saveConcurrency = options.logSaveConcurrency ?? 4;
    const logDir =
      options.logDir ??
      (options.dataRoot ? join(options.dataRoot, ".odin-logs") : join(tmpdir(), "odin-logs"));
    this.savedLogs = new SavedLogs(resolve(logDir));
  }

  // ---------------------------------------------------------------- watching

  async start(report: (event: TaskStateEvent) => Promise<void>): Promise<void> {
    if (this.report) throw new Error("KubernetesBackend.start was called twice");
    this.report = report;
    this.startedAt = Date.now();
    const kc = this.options.kubeConfig;
    const ns = this.namespace;
    const selector = `${managedByLabel}=${managedByValue}`;
    const { core, batch, custom } = this.apis;

    // Pods first, so that owners re-listed next find their pods' exit codes.
    const pods = makeInformer<KubernetesObject>(
      kc,
      `/api/v1/namespaces/${ns}/pods`,
      () => core.listNamespacedPod({ namespace: ns, labelSelector: selector }),
      selector,
    );
    const podWatch = new ResourceWatch("Pod", pods, this.logger, this.retryPolicy);
    this.watches.set("pods", podWatch);
    pods.on("add", (o) => this.onPod(o, false));
    pods.on("update", (o) => this.onPod(o, false));
    pods.on("delete", (o) => this.onPod(o, true));
    const podError = await podWatch.start();
    if (podError !== undefined) {
      await this.close();
      throw fromKubernetesError(podError, `list pods in namespace ${ns}`);
    }

    const owners = this.watchedTypes.filter((k): k is OwnerKind => k !== "Pod");
    const failures = await Promise.all(
      owners.map(async (kind) => {
        const r = apiResources[kind];
        const path = `/apis/${r.group}/${r.version}/namespaces/${ns}/${r.plural}`;
        const list =
          kind === "Job"
            ? () => batch.listNamespacedJob({ namespace: ns, labelSelector: selector })
            : () =>
                custom.listNamespacedCustomObject({
                  group: r.group,
                  version: r.version,
                  namespace: ns,
                  plural: r.plural,
                  labelSelector: selector,
                });
        const informer = makeInformer<KubernetesObject>(
          kc,
          path,
          list as () => Promise<KubernetesListObject<KubernetesObject>>,
          selector,
        );
        const watch = new ResourceWatch(kind, informer, this.logger, this.retryPolicy);
        this.watches.set(kind, watch);
        informer.on("add", (o) => this.onOwner(kind, o, false));
        informer.on("update", (o) => this.onOwner(kind, o, false));
        informer.on("delete", (o) => this.onOwner(kind, o, true));
        const err = await watch.start();
        return err === undefined ? undefined : { kind, err };
      }),
    );
    for (const f of failures) {
      // The informer retries by itself; only a failure of the core Job API stops the launcher.
      if (f && f.kind === "Job") {
        await this.close();
        throw fromKubernetesError(f.err, `list jobs in namespace ${ns}`);
      }
    }
    this.logger.info("watching Odin's objects", {
      namespace: ns,
      types: this.watchedTypes,
      attempts: this.attempts.size,
    });
  }

  /** The record of an attempt, made on first sight. */
  private attemptFor(id: AttemptId, namespace: string | undefined): Attempt {
    const key = attemptKey(id);
    let a = this.attempts.get(key);
    if (a === undefined) {
      a = {
        id,
        key,
        namespace: namespace ?? this.namespace,
        running: false,
        cancelled: false,
        pods: new Map(),
        stuck: new Map(),
        chain: Promise.resolve(),
        listeners: new Set(),
      };
      this.attempts.set(key, a);
    } else if (a.removeTimer) {
      clearTimeout(a.removeTimer);
      a.removeTimer = undefined;
    }
    return a;
  }

  private notePendingTimeout(a: Attempt, meta: ObjectLike["metadata"]): void {
    const value = Number(meta?.annotations?.[pendingTimeoutAnnotation]);
    if (a.pendingTimeoutMs === undefined && Number.isFinite(value) && value > 0) {
      a.pendingTimeoutMs = value;
    }
  }

  /** An attempt whose object Odin marked before deleting it (any replica may have) is over. */
  private noteCancelled(a: Attempt, meta: ObjectLike["metadata"]): void {
    if (meta?.annotations?.[cancelledAnnotation] !== undefined && !a.cancelled) {
      a.cancelled = true;
      this.clearAllStuck(a);
    }
  }

  private onPod(pod: V1Pod, deleted: boolean): void {
    this.watches.get("pods")?.healthy();
    const id = attemptIdOf(pod.metadata);
    const name = pod.metadata?.name;
    if (id === undefined || name === undefined) return;
    const a = this.attemptFor(id, pod.metadata?.namespace);
    const owner = controllerOf(pod);
    const ownerKind = owner ? kindByName.get(owner.kind) : "Pod";
    if (ownerKind === undefined) return; // a pod of something Odin does not make
    a.kind ??= ownerKind;
    a.objectName ??= owner?.name ?? name;
    this.notePendingTimeout(a, pod.metadata);
    if (ownerKind === "Pod") this.noteCancelled(a, pod.metadata);
    a.pods.set(name, pod);
    const podKey = `${a.namespace}/${name}`;
    if (deleted) {
      this.clearStuck(a, name);
      this.savedPods.delete(podKey);
      if (ownerKind === "Pod") this.mainObjectGone(a, "Pod", pod);
      this.notify(a);
      return;
    }
    if (podEnded(pod) && !this.savedPods.has(podKey)) this.queueLogSave(a, pod);
    if (!isDone(a)) {
      this.checkStuck(a, name, pod);
      if (podRunning(pod)) this.emit(a, { state: "RUNNING", time: podStartTime(pod) });
      if (ownerKind === "Pod") {
        const outcome = podOutcome(pod);
        if (outcome) this.emit(a, outcome);
      }
    }
    this.notify(a);
  }

  private onOwner(kind: OwnerKind, obj: KubernetesObject, deleted: boolean): void {
    this.watches.get(kind)?.healthy();
    const o = obj as ObjectLike;
    const id = attemptIdOf(o.metadata);
    const name = o.metadata?.name;
    if (id === undefined || name === undefined) return;
    const a = this.attemptFor(id, o.metadata?.namespace);
    a.kind = kind;
    a.objectName = name;
    this.notePendingTimeout(a, o.metadata);
    this.noteCancelled(a, o.metadata);
    if (deleted) this.mainObjectGone(a, kind, o);
    else if (!isDone(a) && ownerEnded(kind, o)) void this.reportOwnerOutcome(a, kind, o);
    this.notify(a);
  }

  /** Reports a Job's or training job's end, looking its pods up when the watch has not shown them. */
  private async reportOwnerOutcome(a: Attempt, kind: OwnerKind, obj: ObjectLike): Promise<void> {
    let outcome = ownerOutcome(kind, obj, [...a.pods.values()]);
    if (outcome === undefined || isDone(a)) return;
    if (!outcome.detailed) {
      try {
        const list = await this.apis.core.listNamespacedPod({
          namespace: a.namespace,
          labelSelector: selectorFor(a.id),
        });
        for (const p of list.items) {
          const n = p.metadata?.name;
          if (n !== undefined && !a.pods.has(n)) a.pods.set(n, p);
          else if (n !== undefined && podEnded(p)) a.pods.set(n, p);
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
    this.emit(a, observation);
  }

  /** The attempt's main object is gone: report how it ended, or that someone else deleted it. */
  private mainObjectGone(a: Attempt, kind: ResourceType, last: ObjectLike): void {
    this.clearAllStuck(a);
    if (!isDone(a)) {
      if (kind === "Pod" && podOutcome(last as V1Pod)) {
        this.emit(a, podOutcome(last as V1Pod) as Observation);
      } else if (kind !== "Pod" && ownerEnded(kind, last)) {
        void this.reportOwnerOutcome(a, kind, last);
      } else {
        this.emit(a, {
          state: "ERROR",
          reason: "Deleted",
          message: `${kind} ${last.metadata?.name ?? "?"} was deleted before it finished, not by Odin`,
          time: toDate(last.metadata?.deletionTimestamp) ?? new Date(),
        });
      }
    }
    if (a.removeTimer) clearTimeout(a.removeTimer);
    a.removeTimer = setTimeout(() => {
      if (this.attempts.get(a.key) === a && a.listeners.size === 0) this.attempts.delete(a.key);
    }, this.tombstoneMs);
    a.removeTimer.unref();
  }

  // ---------------------------------------------------------------- stuck pods

  private checkStuck(a: Attempt, podName: string, pod: V1Pod): void {
    const stuck = podStuck(pod);
    const entry = a.stuck.get(podName);
    if (stuck === undefined) {
      if (entry) this.clearStuck(a, podName);
      return;
    }
    if (entry) {
      entry.stuck = stuck;
      return;
    }
    // Measured from when this launcher saw it, unless Kubernetes says it started while the
    // launcher was down (then from Kubernetes' time, so a restart does not reset the clock).
    const now = Date.now();
    const k8sSince = stuck.since?.getTime() ?? toDate(pod.status?.startTime)?.getTime();
    // (Kubernetes times have whole seconds: only a time clearly before the start counts.)
    const since = k8sSince !== undefined && k8sSince + 1000 < this.startedAt ? k8sSince : now;
    const entryNew: StuckPod = {
      stuck,
      first: stuck,
      since,
      timer: this.stuckTimer(a, podName, since),
    };
    a.stuck.set(podName, entryNew);
  }

  private stuckTimer(a: Attempt, podName: string, since: number): NodeJS.Timeout {
    const timeout = a.pendingTimeoutMs ?? this.pendingTimeoutMs;
    const timer = setTimeout(
      () => this.stuckTooLong(a, podName),
      Math.max(0, since + timeout - Date.now()),
    );
    timer.unref();
    return timer;
  }

  private stuckTooLong(a: Attempt, podName: string): void {
    const entry = a.stuck.get(podName);
    if (entry === undefined || isDone(a) || this.closed) return;
    const timeout = a.pendingTimeoutMs ?? this.pendingTimeoutMs;
    if (Date.now() < entry.since + timeout) {
      entry.timer = this.stuckTimer(a, podName, entry.since); // the timeout grew meanwhile
      return;
    }
    const { reason } = entry.stuck;
    const message =
      entry.first.message === entry.stuck.message
        ? entry.stuck.message
        : `${entry.stuck.message} (earlier: ${entry.first.reason}: ${entry.first.message})`;
    const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;
    this.emit(a, {
      state: "ERROR",
      reason,
      message: `pod ${podName} could not start for ${seconds(Date.now() - entry.since)} (pending_timeout ${seconds(timeout)}): ${message}`,
    });
    // Remove it once the ERROR is delivered, so it cannot start later beside a retry.
    a.chain = a.chain.then(() => this.deleteAttemptObject(a).then(() => undefined));
  }

  private clearStuck(a: Attempt, podName: string): void {
    const entry = a.stuck.get(podName);
    if (entry) clearTimeout(entry.timer);
    a.stuck.delete(podName);
  }

  private clearAllStuck(a: Attempt): void {
    for (const name of [...a.stuck.keys()]) this.clearStuck(a, name);
  }

  // ---------------------------------------------------------------- reporting

  /** Reports a state of an attempt unless it was reported already or the attempt is over. */
  private emit(a: Attempt, o: Observation): void {
    if (isDone(a)) return;
    if (o.state === "RUNNING") {
      if (a.running) return;
      a.running = true;
    } else {
      a.terminal = o.state;
      this.clearAllStuck(a);
    }
    const event: TaskStateEvent = {
      runId: a.id.runId,
      task: a.id.task,
      attempt: a.id.attempt,
      state: o.state,
      objectName: a.objectName ?? "",
      time: o.time ?? new Date(),
      ...(o.exitCode !== undefined ? { exitCode: o.exitCode } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
      ...(o.message ? { message: o.message } : {}),
      ...(o.outputsJson ? { outputsJson: o.outputsJson } : {}),
    };
    a.chain = a.chain.then(() => this.deliver(event));
    this.notify(a);
  }

  private async deliver(event: TaskStateEvent): Promise<void> {
    const report = this.report;
    if (report === undefined) return;
    for (let retry = 0; !this.closed; retry++) {
      try {
        await report(event);
        return;
      } catch (err) {
        if (retry === 0 || retry % 10 === 0) {
          this.logger.warn("cannot deliver a task event; retrying", {
            run: event.runId,
            task: event.task,
            attempt: event.attempt,
            state: event.state,
            err,
          });
        }
        await sleep(backoffDelay(retry, { baseDelayMs: 100, maxDelayMs: 5000 }));
      }
    }
  }

  private notify(a: Attempt): void {
    for (const l of [...a.listeners]) l();
  }

  // ---------------------------------------------------------------- launch

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
    const id: AttemptId = { runId, task: spec.task.name, attempt };
    let manifest: Manifest;
    try {
      manifest = buildManifest({ ...spec, task }, this.manifestConfig);
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      const a = this.attemptFor(id, this.namespace);
      this.emit(a, { state: "ERROR", reason: "LaunchRefused", message: err.message });
      throw new InvalidArgumentError(`cannot launch task ${spec.task.name}: ${err.message}`, {
        cause: err,
      });
    }
    const a = this.attemptFor(id, manifest.namespace);
    a.kind = manifest.kind;
    a.objectName = manifest.name;
    if (pending !== undefined) a.pendingTimeoutMs = pending;
    const what = `create ${manifest.kind} ${manifest.name} in namespace ${manifest.namespace}`;
    for (let tries = 0; ; tries++) {
      try {
        await this.createObject(manifest);
        return { objectName: manifest.name, alreadyExisted: false };
      } catch (err) {
        if (httpCode(err) !== 409) throw this.launchFailed(a, err, what);
      }
      // Already there: launched before (or right now, by a concurrent call). Make sure it is ours.
      let existing: ObjectLike;
      try {
        existing = await this.readObject(manifest.kind, manifest.name);
      } catch (err) {
        if (httpCode(err) === 404 && tries < 3) continue; // deleted in between: create again
        throw this.launchFailed(a, err, `read ${manifest.kind} ${manifest.name}`);
      }
      const found = attemptIdOf(existing.metadata);
      if (found === undefined || attemptKey(found) !== a.key) {
        const message = `${what}: an object of that name exists and is not attempt ${attempt} of task ${spec.task.name} in run ${runId} (labels ${JSON.stringify(existing.metadata?.labels ?? {})})`;
        this.emit(a, { state: "ERROR", reason: "LaunchRefused", message });
        throw new AlreadyExistsError(message);
      }
      return { objectName: manifest.name, alreadyExisted: true };
    }
  }

  /** Maps a failed launch request; a refusal (not a transient failure) is also reported as ERROR. */
  private launchFailed(a: Attempt, err: unknown, what: string): Error {
    const mapped = fromKubernetesError(err, what);
    const transient =
      mapped instanceof UnavailableError ||
      mapped instanceof DeadlineExceededError ||
      isNetworkError(err);
    if (!transient) {
      this.emit(a, { state: "ERROR", reason: "LaunchRefused", message: mapped.message });
    }
    return mapped;
  }

  private async createObject(m: Manifest): Promise<void> {
    const { core, batch, custom } = this.apis;
    const namespace = m.namespace;
    switch (m.kind) {
      case "Pod":
        await core.createNamespacedPod({ namespace, body: m.body });
        return;
      case "Job":
        await batch.createNamespacedJob({ namespace, body: m.body });
        return;
      default:
        await custom.createNamespacedCustomObject({
          group: m.group,
          version: m.version,
          namespace,
          plural: m.plural,
          body: m.body,
        });
    }
  }

  private async readObject(kind: ResourceType, name: string): Promise<ObjectLike> {
    const { core, batch, custom } = this.apis;
    const namespace = this.namespace;
    if (kind === "Pod") return core.readNamespacedPod({ name, namespace });
    if (kind === "Job") return batch.readNamespacedJob({ name, namespace });
    const r = apiResources[kind];
    return (await custom.getNamespacedCustomObject({
      group: r.group,
      version: r.version,
      namespace,
      plural: r.plural,
      name,
    })) as ObjectLike;
  }

  /**
   * Deletes one object with background propagation; false when it was already gone. The object
   * is first annotated with why, so every launcher watching it (a replica, or this one after a
   * restart) knows the deletion is Odin's and does not report it as an ERROR.
   */
  private async deleteObject(kind: ResourceType, name: string, why: string): Promise<boolean> {
    const { core, batch, custom } = this.apis;
    const namespace = this.namespace;
    const propagationPolicy = "Background";
    const body = { metadata: { annotations: { [cancelledAnnotation]: why } } };
    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    try {
      if (kind === "Pod") await core.patchNamespacedPod({ name, namespace, body }, merge);
      else if (kind === "Job") await batch.patchNamespacedJob({ name, namespace, body }, merge);
      else {
        const r = apiResources[kind];
        await custom.patchNamespacedCustomObject(
          { group: r.group, version: r.version, namespace, plural: r.plural, name, body },
          merge,
        );
      }
    } catch (err) {
      if (httpCode(err) === 404) return false;
      throw fromKubernetesError(err, `mark ${kind} ${name} in namespace ${namespace} for deletion`);
    }
    try {
      if (kind === "Pod") await core.deleteNamespacedPod({ name, namespace, propagationPolicy });
      else if (kind === "Job")
        await batch.deleteNamespacedJob({ name, namespace, propagationPolicy });
      else {
        const r = apiResources[kind];
        await custom.deleteNamespacedCustomObject({
          group: r.group,
          version: r.version,
          namespace,
          plural: r.plural,
          name,
          propagationPolicy,
        });
      }
      return true;
    } catch (err) {
      if (httpCode(err) === 404) return false;
      throw fromKubernetesError(err, `delete ${kind} ${name} in namespace ${namespace}`);
    }
  }

  private async deleteAttemptObject(a: Attempt): Promise<boolean> {
    if (a.kind === undefined || a.objectName === undefined) return false;
    a.cancelled = true;
    try {
      await this.saveAttemptLogs(a, [...a.pods.values()]);
      return await this.deleteObject(a.kind, a.objectName, "pending-timeout");
    } catch (err) {
      this.logger.warn("cannot delete a stuck attempt's object", { attempt: a.key, err });
      return false;
    }
  }

  // ---------------------------------------------------------------- cancel and delete

  async cancel(ref: AttemptRef): Promise<number> {
    this.checkOpen();
    const scope: SelectorScope = { runId: ref.runId, task: ref.task };
    if (ref.attempt) scope.attempt = ref.attempt;
    return this.removeObjects(scope, "cancel");
  }

  async deleteRun(
    runId: string,
    options: { purgeData: boolean; runPath?: string },
  ): Promise<{ deleted: number; dataPurged: boolean }> {
    this.checkOpen();
    const deleted = await this.removeObjects({ runId }, "delete-run");
    let dataPurged = false;
    if (options.purgeData) {
      dataPurged = await this.purgeRunData(runId, options.runPath);
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
    const [objects, pods] = await Promise.all([
      this.listMainObjects(selector),
      this.listPods(selector),
    ]);
    const targets = new Map<string, { kind: ResourceType; name: string; a: Attempt }>();
    for (const { kind, obj } of objects) {
      const id = attemptIdOf(obj.metadata);
      const name = obj.metadata?.name;
      if (id === undefined || name === undefined) continue;
      targets.set(`${kind}/${name}`, { kind, name, a: this.attemptFor(id, this.namespace) });
    }
    // Objects launched so recently that a list may not show them yet.
    for (const a of this.attempts.values()) {
      if (a.kind === undefined || a.objectName === undefined || isDone(a)) continue;
      if (!inScope(a.id, scope)) continue;
      targets.set(`${a.kind}/${a.objectName}`, { kind: a.kind, name: a.objectName, a });
    }
    const before = new Map<Attempt, boolean>();
    for (const { a } of targets.values()) {
      before.set(a, a.cancelled);
      a.cancelled = true;
      this.clearAllStuck(a);
    }
    const podsByAttempt = new Map<Attempt, V1Pod[]>();
    for (const pod of pods) {
      const id = attemptIdOf(pod.metadata);
      if (id === undefined) continue;
      const a = this.attemptFor(id, this.namespace);
      podsByAttempt.set(a, [...(podsByAttempt.get(a) ?? []), pod]);
    }
    await Promise.all(
      [...podsByAttempt].map(([a, list]) =>
        this.saveAttemptLogs(a, list).catch((err: unknown) =>
          this.logger.warn("cannot save logs before deleting", { attempt: a.key, err }),
        ),
      ),
    );
    const list = [...targets.values()];
    const results = await Promise.allSettled(
      list.map(({ kind, name }) => this.deleteObject(kind, name, why)),
    );
    let deleted = 0;
    let failure: Error | undefined;
    results.forEach((r, i) => {
      const target = list[i];
      if (r.status === "fulfilled") {
        if (r.value) deleted++;
      } else if (target) {
        // Not deleted: it runs on, and its end must still be reported.
        target.a.cancelled = before.get(target.a) ?? false;
        failure ??= r.reason instanceof Error ? r.reason : new Error(String(r.reason));
      }
    });
    for (const { a } of list) this.notify(a);
    if (failure !== undefined) throw failure;
    return deleted;
  }

  /** Top-level objects (Pods without an owner, Jobs, training jobs) matching a selector. */
  private async listMainObjects(
    selector: string,
  ): Promise<{ kind: ResourceType; obj: ObjectLike }[]> {
    const { batch, custom } = this.apis;
    const namespace = this.namespace;
    const lists = await Promise.all(
      this.watchedTypes.map(async (kind) => {
        try {
          if (kind === "Pod") {
            const pods = await this.listPods(selector);
            return pods.filter((p) => controllerOf(p) === undefined).map((obj) => ({ kind, obj }));
          }
          if (kind === "Job") {
            const list = await batch.listNamespacedJob({ namespace, labelSelector: selector });
            return list.items.map((obj) => ({ kind, obj: obj }));
          }
          const r = apiResources[kind];
          const list = (await custom.listNamespacedCustomObject({
            group: r.group,
            version: r.version,
            namespace,
            plural: r.plural,
            labelSelector: selector,
          })) as { items?: ObjectLike[] };
          return (list.items ?? []).map((obj) => ({ kind, obj }));
        } catch (err) {
          if (httpCode(err) === 404) return []; // CRD not installed
          throw fromKubernetesError(err, `list ${kind} objects in namespace ${namespace}`);
        }
      }),
    );
    return lists.flat();
  }

  private async listPods(selector: string): Promise<V1Pod[]> {
    try {
      const list = await this.apis.core.listNamespacedPod({
        namespace: this.namespace,
        labelSelector: selector,
      });
      return list.items;
    } catch (err) {
      throw fromKubernetesError(err, `list pods in namespace ${this.namespace}`);
    }
  }

  /** Removes `<dataRoot>/<run>` — only that, only under the data root, never following a path out of it. */
  private async purgeRunData(runId: string, runPath: string | undefined): Promise<boolean> {
    const dataRoot = this.options.dataRoot;
    if (dataRoot === undefined) {
      throw new FailedPreconditionError(
        "cannot purge run data: the launcher has no data root configured (set ODIN_DATA_PATH)",
      );
    }
    let root: string;
    try {
      root = await realpath(dataRoot);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      throw new FailedPreconditionError(
        `cannot purge run data: the data root ${dataRoot} does not exist on the launcher (mount the data volume there, or set ODIN_DATA_PATH)`,
        { cause: err },
      );
    }
    const target = runPath === undefined ? join(root, runId) : resolve(runPath);
    // The run's directory is named after the run and sits directly in the data root (after
    // resolving symbolic links of the root and of the target's parent).
    if (!isAbsolute(target) || basename(target) !== runId) {
      throw new InvalidArgumentError(
        `refusing to purge ${JSON.stringify(runPath)}: the run's data directory must be <data root>/${runId}`,
      );
    }
    let parent: string;
    try {
      parent = await realpath(dirname(target));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return true;
      throw err;
    }
    if (parent !== root) {
      throw new InvalidArgumentError(
        `refusing to purge ${target}: it is not directly under the data root ${root}`,
      );
    }
    const path = join(root, runId);
    try {
      await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return true;
      throw err;
    }
    // rm does not follow a symbolic link: a link named like the run is removed, not its target.
    await rm(path, { recursive: true, force: true });
    return true;
  }

  // ---------------------------------------------------------------- saved logs

  private queueLogSave(a: Attempt, pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (name === undefined) return;
    this.savedPods.add(`${a.namespace}/${name}`);
    let resolveSave: () => void = () => undefined;
    const done = new Promise<void>((r) => (resolveSave = r));
    const inFlight = this.savesInFlight.get(a.key) ?? new Set();
    inFlight.add(done);
    this.savesInFlight.set(a.key, inFlight);
    this.saveQueue.push(async () => {
      try {
        // A finished pod's log does not change: one saved before (e.g. by a launcher that ran
        // before a restart) is kept.
        await this.savePodLogs(a.id, pod, true);
      } catch (err) {
        this.logger.warn("cannot save a finished pod's logs", { pod: name, err });
      } finally {
        inFlight.delete(done);
        if (inFlight.size === 0) this.savesInFlight.delete(a.key);
        resolveSave();
      }
    });
    this.pumpSaves();
  }

  private pumpSaves(): void {
    while (this.savesRunning < this.saveConcurrency && this.saveQueue.length > 0) {
      const job = this.saveQueue.shift();
      if (job === undefined) break;
      this.savesRunning++;
      void job().finally(() => {
        this.savesRunning--;
        this.pumpSaves();
      });
    }
  }

  private async saveAttemptLogs(a: Attempt, pods: readonly V1Pod[]): Promise<void> {
    await Promise.all(
      pods.map(async (pod) => {
        this.savedPods.add(`${a.namespace}/${pod.metadata?.name ?? ""}`);
        await this.savePodLogs(a.id, pod);
      }),
    );
  }

  /** Saves what each started container of a pod printed so far. */
  private async savePodLogs(id: AttemptId, pod: V1Pod, keepSaved = false): Promise<void> {
    const name = pod.metadata?.name;
    if (name === undefined || this.closed) return;
    for (const c of pod.spec?.containers ?? []) {
      if (!containerStarted(pod, c.name)) continue;
      if (keepSaved && (await this.savedLogs.has(id, name, c.name))) continue;
      let text: string;
      try {
        text = await this.apis.core.readNamespacedPodLog({
          name,
          namespace: pod.metadata?.namespace ?? this.namespace,
          container: c.name,
          timestamps: true,
        });
      } catch (err) {
        const code = httpCode(err);
        if (code === 404 || code === 400) continue; // gone, or never started
        throw err;
      }
      await this.savedLogs.save(id, name, c.name, text);
    }
  }

  private async awaitSaves(key: string): Promise<void> {
    const inFlight = this.savesInFlight.get(key);
    if (inFlight) await Promise.all([...inFlight]);
  }

  // ---------------------------------------------------------------- logs

  logs(ref: AttemptRef, options: LogOptions): AsyncIterable<LogLine> {
    return this.logLines(ref, options);
  }

  private async *logLines(ref: AttemptRef, options: LogOptions): AsyncGenerator<LogLine> {
    this.checkOpen();
    const attempt = ref.attempt || (await this.latestAttempt(ref.runId, ref.task));
    if (attempt === undefined) {
      throw new NotFoundError(
        `no attempt of task ${ref.task} in run ${ref.runId} is known (no objects, no saved logs)`,
      );
    }
    const id: AttemptId = { runId: ref.runId, task: ref.task, attempt };
    await this.awaitSaves(attemptKey(id));
    if (options.follow) yield* this.followLogs(id, options);
    else yield* this.snapshotLogs(id, options);
  }

  /** The highest attempt of a task the cluster, this launcher or its saved logs know. */
  private async latestAttempt(runId: string, task: string): Promise<number | undefined> {
    let best = 0;
    for (const a of this.attempts.values()) {
      if (a.id.runId === runId && a.id.task === task) best = Math.max(best, a.id.attempt);
    }
    const selector = selectorFor({ runId, task });
    const [objects, saved] = await Promise.all([
      this.listMainObjects(selector),
      this.savedLogs.attempts(runId, task).catch(() => []),
    ]);
    for (const { obj } of objects) best = Math.max(best, attemptIdOf(obj.metadata)?.attempt ?? 0);
    for (const n of saved) best = Math.max(best, n);
    return best > 0 ? best : undefined;
  }

  private wanted(pod: string, container: string, options: LogOptions): boolean {
    return (
      (options.pod === undefined || options.pod === "" || options.pod === pod) &&
      (options.container === undefined ||
        options.container === "" ||
        options.container === container)
    );
  }

  private async *snapshotLogs(id: AttemptId, options: LogOptions): AsyncGenerator<LogLine> {
    const live = (await this.listPods(selectorFor(id))).sort((x, y) =>
      (x.metadata?.name ?? "").localeCompare(y.metadata?.name ?? ""),
    );
    const covered = new Set<string>();
    for (const pod of live) {
      const name = pod.metadata?.name ?? "";
      for (const c of pod.spec?.containers ?? []) {
        if (!this.wanted(name, c.name, options)) continue;
        covered.add(`${name}/${c.name}`);
        let raw: string[] | undefined;
        if (containerStarted(pod, c.name)) {
          try {
            const text = await this.apis.core.readNamespacedPodLog({
              name,
              namespace: this.namespace,
              container: c.name,
              timestamps: true,
              ...(options.tailLines !== undefined ? { tailLines: options.tailLines } : {}),
            });
            raw = text === "" ? [] : text.replace(/\n$/, "").split("\n");
          } catch (err) {
            const code = httpCode(err);
            if (code !== 404 && code !== 400)
              throw fromKubernetesError(err, `read logs of ${name}`);
          }
        }
        raw ??= await this.savedLogs.read(id, name, c.name, options.tailLines);
        for (const line of toLogLines(raw ?? [], name, c.name)) yield line;
      }
    }
    for (const s of await this.savedLogs.list(id)) {
      if (covered.has(`${s.pod}/${s.container}`) || !this.wanted(s.pod, s.container, options))
        continue;
      const raw = await this.savedLogs.read(id, s.pod, s.container, options.tailLines);
      for (const line of toLogLines(raw ?? [], s.pod, s.container)) yield line;
    }
  }

  /**
   * Follows every pod of an attempt (pods that appear later too), each container from the moment
   * it starts; ends when the attempt is over and every stream has ended, or on `signal`.
   */
  private async *followLogs(id: AttemptId, options: LogOptions): AsyncGenerator<LogLine> {
    const key = attemptKey(id);
    const queue = new AsyncQueue<LogLine>();
    const abort = new AbortController();
    this.followAborts.add(abort);
    const active = new Map<string, Promise<void>>();
    const seen = new Set<string>(); // containers followed (or served from saved logs) already
    let ready = false;

    const maybeEnd = (): void => {
      if (!ready || queue.isEnded || active.size > 0) return;
      const a = this.attempts.get(key);
      const over = a === undefined || isDone(a);
      const podsOver =
        a !== undefined &&
        a.pods.size > 0 &&
        [...a.pods.values()].every((p) => podEnded(p) || !this.podExists(a, p));
      if (over || podsOver) queue.end();
    };
    const considerPod = (pod: V1Pod): void => {
      const name = pod.metadata?.name ?? "";
      for (const c of pod.spec?.containers ?? []) {
        const k = `${name}/${c.name}`;
        if (seen.has(k) || !this.wanted(name, c.name, options)) continue;
        if (!containerStarted(pod, c.name)) continue;
        seen.add(k);
        const run = this.followContainer(id, name, c.name, options, abort.signal, (line) =>
          queue.push(line),
        ).finally(() => {
          active.delete(k);
          maybeEnd();
        });
        active.set(k, run);
      }
    };
    const onChange = (): void => {
      const a = this.attempts.get(key);
      if (a !== undefined) {
        for (const pod of a.pods.values()) if (this.podExists(a, pod)) considerPod(pod);
      }
      maybeEnd();
    };
    const onAbort = (): void => {
      abort.abort();
      queue.end();
    };
    options.signal?.addEventListener("abort", onAbort);
    const record = this.attempts.get(key);
    record?.listeners.add(onChange);
    try {
      const live = await this.listPods(selectorFor(id));
      const liveNames = new Set(live.map((p) => p.metadata?.name ?? ""));
      for (const s of await this.savedLogs.list(id)) {
        if (liveNames.has(s.pod) || !this.wanted(s.pod, s.container, options)) continue;
        seen.add(`${s.pod}/${s.container}`);
        const raw = await this.savedLogs.read(id, s.pod, s.container, options.tailLines);
        for (const line of toLogLines(raw ?? [], s.pod, s.container)) queue.push(line);
      }
      for (const pod of live) considerPod(pod);
      ready = true;
      onChange();
      if (options.signal?.aborted) onAbort();
      for await (const line of queue) yield line;
    } finally {
      record?.listeners.delete(onChange);
      options.signal?.removeEventListener("abort", onAbort);
      abort.abort();
      this.followAborts.delete(abort);
      await Promise.allSettled([...active.values()]);
    }
  }

  /** Whether the backend believes the pod still exists (its informer has not reported it deleted). */
  private podExists(a: Attempt, pod: V1Pod): boolean {
    const name = pod.metadata?.name ?? "";
    const cached = this.watches.get("pods")?.informer.get(name, a.namespace);
    return cached !== undefined;
  }

  /** Streams one container until it ends, the pod goes, or `signal`; falls back to its saved log. */
  private async followContainer(
    id: AttemptId,
    pod: string,
    container: string,
    options: LogOptions,
    signal: AbortSignal,
    push: (line: LogLine) => void,
  ): Promise<void> {
    const writer = lineWriter((raw) => {
      for (const l of toLogLines([raw], pod, container)) push(l);
    });
    const finished = new Promise<void>((resolve) => {
      writer.once("finish", resolve);
      writer.once("close", resolve);
      writer.once("error", () => resolve());
    });
    let controller: AbortController;
    try {
      controller = await this.logApi.log(this.namespace, pod, container, writer, {
        follow: true,
        timestamps: true,
        ...(options.tailLines !== undefined ? { tailLines: options.tailLines } : {}),
      });
    } catch (err) {
      const code = httpCode(err);
      if (code !== 404 && code !== 400) {
        this.logger.warn("cannot follow a pod's log", { pod, container, err });
      }
      const raw = await this.savedLogs.read(id, pod, container, options.tailLines);
      for (const l of toLogLines(raw ?? [], pod, container)) push(l);
      return;
    }
    // The Log API does not end our stream when its connection breaks; stop it ourselves when the
    // caller goes, or a while after the pod is gone or has ended.
    const stop = (): void => {
      controller.abort();
      writer.end();
    };
    signal.addEventListener("abort", stop);
    const a = this.attempts.get(attemptKey(id));
    let graceTimer: NodeJS.Timeout | undefined;
    const watchPod = (): void => {
      const p = a?.pods.get(pod);
      const gone = a !== undefined && p !== undefined && (!this.podExists(a, p) || podEnded(p));
      if (gone && graceTimer === undefined) graceTimer = setTimeout(stop, 2000);
    };
    a?.listeners.add(watchPod);
    watchPod();
    try {
      await finished;
    } finally {
      signal.removeEventListener("abort", stop);
      a?.listeners.delete(watchPod);
      if (graceTimer) clearTimeout(graceTimer);
    }
  }

  // ---------------------------------------------------------------- events

  async events(ref: AttemptRef): Promise<ObjectEvent[]> {
    this.checkOpen();
    const scope: SelectorScope = { runId: ref.runId, task: ref.task };
    if (ref.attempt) scope.attempt = ref.attempt;
    const selector = selectorFor(scope);
    const names = new Map<string, number>();
    const [objects, pods] = await Promise.all([
      this.listMainObjects(selector),
      this.listPods(selector),
    ]);
    for (const o of [...objects.map((x) => x.obj), ...pods]) {
      const id = attemptIdOf(o.metadata);
      if (id && o.metadata?.name) names.set(o.metadata.name, id.attempt);
    }
    // Pods already gone: the backend remembers them, and their saved logs name them.
    for (const a of this.attempts.values()) {
      if (!inScope(a.id, scope)) continue;
      if (a.objectName) names.set(a.objectName, a.id.attempt);
      for (const pod of a.pods.keys()) names.set(pod, a.id.attempt);
    }
    const attempts = ref.attempt
      ? [ref.attempt]
      : await this.savedLogs.attempts(ref.runId, ref.task).catch(() => []);
    for (const n of attempts) {
      const id = { runId: ref.runId, task: ref.task, attempt: n };
      for (const s of await this.savedLogs.list(id).catch(() => [])) names.set(s.pod, n);
    }
    const lists = await Promise.all(
      [...names].map(async ([name, attempt]) => {
        try {
          const list = await this.apis.core.listNamespacedEvent({
            namespace: this.namespace,
            fieldSelector: `involvedObject.name=${name}`,
          });
          return list.items.map((e) => objectEventOf(e, attempt));
        } catch (err) {
          throw fromKubernetesError(err, `list events of ${name}`);
        }
      }),
    );
    return lists.flat().sort((x, y) => x.time.getTime() - y.time.getTime());
  }

  // ---------------------------------------------------------------- lifecycle

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.watches.values()].map((w) => w.stop().catch(() => undefined)));
    for (const a of this.attempts.values()) {
      this.clearAllStuck(a);
      if (a.removeTimer) clearTimeout(a.removeTimer);
    }
    for (const abort of this.followAborts) abort.abort();
    this.limiter.drain();
    this.http.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new UnavailableError("the Kubernetes launcher is shutting down");
  }
}

function inScope(id: AttemptId, scope: SelectorScope): boolean {
  return (
    (scope.runId === undefined || scope.runId === id.runId) &&
    (scope.task === undefined || scope.task === id.task) &&
    (scope.attempt === undefined || scope.attempt === id.attempt)
  );
}
