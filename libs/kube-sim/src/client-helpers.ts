// Client-side helpers shared by kube-sim's own tests (not exported; named so the test runner
// does not take it for a test file).
import {
  type KubeConfig,
  type V1Pod,
  type V1PodTemplateSpec,
  Watch,
} from "@kubernetes/client-node";
import type { KubeObject } from "./types.js";

/** A watch event as the client delivered it. */
export interface SeenEvent {
  type: string;
  object: KubeObject;
}

/** A client-side watch that records every event and how it ended. */
export interface RecordedWatch {
  readonly events: SeenEvent[];
  /** The error (or null) the client passed to `done`, once it ended. */
  readonly ended: Promise<unknown>;
  /** Resolves with the first recorded event satisfying `predicate`. */
  next(predicate: (e: SeenEvent) => boolean, timeoutMs?: number): Promise<SeenEvent>;
  stop(): void;
}

/** Opens a watch through the real client `Watch` and records what it sees. */
export async function recordWatch(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean> = {},
): Promise<RecordedWatch> {
  const events: SeenEvent[] = [];
  const waiters: { predicate: (e: SeenEvent) => boolean; resolve: (e: SeenEvent) => void }[] = [];
  let resolveEnded: (err: unknown) => void = () => undefined;
  const ended = new Promise<unknown>((resolve) => (resolveEnded = resolve));
  const controller = await new Watch(kc).watch(
    path,
    query,
    (type: string, object: KubeObject) => {
      const e = { type, object };
      events.push(e);
      for (const w of [...waiters]) {
        if (w.predicate(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    },
    (err: unknown) => resolveEnded(err),
  );
  return {
    events,
    ended,
    next(predicate, timeoutMs = 60_000) {
      const found = events.find(predicate);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(`no matching watch event within ${timeoutMs} ms; saw: ${describe(events)}`),
          );
        }, timeoutMs);
        waiters.push({
          predicate,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
    stop() {
      controller.abort();
    },
  };
}

function describe(events: SeenEvent[]): string {
  return events
    .map((e) => `${e.type} ${e.object.metadata.name ?? ""} ${phase(e.object)}`)
    .join("; ");
}

/** `status.phase` of an object, or "". */
export function phase(object: KubeObject): string {
  const status = object["status"] as { phase?: string } | undefined;
  return status?.phase ?? "";
}

/** Polls `check` until it returns a value other than undefined. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A minimal pod manifest. */
export function podBody(
  name: string,
  options: {
    image?: string;
    labels?: Record<string, string>;
    script?: object;
    containers?: string[];
  } = {},
): V1Pod {
  const metadata: NonNullable<V1Pod["metadata"]> = { name };
  if (options.labels !== undefined) metadata.labels = options.labels;
  if (options.script !== undefined)
    metadata.annotations = { "kube-sim/script": JSON.stringify(options.script) };
  const image = options.image ?? "busybox:1.36";
  return {
    metadata,
    spec: {
      restartPolicy: "Never",
      containers: (options.containers ?? ["main"]).map((c) => ({
        name: c,
        image,
        command: ["true"],
      })),
    },
  };
}

/** A pod template for Jobs and training jobs. */
export function template(options: { image?: string; script?: object } = {}): V1PodTemplateSpec {
  const metadata: NonNullable<V1PodTemplateSpec["metadata"]> = {};
  if (options.script !== undefined)
    metadata.annotations = { "kube-sim/script": JSON.stringify(options.script) };
  return {
    metadata,
    spec: {
      restartPolicy: "Never",
      containers: [{ name: "main", image: options.image ?? "trainer:1" }],
    },
  };
}

/** The `code` of an ApiException-like error (undefined otherwise). */
export function codeOf(error: unknown): number | undefined {
  return typeof error === "object" &&
    error !== null &&
    "code" in error &&
    typeof error.code === "number"
    ? error.code
    : undefined;
}

/** The parsed `body` of an ApiException (a Kubernetes Status), or undefined. */
export function statusOf(
  error: unknown,
): { reason?: string; message?: string; code?: number } | undefined {
  if (typeof error !== "object" || error === null || !("body" in error)) return undefined;
  const body = error.body;
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as { reason?: string; message?: string };
    } catch {
      return undefined;
    }
  }
  return typeof body === "object" && body !== null ? body : undefined;
}
