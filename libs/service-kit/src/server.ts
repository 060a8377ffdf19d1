// The gRPC server every Odin service runs: its handlers plus health, reflection, authentication,
// error mapping, one log line and metrics per call, a metrics endpoint, and graceful shutdown.
//
// Two pieces cooperate. A server interceptor sees every call of every service: it authenticates
// (health and reflection are public), records the caller for the handler, and observes the final
// status for the log line and metrics. A wrapper around each Odin handler is the one place where
// thrown errors become gRPC statuses, because only there is the original error (class, problems,
// stack) still at hand.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  Metadata,
  Server,
  ServerCredentials,
  ServerInterceptingCall,
  status,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type MethodDefinition,
  type sendUnaryData,
  type ServerInterceptor,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type StatusObject,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  loadFileDescriptorSetFromBuffer,
  loadSync,
  type PackageDefinition,
} from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import type { Registry } from "prom-client";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import { descriptorSetPath } from "@odin/proto";
import { authorize, type Caller, isRole, type Role, type TokenStore } from "./auth.js";
import { REQUEST_ID_METADATA_KEY, toGrpcStatus } from "./errors.js";
import type { Logger } from "./logger.js";
import { createServerMetrics, type MetricsEndpoint, startMetricsEndpoint } from "./metrics.js";

/** Default limit for one message in either direction: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Default time in-flight calls get to finish on shutdown before they are cancelled. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/** The standard health service's full name. */
export const HEALTH_SERVICE = "grpc.health.v1.Health";
// A cancellation this close to the call's deadline is logged as DEADLINE_EXCEEDED.
const DEADLINE_SLACK_MS = 100;
const PUBLIC_SERVICES = new Set([
  HEALTH_SERVICE,
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

/** The handler type grpc-js expects for one method definition. */
export type HandlerOf<M> =
  M extends MethodDefinition<infer Req, infer Res>
    ? M extends { requestStream: false; responseStream: false }
      ? handleUnaryCall<Req, Res>
      : M extends { requestStream: false; responseStream: true }
        ? handleServerStreamingCall<Req, Res>
        : UntypedHandleCall
    : never;

/** The handlers of a generated service definition (what ts-proto calls `XServiceServer`). */
export type HandlersOf<D> = { [K in keyof D]: HandlerOf<D[K]> };

/** Minimum role per RPC, keyed like the definition (`listPipelines`); unlisted RPCs need admin. */
export type RolesOf<D> = Partial<Record<keyof D & string, Role>>;

/** One service to serve: its definition, its handlers, and who may call what. */
export interface ServiceRegistration {
  /** The generated definition, e.g. `PipelineRegistryServiceService`. */
  definition: ServiceDefinition;
  /** The handlers, e.g. an object implementing `PipelineRegistryServiceServer`. */
  implementation: UntypedServiceImplementation;
  /** Minimum role per RPC by definition key; any RPC not listed needs `admin`. */
  roles: Readonly<Record<string, Role>>;
  /**
   * RPCs (definition keys) whose successful calls are logged at debug, not info: the calls Odin's
   * services make of each other for every task, which would bury the rest of the log.
   */
  quiet?: readonly string[];
}

/** A type-checked {@link ServiceRegistration}: handlers and role keys must match the definition. */
export function service<D extends ServiceDefinition>(
  definition: D,
  implementation: HandlersOf<D>,
  roles: RolesOf<D>,
  quiet: readonly (keyof D & string)[] = [],
): ServiceRegistration {
  return {
    definition,
    implementation,
    roles: roles as Record<string, Role>,
    quiet,
  };
}

/** TLS material (PEM): the server's certificate and key, and optionally a CA to require client certificates. */
export interface ServerTlsOptions {
  /** Certificate chain, PEM. */
  cert: string | Buffer;
  /** Private key, PEM. */
  key: string | Buffer;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  ca?: string | Buffer;
}

/** Options of {@link startServer}. */
export interface StartServerOptions {
  /** The service's name, for logs (e.g. `repo-sync`). */
  name: string;
  /** Address to listen on; default `0.0.0.0`. */
  host?: string;
  /** Port to listen on; 0 picks a free one (see {@link OdinServer.port}). */
  port: number;
  /** The services to serve. */
  services: readonly ServiceRegistration[];
  /** The known tokens, or `"off"` to let every caller in as an admin (logged loudly). */
  auth: TokenStore | "off";
  /** The subject handlers see when auth is off; default `anonymous`. */
  anonymousSubject?: string;
  /** Serve TLS instead of plaintext. */
  tls?: ServerTlsOptions;
  /** Serve /metrics and /healthz over HTTP on this port (0 picks a free one); omit to disable. */
  metrics?: { port: number; host?: string };
  /**
   * The registry served at /metrics, holding the service's own metrics too (default: a new one
   * with the process metrics; see `createMetricsRegistry`).
   */
  metricsRegistry?: Registry;
  /** Where logs go. */
  logger: Logger;
  /** Largest message accepted or sent; default {@link DEFAULT_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** Default grace period of {@link OdinServer.close}; default {@link DEFAULT_SHUTDOWN_GRACE_MS}. */
  shutdownGraceMs?: number;
}

/** A running server. */
export interface OdinServer {
  /** The bound gRPC port. */
  readonly port: number;
  /** `host:port` to dial (a wildcard host is reported as 127.0.0.1). */
  readonly address: string;
  /** The bound metrics port, when metrics are served. */
  readonly metricsPort: number | undefined;
  /** The server's Prometheus registry: the services' own metrics are registered here too. */
  readonly metricsRegistry: Registry;
  /** Reports a service (or, with no name, the whole server) as serving or not to health checks. */
  setServing(serving: boolean, serviceName?: string): void;
  /**
   * Stops: health turns NOT_SERVING, new calls are refused, in-flight calls get `graceMs` (default
   * the server's `shutdownGraceMs`) to finish, then are cancelled. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

/** What a handler can learn about its call. */
export interface CallContext {
  /** Who is calling (with auth off: the anonymous subject as admin). */
  caller: Caller;
  /** This call's id: in the server's log lines and in the `odin-request-id` trailer. */
  requestId: string;
  /** A logger whose lines carry the method, request id and subject. */
  logger: Logger;
}

// Keyed by the call's request Metadata object, which grpc-js hands unchanged from the interceptor
// to the handler's call object; a client cannot forge an entry.
const contexts = new WeakMap<Metadata, CallContext>();

/** The context of a call served by {@link startServer}; throws for a call that did not pass its interceptor. */
export function contextOf(call: { metadata: Metadata }): CallContext {
  const context = contexts.get(call.metadata);
  if (context === undefined) {
    throw new Error("contextOf: this call was not served by @odin/service-kit's startServer");
  }
  return context;
}

// The caller's `authorization` value, kept out of the metadata handlers see (so they cannot log
// it) for the one use that needs it: a replica passing the call on to another as the caller.
const authorizations = new WeakMap<Metadata, string>();

/**
 * The caller's `authorization` value (`Bearer …`), for a service that forwards the call to a peer
 * replica which authenticates the caller itself (repo-sync's followers forward pushes to their
 * leader). Undefined with auth off or for a call without one. Never log or return it.
 */
export function forwardableAuthorization(call: { metadata: Metadata }): string | undefined {
  return authorizations.get(call.metadata);
}

/** Who is calling: subject and role from the bearer token (see {@link contextOf}). */
export function callerOf(call: { metadata: Metadata }): Caller {
  return contextOf(call).caller;
}

/** `service` and `method` of a path like `/odin.reposync.v1.RepoSyncService/Push`. */
function splitPath(path: string): { service: string; method: string } {
  const [, service = "", method = ""] = /^\/([^/]*)\/(.*)$/.exec(path) ?? [];
  return { service, method };
}

function newRequestId(): string {
  return randomBytes(8).toString("hex");
}

interface Route {
  service: string;
  method: string;
  role: Role;
  /** Successful calls are logged at debug. */
  quiet: boolean;
}

interface InterceptorState {
  routes: Map<string, Route>;
  auth: TokenStore | "off";
  anonymous: Caller;
  logger: Logger;
  metrics: ReturnType<typeof createServerMetrics>;
  inFlight: Set<object>;
  /** Set when shutdown cancels the calls still running. */
  forcing: boolean;
}

/** Authenticates, records the caller, and logs and counts each call once with its final status. */
function odinInterceptor(state: InterceptorState): ServerInterceptor {
  return (methodDescriptor, call) => {
    const started = process.hrtime.bigint();
    const path = methodDescriptor.path;
    const { service, method } = splitPath(path);
    const route = state.routes.get(path);
    const isPublic = PUBLIC_SERVICES.has(service);
    const inFlightMarker = {};
    state.inFlight.add(inFlightMarker);
    let requestId = newRequestId();
    let caller: Caller | undefined;
    let finished = false;

    const finish = (code: status, details: string): void => {
      if (finished) return;
      finished = true;
      state.inFlight.delete(inFlightMarker);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const codeName = status[code] ?? String(code);
      state.metrics.observe(service, method, codeName, seconds);
      const level = isPublic
        ? "debug"
        : code === status.INTERNAL
          ? "error"
          : code === status.OK && route?.quiet
            ? "debug"
            : "info";
      if (!state.logger.enabled(level)) return;
      state.logger[level]("rpc", {
        method: `${service}/${method}`,
        code: codeName,
        durationMs: Math.round(seconds * 1e6) / 1e3,
        requestId,
        subject: caller?.subject,
        role: caller?.role,
        peer: call.getPeer(),
        ...(code === status.OK ? {} : { details }),
      });
    };

    const reject = (code: status, details: string): void => {
      const trailers = new Metadata();
      trailers.set(REQUEST_ID_METADATA_KEY, requestId);
      finish(code, details);
      call.sendStatus({ code, details, metadata: trailers });
    };

    return new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const incoming = metadata.get("x-request-id")[0];
            if (typeof incoming === "string" && /^[A-Za-z0-9._:-]{1,64}$/.test(incoming)) {
              requestId = incoming;
            }
            const authorization = metadata.get("authorization");
            // Handlers never see the token, so they cannot log it by accident.
            metadata.remove("authorization");
            if (isPublic) {
              nextMetadata(metadata);
              return;
            }
            const need = route?.role ?? "admin";
            if (state.auth === "off") {
              caller = state.anonymous;
            } else {
              const result = authorize(state.auth, authorization, `${service}/${method}`, need);
              if (!result.ok) {
                if (result.reason === "permission-denied") caller = result.caller;
                reject(
                  result.reason === "unauthenticated"
                    ? status.UNAUTHENTICATED
                    : status.PERMISSION_DENIED,
                  result.message,
                );
                return;
              }
              caller = result.caller;
            }
            const logger = state.logger.child({
              method: `${service}/${method}`,
              requestId,
              subject: caller.subject,
            });
            contexts.set(metadata, { caller, requestId, logger });
            if (state.auth !== "off" && typeof authorization[0] === "string")
              authorizations.set(metadata, authorization[0]);
            nextMetadata(metadata);
          },
          onCancel: () => {
            // Reached without a status from the handler when the client cancelled or the deadline
            // passed (grpc-js answers DEADLINE_EXCEEDED itself, bypassing interceptors). A client
            // gives up at its own deadline, which it reaches a little before the server does.
            const deadline = call.getDeadline();
            const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
            if (Number.isFinite(deadlineMs) && Date.now() >= deadlineMs - DEADLINE_SLACK_MS) {
              finish(status.DEADLINE_EXCEEDED, "deadline exceeded");
            } else if (state.forcing) {
              finish(status.CANCELLED, "cancelled: the shutdown grace period ended");
            } else {
              finish(status.CANCELLED, "cancelled by the client");
            }
          },
        });
      },
      sendStatus: (statusObject, nextStatus) => {
        const metadata = statusObject.metadata ?? new Metadata();
        if (!isPublic) metadata.set(REQUEST_ID_METADATA_KEY, requestId);
        finish(statusObject.code, statusObject.details ?? "");
        nextStatus({ ...statusObject, metadata });
      },
    });
  };
}

/** Turns an error into what grpc-js sends: an Error carrying `code`, `details` and trailers. */
function statusError(
  err: unknown,
  call: { metadata: Metadata },
  path: string,
  fallbackLogger: Logger,
): StatusObject & Error {
  const context = contexts.get(call.metadata);
  const requestId = context?.requestId ?? newRequestId();
  const mapped = toGrpcStatus(err, requestId);
  if (mapped.unexpected) {
    // The stack stays here; the client only gets the request id to quote.
    (context?.logger ?? fallbackLogger).error("unexpected error in handler", { err, path });
  }
  return Object.assign(new Error(mapped.details), {
    code: mapped.code,
    details: mapped.details,
    metadata: mapped.metadata,
  });
}

/** Runs a handler, sending anything it throws (or rejects with) to `onError`. */
function invoke(run: () => unknown, onError: (err: unknown) => void): void {
  try {
    const result = run();
    if (result instanceof Promise) result.catch(onError);
  } catch (err) {
    onError(err);
  }
}

/** Wraps one handler so every error it raises goes through {@link toGrpcStatus}. */
function wrapHandler(
  definition: MethodDefinition<unknown, unknown>,
  handler: UntypedHandleCall,
  logger: Logger,
) {
  const fn = handler as (...args: unknown[]) => unknown;
  const path = definition.path;
  if (!definition.responseStream) {
    // Unary and client-streaming: the outcome goes through the callback.
    return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
      let answered = false;
      const answer: sendUnaryData<unknown> = (err, value, trailer, flags) => {
        if (answered) return;
        answered = true;
        if (err) callback(statusError(err, call, path, logger), null);
        else callback(null, value, trailer, flags);
      };
      invoke(
        () => fn(call, answer),
        (err) => answer(err as Error, null),
      );
    };
  }
  // Server- and bidi-streaming: grpc-js turns an 'error' event (also from destroy(err)) into the
  // status, reading `code`, `details` and `metadata` off the error; translate it on the way.
  return (call: ServerWritableStream<unknown, unknown>): void => {
    const emit = call.emit.bind(call);
    call.emit = ((event: string | symbol, ...args: unknown[]) =>
      event === "error"
        ? emit("error", statusError(args[0], call, path, logger))
        : emit(event, ...args)) as typeof call.emit;
    invoke(
      () => fn(call),
      (err) => {
        call.emit("error", err);
      },
    );
  };
}

function wrapImplementation(registration: ServiceRegistration, name: string, logger: Logger) {
  const wrapped: UntypedServiceImplementation = {};
  for (const [key, definition] of Object.entries(registration.definition)) {
    const handler = registration.implementation[key];
    if (typeof handler !== "function") {
      throw new Error(`${name}: no handler for ${key}; implement every RPC of the definition`);
    }
    wrapped[key] = wrapHandler(definition, handler, logger) as UntypedHandleCall;
  }
  return wrapped;
}

/** The full name of a generated service definition, e.g. `odin.reposync.v1.RepoSyncService`. */
export function serviceNameOf(definition: ServiceDefinition): string {
  const first = Object.values(definition)[0];
  if (first === undefined) throw new Error("service definition has no methods");
  return splitPath(first.path).service;
}

function routesOf(registration: ServiceRegistration): Map<string, Route> {
  const name = serviceNameOf(registration.definition);
  const routes = new Map<string, Route>();
  for (const [key, role] of Object.entries(registration.roles)) {
    if (!(key in registration.definition)) {
      const known = Object.keys(registration.definition).join(", ");
      throw new Error(
        `${name}: roles names an unknown RPC ${JSON.stringify(key)}; known: ${known}`,
      );
    }
    if (!isRole(role)) throw new Error(`${name}.${key}: ${String(role)} is not a role`);
  }
  for (const [key, definition] of Object.entries(registration.definition)) {
    const { service, method } = splitPath(definition.path);
    routes.set(definition.path, {
      service,
      method,
      role: registration.roles[key] ?? "admin",
      quiet: registration.quiet?.includes(key) ?? false,
    });
  }
  return routes;
}

let reflectionPackage: PackageDefinition | undefined;

/** The Odin contracts (from libs/proto/descriptors.binpb) plus the health service, for reflection. */
export function reflectionPackageDefinition(): PackageDefinition {
  reflectionPackage ??= {
    ...loadFileDescriptorSetFromBuffer(readFileSync(descriptorSetPath)),
    ...loadSync(healthProtoPath),
  };
  return reflectionPackage;
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Starts a gRPC server with the kit's health, reflection, auth, errors, logs and metrics. */
export async function startServer(options: StartServerOptions): Promise<OdinServer> {
  const logger = options.logger;
  const host = options.host ?? "0.0.0.0";
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const defaultGraceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const metrics = createServerMetrics(options.metricsRegistry);
  const routes = new Map<string, Route>();
  const serviceNames: string[] = [];
  for (const registration of options.services) {
    serviceNames.push(serviceNameOf(registration.definition));
    for (const [path, route] of routesOf(registration)) routes.set(path, route);
  }
  const inFlight = new Set<object>();
  const state: InterceptorState = {
    routes,
    auth: options.auth,
    anonymous: { subject: options.anonymousSubject ?? "anonymous", role: "admin" },
    logger,
    metrics,
    inFlight,
    forcing: false,
  };
  const server = new Server({
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    interceptors: [odinInterceptor(state)],
  });
  for (const [i, registration] of options.services.entries()) {
    server.addService(
      registration.definition,
      wrapImplementation(registration, serviceNames[i] ?? options.name, logger),
    );
  }

  const health = new HealthImplementation(
    Object.fromEntries(["", ...serviceNames].map((name) => [name, "NOT_SERVING" as const])),
  );
  health.addToServer(server);
  new ReflectionService(reflectionPackageDefinition(), {
    services: [...serviceNames, HEALTH_SERVICE],
  }).addToServer(server);

  const credentials = options.tls
    ? ServerCredentials.createSsl(
        options.tls.ca !== undefined ? Buffer.from(options.tls.ca) : null,
        [{ cert_chain: Buffer.from(options.tls.cert), private_key: Buffer.from(options.tls.key) }],
        options.tls.ca !== undefined,
      )
    : ServerCredentials.createInsecure();

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(hostPort(host, options.port), credentials, (err, bound) => {
      if (err) {
        const hint = options.port !== 0 ? " (is another process using the port?)" : "";
        reject(
          new Error(`cannot listen on ${hostPort(host, options.port)}: ${err.message}${hint}`, {
            cause: err,
          }),
        );
      } else {
        resolve(bound);
      }
    });
  });

  let serving = true;
  let metricsEndpoint: MetricsEndpoint | undefined;
  if (options.metrics) {
    try {
      metricsEndpoint = await startMetricsEndpoint({
        host: options.metrics.host ?? host,
        port: options.metrics.port,
        metrics,
        serving: () => serving,
        logger,
      });
    } catch (err) {
      server.forceShutdown();
      throw new Error(`cannot serve metrics on port ${options.metrics.port}: ${String(err)}`, {
        cause: err,
      });
    }
  }
  for (const name of ["", ...serviceNames]) health.setStatus(name, "SERVING");

  const dialHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const address = hostPort(dialHost, port);
  if (options.auth === "off") {
    logger.warn(
      "AUTHENTICATION IS OFF: every caller is an admin; do not expose this server beyond localhost",
      { auth: "off", subject: options.anonymousSubject ?? "anonymous" },
    );
  }
  logger.info("serving", {
    name: options.name,
    address: hostPort(host, port),
    services: serviceNames,
    tls: options.tls ? (options.tls.ca !== undefined ? "mutual" : "on") : "off",
    auth: options.auth === "off" ? "off" : `${options.auth.size} tokens`,
    metricsPort: metricsEndpoint?.port,
  });

  let closing: Promise<void> | undefined;
  const close = (graceMs = defaultGraceMs): Promise<void> => {
    closing ??= (async () => {
      serving = false;
      for (const name of ["", ...serviceNames]) health.setStatus(name, "NOT_SERVING");
      logger.info("shutting down", { inFlight: inFlight.size, graceMs });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn("grace period over; cancelling in-flight calls", {
            inFlight: inFlight.size,
            graceMs,
          });
          state.forcing = true;
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await metricsEndpoint?.close();
      logger.info("stopped");
    })();
    return closing;
  };

  return {
    port,
    address,
    metricsPort: metricsEndpoint?.port,
    metricsRegistry: metrics.registry,
    setServing(isServing, serviceName = "") {
      health.setStatus(serviceName, isServing && serving ? "SERVING" : "NOT_SERVING");
    },
    close,
  };
}

/**
 * Runs an app's `main` and, when it fails (bad configuration, an unreachable dependency at
 * startup), prints one line `<name>: <message>` — never a stack trace — and exits 1.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

/** Options of {@link runUntilSignal}. */
export interface RunUntilSignalOptions {
  /** Signals that stop the server; default SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
  /** Runs after the server has stopped (close NATS connections, flush …). */
  cleanup?: () => Promise<void>;
  /** Ends the process; default `process.exit`. */
  exit?: (code: number) => void;
}

/**
 * Closes the server gracefully on SIGTERM/SIGINT, runs `cleanup`, then exits 0 (1 if closing
 * failed). A second signal exits at once with 1. Resolves once the signal has been handled.
 */
export function runUntilSignal(
  server: Pick<OdinServer, "close">,
  logger: Logger,
  options: RunUntilSignalOptions = {},
): Promise<void> {
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn("second signal; exiting without waiting", { signal });
        exit(1);
        return;
      }
      stopping = true;
      logger.info("signal received; stopping", { signal });
      const stop = async (): Promise<number> => {
        try {
          await server.close();
          await options.cleanup?.();
          return 0;
        } catch (err) {
          logger.error("error while stopping", { err });
          return 1;
        }
      };
      void stop().then((code) => {
        for (const s of signals) process.off(s, onSignal);
        resolve();
        exit(code);
      });
    };
    for (const s of signals) process.on(s, onSignal);
  });
}

/**
 * Adapts an async function to a grpc-js unary handler: its result is the response, anything it
 * throws becomes the status (through the kit's error mapping).
 */
export function unaryHandler<Req, Res>(
  fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (response) => callback(null, response),
        (err: unknown) => callback(err as Error, null),
      );
  };
}

/**
 * Adapts an async iterable (e.g. an async generator) to a grpc-js server-streaming handler: each
 * item is written with backpressure; the call ends when the iterable does; a throw becomes the
 * status. `signal` aborts when the client cancels or the deadline passes, so the producer can stop.
 */
export function serverStreamHandler<Req, Res>(
  fn: (
    request: Req,
    call: ServerWritableStream<Req, Res>,
    signal: AbortSignal,
  ) => AsyncIterable<Res> | Iterable<Res>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const abort = new AbortController();
    call.once("cancelled", () => abort.abort(new Error("call cancelled")));
    const pump = async (): Promise<void> => {
      for await (const item of fn(call.request, call, abort.signal)) {
        if (abort.signal.aborted) return;
        if (!call.write(item)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              call.off("drain", done);
              abort.signal.removeEventListener("abort", done);
              resolve();
            };
            call.on("drain", done);
            abort.signal.addEventListener("abort", done);
          });
        }
      }
      if (!abort.signal.aborted) call.end();
    };
    pump().catch((err: unknown) => {
      if (!abort.signal.aborted) call.emit("error", err);
    });
  };
}
