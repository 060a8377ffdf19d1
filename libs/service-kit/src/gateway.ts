// One address for every Odin service: a gRPC router that forwards each call, untouched (bytes,
// metadata, deadline, status, trailers), to the service that implements it. The services still
// authenticate every call themselves. It also answers what a client asks of one address before
// calling: reflection (from the committed descriptor set, so grpcurl needs no proto files) and
// health per service name, SERVING while the backend serving it answers its own health check.
import {
  Client,
  credentials,
  type Metadata,
  Server,
  ServerCredentials,
  status,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type ServiceDefinition,
  type ServiceError,
} from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, service as healthService } from "grpc-health-check";
import type { Registry } from "prom-client";
import type { Logger } from "./logger.js";
import {
  createServerMetrics,
  gatewayBackendMetrics,
  type MetricsEndpoint,
  startMetricsEndpoint,
} from "./metrics.js";
import { HEALTH_SERVICE, reflectionPackageDefinition, serviceNameOf } from "./server.js";

/** A backend and the services it serves. */
export interface GatewayRoute {
  address: string;
  services: readonly ServiceDefinition[];
}

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  host?: string;
  port: number;
  routes: readonly GatewayRoute[];
  logger: Logger;
  maxMessageBytes?: number;
  /** How often each backend's health is asked, for the gateway's per-service health (default 5 s). */
  healthIntervalMs?: number;
  /** Serve /metrics and /healthz over HTTP on this port (0 picks a free one); omit to disable. */
  metrics?: { port: number; host?: string };
  /** The registry served at /metrics (default: a new one with the process metrics). */
  metricsRegistry?: Registry;
}

/** Default of {@link GatewayOptions.healthIntervalMs}. */
export const DEFAULT_GATEWAY_HEALTH_INTERVAL_MS = 5000;

type ServingStatus = "SERVING" | "NOT_SERVING";

/** A running gateway. */
export interface Gateway {
  port: number;
  address: string;
  /** The bound metrics port, when metrics are served. */
  metricsPort: number | undefined;
  close(graceMs?: number): Promise<void>;
}

const passThrough = (b: Buffer): Buffer => b;

function forwardedMetadata(incoming: Metadata): Metadata {
  const out = incoming.clone();
  // Transport-level headers are the channel's business, not the call's.
  for (const key of [
    "host",
    "user-agent",
    "te",
    "content-type",
    "grpc-accept-encoding",
    "grpc-encoding",
  ])
    out.remove(key);
  return out;
}

function unavailable(address: string, err: ServiceError): ServiceError {
  if (err.code !== status.UNAVAILABLE) return err;
  return Object.assign(new Error(err.details), {
    ...err,
    details: `${err.details} (the gateway could not reach the service at ${address})`,
  });
}

/** Starts a gateway that serves every route's services on one port. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const max = options.maxMessageBytes ?? 16 * 1024 * 1024;
  const intervalMs = options.healthIntervalMs ?? DEFAULT_GATEWAY_HEALTH_INTERVAL_MS;
  const server = new Server({
    "grpc.max_receive_message_length": max,
    "grpc.max_send_message_length": max,
  });
  const metrics = createServerMetrics(options.metricsRegistry);
  const backendServing = gatewayBackendMetrics(metrics.registry);
  const clients: Client[] = [];
  const served = options.routes.map((route) => ({
    route,
    names: route.services.map((s) => serviceNameOf(s)),
  }));
  const names = served.flatMap((s) => s.names);
  // "" is the gateway itself (what Kubernetes probes): it serves while a backend is down, and
  // calls to that backend fail with UNAVAILABLE naming it.
  const statuses = new Map<string, ServingStatus>(names.map((n) => [n, "NOT_SERVING"]));
  const health = new HealthImplementation({ "": "SERVING", ...Object.fromEntries(statuses) });
  health.addToServer(server);
  new ReflectionService(reflectionPackageDefinition(), {
    services: [...names, HEALTH_SERVICE],
  }).addToServer(server);
  const probes: (() => Promise<void>)[] = [];
  for (const { route, names: routeNames } of served) {
    const client = new Client(route.address, credentials.createInsecure(), {
      "grpc.max_receive_message_length": max,
      "grpc.max_send_message_length": max,
      // A backend back after a restart is found within seconds, not after minutes of backoff.
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 5000,
    });
    clients.push(client);
    for (const name of routeNames) {
      probes.push(async () => {
        const next = await backendHealth(client, name, intervalMs);
        backendServing(name, next === "SERVING");
        if (statuses.get(name) === next) return;
        statuses.set(name, next);
        health.setStatus(name, next);
        options.logger[next === "SERVING" ? "info" : "warn"]("backend health", {
          service: name,
          address: route.address,
          status: next,
        });
      });
    }
    for (const method of route.services.flatMap((s) => Object.values(s))) {
      const path = method.path;
      if (method.requestStream) continue;
      const [, serviceName = "", methodName = ""] = path.split("/");
      const observe = (started: bigint, code: status): void =>
        metrics.observe(
          serviceName,
          methodName,
          status[code] ?? String(code),
          Number(process.hrtime.bigint() - started) / 1e9,
        );
      if (!method.responseStream) {
        server.register(
          path,
          (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
            const started = process.hrtime.bigint();
            client.makeUnaryRequest(
              path,
              passThrough,
              passThrough,
              call.request,
              forwardedMetadata(call.metadata),
              { deadline: call.getDeadline() },
              (err, response) => {
                observe(started, err ? err.code : status.OK);
                if (err) callback(unavailable(route.address, err));
                else callback(null, response);
              },
            );
          },
          passThrough,
          passThrough,
          "unary",
        );
      } else {
        server.register(
          path,
          (call: ServerWritableStream<Buffer, Buffer>) => {
            const started = process.hrtime.bigint();
            let ended = false;
            const end = (code: status): void => {
              if (ended) return;
              ended = true;
              observe(started, code);
            };
            const upstream = client.makeServerStreamRequest(
              path,
              passThrough,
              passThrough,
              call.request,
              forwardedMetadata(call.metadata),
              {
                deadline: call.getDeadline(),
              },
            );
            call.on("cancelled", () => {
              end(status.CANCELLED);
              upstream.cancel();
            });
            upstream.on("data", (chunk: Buffer) => {
              if (!call.write(chunk)) {
                upstream.pause();
                call.once("drain", () => upstream.resume());
              }
            });
            upstream.on("error", (err: ServiceError) => {
              end(err.code);
              call.emit("error", unavailable(route.address, err));
            });
            upstream.on("end", () => {
              end(status.OK);
              call.end();
            });
          },
          passThrough,
          passThrough,
          "serverStream",
        );
      }
    }
  }
  const host = options.host ?? "0.0.0.0";
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const address = `${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${port}`;
  // One round before serving health answers that mean something, then one per interval.
  const probeAll = () => Promise.all(probes.map((p) => p())).then(() => undefined);
  await probeAll();
  let probing: Promise<void> | undefined;
  const healthTimer = setInterval(() => {
    probing ??= probeAll().finally(() => (probing = undefined));
  }, intervalMs);
  healthTimer.unref();
  let serving = true;
  let metricsEndpoint: MetricsEndpoint | undefined;
  if (options.metrics) {
    try {
      metricsEndpoint = await startMetricsEndpoint({
        host: options.metrics.host ?? host,
        port: options.metrics.port,
        metrics,
        serving: () => serving,
        logger: options.logger,
      });
    } catch (err) {
      clearInterval(healthTimer);
      server.forceShutdown();
      for (const c of clients) c.close();
      throw new Error(`cannot serve metrics on port ${options.metrics.port}: ${String(err)}`, {
        cause: err,
      });
    }
  }
  options.logger.info("gateway routes", {
    routes: options.routes.map((r) => ({
      address: r.address,
      services: r.services.map((s) => Object.values(s)[0]?.path.split("/")[1]),
    })),
  });
  return {
    port,
    address,
    metricsPort: metricsEndpoint?.port,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        serving = false;
        clearInterval(healthTimer);
        for (const name of ["", ...names]) health.setStatus(name, "NOT_SERVING");
        const timer = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          void (probing ?? Promise.resolve())
            .then(() => metricsEndpoint?.close())
            .finally(() => {
              for (const c of clients) c.close();
              resolve();
            });
        });
      }),
  };
}

/**
 * A backend's own health of one service (grpc.health.v1 Check, public on every Odin server):
 * SERVING only when it answers so within the deadline; unreachable, stopping or silent is
 * NOT_SERVING.
 */
function backendHealth(client: Client, name: string, deadlineMs: number): Promise<ServingStatus> {
  const check = healthService.Check;
  if (check === undefined) throw new Error("grpc-health-check's Health service has no Check");
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      check.path,
      check.requestSerialize,
      check.responseDeserialize,
      { service: name },
      { deadline: Date.now() + deadlineMs },
      (err, response?: { status?: unknown }) =>
        resolve(!err && response?.status === "SERVING" ? "SERVING" : "NOT_SERVING"),
    );
  });
}
