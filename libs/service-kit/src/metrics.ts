// Prometheus metrics: a registry per server (so several servers in one process, as in embedded
// mode and tests, do not collide) with the default process metrics, served as text on a separate
// HTTP port with a /healthz probe — and the catalog of Odin's own metric families, one function
// per part that records them (gRPC servers, the scheduler, the Kubernetes API client, the NATS
// adapters, the gateway). docs in deploy/README.md ("Metrics and alerts") list the same families.
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "./logger.js";

/** Latency buckets, in seconds, from a millisecond to minutes. */
const latencyBuckets = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

/** A Prometheus registry (prom-client's): what /metrics serves. */
export type MetricsRegistry = Registry;

/** A registry with the default process metrics (CPU, memory, event loop lag, handles). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** The metrics a server records. */
export interface ServerMetrics {
  /** The server's own registry (default process metrics plus the RPC metrics). */
  readonly registry: Registry;
  /** Records one finished RPC. */
  observe(service: string, method: string, code: string, seconds: number): void;
}

/**
 * `odin_grpc_server_requests_total` and `…_request_duration_seconds` on `registry` (default: a new
 * one with the process metrics).
 */
export function createServerMetrics(registry: Registry = createMetricsRegistry()): ServerMetrics {
  const labelNames = ["service", "method", "code"] as const;
  const requests = new Counter({
    name: "odin_grpc_server_requests_total",
    help: "gRPC calls finished by the server, by service, method and status code.",
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "odin_grpc_server_request_duration_seconds",
    help: "Time from a gRPC call's arrival to its status, by service, method and status code.",
    labelNames,
    // From cache hits (~1 ms) to long pushes and streams (minutes).
    buckets: latencyBuckets,
    registers: [registry],
  });
  return {
    registry,
    observe(service, method, code, seconds) {
      requests.inc({ service, method, code });
      duration.observe({ service, method, code }, seconds);
    },
  };
}

/**
 * What the scheduler counts at each scrape (the runs it follows: every unfinished run). Each
 * state it can count is a key (at 0 when none), so every series exists from the first scrape.
 */
export interface SchedulerCounts {
  /** Unfinished runs by state. */
  runs(): Readonly<Record<string, number>>;
  /** Tasks of unfinished runs by state. */
  tasks(): Readonly<Record<string, number>>;
  /** Tasks whose dependencies are done but that wait for capacity (the global cap, `parallelism`). */
  queuedTasks(): number;
}

/** What the scheduler records; see {@link schedulerMetrics}. */
export interface SchedulerMetrics {
  /** Reads `counts` at every scrape for the gauges. */
  follow(counts: SchedulerCounts): void;
  /** A task's object was created (the launcher answered), `seconds` after the task became ready. */
  launched(seconds: number): void;
  /** This replica recorded a run's end. */
  runFinished(state: string): void;
}

/**
 * The scheduler's families: `odin_runs{state}` and `odin_tasks{state}` (gauges over unfinished
 * runs), `odin_tasks_queued` (gauge), `odin_task_launch_duration_seconds` (histogram: ready to
 * object created) and `odin_runs_finished_total{state}`.
 */
export function schedulerMetrics(registry: Registry): SchedulerMetrics {
  let counts: SchedulerCounts | undefined;
  new Gauge({
    name: "odin_runs",
    help: "Unfinished runs by state, of the runs this replica drives (the replicas split them: aggregate with sum).",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of Object.entries(counts?.runs() ?? {})) this.set({ state }, n);
    },
  });
  new Gauge({
    name: "odin_tasks",
    help: "Tasks of unfinished runs by state, of the runs this replica drives (aggregate with sum).",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of Object.entries(counts?.tasks() ?? {})) this.set({ state }, n);
    },
  });
  new Gauge({
    name: "odin_tasks_queued",
    help: "Tasks ready to run (dependencies done) but not launched: held by the global cap (ODIN_MAX_RUNNING_TASKS) or their pipeline's parallelism.",
    registers: [registry],
    collect() {
      this.set(counts?.queuedTasks() ?? 0);
    },
  });
  const launch = new Histogram({
    name: "odin_task_launch_duration_seconds",
    help: "Time from a task becoming ready (run submitted, dependencies done, retry due) to its object (pod, job, process) being created.",
    buckets: latencyBuckets,
    registers: [registry],
  });
  const finished = new Counter({
    name: "odin_runs_finished_total",
    help: "Runs that ended, by final state, counted by the scheduler replica that recorded the end.",
    labelNames: ["state"],
    registers: [registry],
  });
  for (const state of ["SUCCEEDED", "FAILED", "CANCELLED"]) finished.inc({ state }, 0);
  return {
    follow: (c) => {
      counts = c;
    },
    launched: (seconds) => launch.observe(seconds),
    runFinished: (state) => finished.inc({ state }),
  };
}

/** What the launcher's Kubernetes API client records; see {@link kubernetesApiMetrics}. */
export interface KubernetesApiMetrics {
  /** One request answered (`code`: the HTTP status) or failed to get an answer (`code` "error"). */
  request(verb: string, code: string, seconds: number): void;
  /** Time a request waited for the client-side rate limit (`ODIN_K8S_QPS` / `ODIN_K8S_BURST`). */
  throttled(seconds: number): void;
}

/**
 * `odin_kubernetes_requests_total{verb,code}`, `odin_kubernetes_request_duration_seconds{verb}`
 * and `odin_kubernetes_rate_limit_wait_seconds` (histograms). Each try of a retried request counts.
 */
export function kubernetesApiMetrics(registry: Registry): KubernetesApiMetrics {
  const requests = new Counter({
    name: "odin_kubernetes_requests_total",
    help: 'Kubernetes API requests by HTTP verb and status code (code "error": no answer, e.g. connection refused); 429 is the API server throttling.',
    labelNames: ["verb", "code"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "odin_kubernetes_request_duration_seconds",
    help: "Kubernetes API request latency by HTTP verb (each try; not the long-lived watches and log streams).",
    labelNames: ["verb"],
    buckets: latencyBuckets,
    registers: [registry],
  });
  const wait = new Histogram({
    name: "odin_kubernetes_rate_limit_wait_seconds",
    help: "Time Kubernetes API requests waited for the launcher's client-side rate limit (ODIN_K8S_QPS, ODIN_K8S_BURST).",
    buckets: [0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return {
    request(verb, code, seconds) {
      requests.inc({ verb, code });
      duration.observe({ verb }, seconds);
    },
    throttled: (seconds) => wait.observe(seconds),
  };
}

/** Counts a failed operation of a NATS adapter, by operation name. */
export type NatsErrorObserver = (operation: string) => void;

/**
 * `odin_nats_errors_total{component,operation}`: operations of the run store (`run_store`: get,
 * create, update, put, delete, list, watch) and the event bus (`event_bus`: publish, consume) that
 * failed — NATS unreachable, timed out, refused — not lost compare-and-sets, which are normal.
 */
export function natsErrorMetrics(registry: Registry): {
  runStore: NatsErrorObserver;
  eventBus: NatsErrorObserver;
} {
  const errors = new Counter({
    name: "odin_nats_errors_total",
    help: "Failed operations of the run store (component run_store) and the event bus (event_bus) on NATS JetStream, by operation.",
    labelNames: ["component", "operation"],
    registers: [registry],
  });
  const operations = {
    run_store: ["get", "create", "update", "put", "delete", "list", "watch"],
    event_bus: ["publish", "consume"],
  };
  for (const [component, ops] of Object.entries(operations))
    for (const operation of ops) errors.inc({ component, operation }, 0);
  return {
    runStore: (operation) => errors.inc({ component: "run_store", operation }),
    eventBus: (operation) => errors.inc({ component: "event_bus", operation }),
  };
}

/** `odin_gateway_backend_serving{service}`: 1 while the gateway's backend of a service answers SERVING. */
export function gatewayBackendMetrics(
  registry: Registry,
): (service: string, serving: boolean) => void {
  const gauge = new Gauge({
    name: "odin_gateway_backend_serving",
    help: "1 while the gateway's backend for a service answers its health check SERVING, 0 while it is unreachable or not serving.",
    labelNames: ["service"],
    registers: [registry],
  });
  return (service, serving) => gauge.set({ service }, serving ? 1 : 0);
}

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** The bound port. */
  readonly port: number;
  /** Stops listening and closes idle connections. */
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text) and `GET /healthz` (200 while `serving()`, else 503) on
 * `host:port` (port 0 picks a free one).
 */
export async function startMetricsEndpoint(options: {
  host: string;
  port: number;
  metrics: ServerMetrics;
  serving: () => boolean;
  logger: Logger;
}): Promise<MetricsEndpoint> {
  const { metrics, serving, logger } = options;
  const server: HttpServer = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text);
        },
        (err: unknown) => {
          logger.error("cannot collect metrics", { err });
          res.writeHead(500, { "content-type": "text/plain" }).end("cannot collect metrics\n");
        },
      );
      return;
    }
    if (path === "/healthz") {
      const ok = serving();
      res
        .writeHead(ok ? 200 : 503, { "content-type": "text/plain" })
        .end(ok ? "ok\n" : "shutting down\n");
      return;
    }
    res
      .writeHead(404, { "content-type": "text/plain" })
      .end("not found; try /metrics or /healthz\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
