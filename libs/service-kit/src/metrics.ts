// Prometheus metrics for one server: a registry of its own (so several servers in one process,
// as in embedded mode and tests, do not collide), request counts and latencies per RPC, and the
// default process metrics, served as text on a separate HTTP port with a /healthz probe.
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";
import type { Logger } from "./logger.js";

/** The metrics a server records. */
export interface ServerMetrics {
  /** The server's own registry (default process metrics plus the RPC metrics). */
  readonly registry: Registry;
  /** Records one finished RPC. */
  observe(service: string, method: string, code: string, seconds: number): void;
}

/** Creates a registry with `odin_grpc_server_requests_total` and `…_request_duration_seconds`. */
export function createServerMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
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
