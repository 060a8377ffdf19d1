// A task's logs on Kubernetes: saving what finished pods printed (a small work queue, so a burst
// of finished pods does not flood the API), reading an attempt's logs (live pods first, saved
// logs for pods that are gone) and following them while the attempt runs.
import { Writable } from "node:stream";
import { type Log, type V1Pod } from "@kubernetes/client-node";
import { selectorFor } from "@odin/k8s-manifests";
import { fromKubernetesError, type Logger } from "@odin/service-kit";
import { attemptKey, type AttemptId } from "../attempt/core.js";
import type { LogLine, LogOptions } from "../backend.js";
import { podEnded } from "./classify.js";
import type { KubernetesApis } from "./http.js";
import { AsyncQueue, type SavedLogs, toLogLines } from "./logs.js";
import { httpCode, type KubernetesObjects } from "./objects.js";

/** What log following needs to know of an attempt the backend tracks. */
export interface AttemptView {
  readonly namespace: string;
  /** Latest known state of each pod (kept after deletion). */
  readonly pods: ReadonlyMap<string, V1Pod>;
  /** Ended, or cancelled by Odin. */
  readonly done: boolean;
  /** Called on any change of the attempt. */
  readonly listeners: Set<() => void>;
}

/** What {@link PodLogs} needs from the backend. */
export interface PodLogsSetup {
  apis: KubernetesApis;
  logApi: Log;
  objects: KubernetesObjects;
  saved: SavedLogs;
  logger: Logger;
  /** Pod logs saved at once. */
  concurrency: number;
  attempt(key: string): AttemptView | undefined;
  /** Whether the backend believes the pod still exists. */
  podExists(namespace: string, name: string): boolean;
}

function containerStarted(pod: V1Pod, container: string): boolean {
  const s = pod.status?.containerStatuses?.find((c) => c.name === container);
  return Boolean(s?.state?.running ?? s?.state?.terminated);
}

function wanted(pod: string, container: string, options: LogOptions): boolean {
  return (
    (options.pod === undefined || options.pod === "" || options.pod === pod) &&
    (options.container === undefined || options.container === "" || options.container === container)
  );
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

/** Saving, reading and following the logs of Odin's pods. */
export class PodLogs {
  private readonly queue: (() => Promise<void>)[] = [];
  private running = 0;
  private readonly savedPods = new Set<string>();
  private readonly inFlight = new Map<string, Set<Promise<void>>>();
  private readonly follows = new Set<AbortController>();
  private closed = false;

  constructor(private readonly setup: PodLogsSetup) {}

  /** A pod of the attempt finished: its log is saved (once), in the background. */
  podFinished(id: AttemptId, namespace: string, pod: V1Pod): void {
    const name = pod.metadata?.name;
    const podKey = `${namespace}/${name}`;
    if (name === undefined || this.savedPods.has(podKey)) return;
    this.savedPods.add(podKey);
    const key = attemptKey(id);
    let resolveSave: () => void = () => undefined;
    const done = new Promise<void>((r) => (resolveSave = r));
    const inFlight = this.inFlight.get(key) ?? new Set();
    inFlight.add(done);
    this.inFlight.set(key, inFlight);
    this.queue.push(async () => {
      try {
        // A finished pod's log does not change: one saved before (e.g. by a launcher that ran
        // before a restart) is kept.
        await this.savePod(id, pod, true);
      } catch (err) {
        this.setup.logger.warn("cannot save a finished pod's logs", { pod: name, err });
      } finally {
        inFlight.delete(done);
        if (inFlight.size === 0) this.inFlight.delete(key);
        resolveSave();
      }
    });
    this.pump();
  }

  /** A pod is gone: a pod of the same name later is a new one. */
  podGone(namespace: string, name: string): void {
    this.savedPods.delete(`${namespace}/${name}`);
  }

  /** Saves what the pods printed so far (before Odin deletes them). */
  async saveNow(id: AttemptId, namespace: string, pods: readonly V1Pod[]): Promise<void> {
    await Promise.all(
      pods.map(async (pod) => {
        this.savedPods.add(`${namespace}/${pod.metadata?.name ?? ""}`);
        await this.savePod(id, pod);
      }),
    );
  }

  /** An attempt's log lines: a snapshot, or followed while it runs. */
  async *read(id: AttemptId, options: LogOptions): AsyncGenerator<LogLine> {
    const inFlight = this.inFlight.get(attemptKey(id));
    if (inFlight) await Promise.all([...inFlight]);
    if (options.follow) yield* this.follow(id, options);
    else yield* this.snapshot(id, options);
  }

  /** Stops saving and every follow. */
  close(): void {
    this.closed = true;
    for (const abort of this.follows) abort.abort();
  }

  private pump(): void {
    while (this.running < this.setup.concurrency && this.queue.length > 0) {
      const job = this.queue.shift();
      if (job === undefined) break;
      this.running++;
      void job().finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  /** Saves what each started container of a pod printed so far. */
  private async savePod(id: AttemptId, pod: V1Pod, keepSaved = false): Promise<void> {
    const name = pod.metadata?.name;
    if (name === undefined || this.closed) return;
    for (const c of pod.spec?.containers ?? []) {
      if (!containerStarted(pod, c.name)) continue;
      if (keepSaved && (await this.setup.saved.has(id, name, c.name))) continue;
      let text: string;
      try {
        text = await this.setup.apis.core.readNamespacedPodLog({
          name,
          namespace: pod.metadata?.namespace ?? this.setup.objects.namespace,
          container: c.name,
          timestamps: true,
        });
      } catch (err) {
        const code = httpCode(err);
        if (code === 404 || code === 400) continue; // gone, or never started
        throw err;
      }
      await this.setup.saved.save(id, name, c.name, text);
    }
  }

  private async *snapshot(id: AttemptId, options: LogOptions): AsyncGenerator<LogLine> {
    const { objects, saved, apis } = this.setup;
    const live = (await objects.listPods(selectorFor(id))).sort((x, y) =>
      (x.metadata?.name ?? "").localeCompare(y.metadata?.name ?? ""),
    );
    const covered = new Set<string>();
    for (const pod of live) {
      const name = pod.metadata?.name ?? "";
      for (const c of pod.spec?.containers ?? []) {
        if (!wanted(name, c.name, options)) continue;
        covered.add(`${name}/${c.name}`);
        let raw: string[] | undefined;
        if (containerStarted(pod, c.name)) {
          try {
            const text = await apis.core.readNamespacedPodLog({
              name,
              namespace: objects.namespace,
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
        raw ??= await saved.read(id, name, c.name, options.tailLines);
        for (const line of toLogLines(raw ?? [], name, c.name)) yield line;
      }
    }
    for (const s of await saved.list(id)) {
      if (covered.has(`${s.pod}/${s.container}`) || !wanted(s.pod, s.container, options)) continue;
      const raw = await saved.read(id, s.pod, s.container, options.tailLines);
      for (const line of toLogLines(raw ?? [], s.pod, s.container)) yield line;
    }
  }

  /**
   * Follows every pod of an attempt (pods that appear later too), each container from the moment
   * it starts; ends when the attempt is over and every stream has ended, or on `signal`.
   */
  private async *follow(id: AttemptId, options: LogOptions): AsyncGenerator<LogLine> {
    const key = attemptKey(id);
    const { saved, objects } = this.setup;
    const queue = new AsyncQueue<LogLine>();
    const abort = new AbortController();
    this.follows.add(abort);
    const active = new Map<string, Promise<void>>();
    const seen = new Set<string>(); // containers followed (or served from saved logs) already
    let ready = false;
    const exists = (a: AttemptView, pod: V1Pod) =>
      this.setup.podExists(a.namespace, pod.metadata?.name ?? "");

    const maybeEnd = (): void => {
      if (!ready || queue.isEnded || active.size > 0) return;
      const a = this.setup.attempt(key);
      const podsOver =
        a !== undefined &&
        a.pods.size > 0 &&
        [...a.pods.values()].every((p) => podEnded(p) || !exists(a, p));
      if (a === undefined || a.done || podsOver) queue.end();
    };
    const considerPod = (pod: V1Pod): void => {
      const name = pod.metadata?.name ?? "";
      for (const c of pod.spec?.containers ?? []) {
        const k = `${name}/${c.name}`;
        if (seen.has(k) || !wanted(name, c.name, options)) continue;
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
      const a = this.setup.attempt(key);
      if (a !== undefined) {
        for (const pod of a.pods.values()) if (exists(a, pod)) considerPod(pod);
      }
      maybeEnd();
    };
    const onAbort = (): void => {
      abort.abort();
      queue.end();
    };
    options.signal?.addEventListener("abort", onAbort);
    const record = this.setup.attempt(key);
    record?.listeners.add(onChange);
    try {
      const live = await objects.listPods(selectorFor(id));
      const liveNames = new Set(live.map((p) => p.metadata?.name ?? ""));
      for (const s of await saved.list(id)) {
        if (liveNames.has(s.pod) || !wanted(s.pod, s.container, options)) continue;
        seen.add(`${s.pod}/${s.container}`);
        const raw = await saved.read(id, s.pod, s.container, options.tailLines);
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
      this.follows.delete(abort);
      await Promise.allSettled([...active.values()]);
    }
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
      controller = await this.setup.logApi.log(
        this.setup.objects.namespace,
        pod,
        container,
        writer,
        {
          follow: true,
          timestamps: true,
          ...(options.tailLines !== undefined ? { tailLines: options.tailLines } : {}),
        },
      );
    } catch (err) {
      const code = httpCode(err);
      if (code !== 404 && code !== 400) {
        this.setup.logger.warn("cannot follow a pod's log", { pod, container, err });
      }
      const raw = await this.setup.saved.read(id, pod, container, options.tailLines);
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
    const a = this.setup.attempt(attemptKey(id));
    let graceTimer: NodeJS.Timeout | undefined;
    const watchPod = (): void => {
      const p = a?.pods.get(pod);
      const gone =
        a !== undefined &&
        p !== undefined &&
        (!this.setup.podExists(a.namespace, pod) || podEnded(p));
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
}
