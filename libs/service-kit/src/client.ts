// Clients of Odin services: the generated grpc-js clients, configured once with a bearer token,
// TLS, a default deadline for unary calls, and retries of the retryable codes (errors.ts) through
// grpc-js's own retry support (service config retryPolicy). Promise and async-iterable helpers replace callback code.
import {
  type CallOptions,
  type ChannelCredentials,
  type Client,
  type ClientOptions as GrpcClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  credentials,
  InterceptingCall,
  type Interceptor,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { rememberErrorAddress, retryableCodes } from "./errors.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./server.js";

/** Default deadline of a unary call: 30 s. Streams get none unless the call sets one. */
export const DEFAULT_DEADLINE_MS = 30_000;
/** Default number of retries (after the first attempt) of a call that failed with a retryable code. */
export const DEFAULT_RETRIES = 4;

/** TLS settings of a client (PEM). */
export interface ClientTlsOptions {
  /** CA that signed the server's certificate; default: the system's roots. */
  ca?: string | Buffer;
  /** Client certificate chain, for servers that require one (with `key`). */
  cert?: string | Buffer;
  /** Client private key (with `cert`). */
  key?: string | Buffer;
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** `host:port` of the server. */
  address: string;
  /** Bearer token sent on every call (never logged). */
  token?: string;
  /** Use TLS (`true`: system roots). */
  tls?: boolean | ClientTlsOptions;
  /** Deadline of unary calls that set none; default {@link DEFAULT_DEADLINE_MS}; 0 = none. */
  deadlineMs?: number;
  /** Retries after a first attempt failed with a retryable code (exponential backoff); default {@link DEFAULT_RETRIES}; 0 = none. */
  retries?: number;
  /** First retry backoff in ms (later ones double, up to 5 s); default 200. */
  initialBackoffMs?: number;
  /** Largest message sent or received; default {@link DEFAULT_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: Partial<GrpcClientOptions>;
}

/** A generated client constructor such as `PipelineRegistryServiceClient`. */
export type ClientConstructor<C extends Client> = new (
  address: string,
  credentials: ChannelCredentials,
  options?: Partial<GrpcClientOptions>,
) => C;

function channelCredentials(tls: ClientOptions["tls"]): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  if (tls === true) return credentials.createSsl();
  const pem = (value: string | Buffer | undefined): Buffer | null =>
    value === undefined ? null : Buffer.from(value);
  return credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
}

/** The grpc-js service config that retries every method on the {@link retryableCodes}. */
export function retryServiceConfig(retries: number, initialBackoffMs = 200): string {
  return JSON.stringify({
    methodConfig: [
      {
        name: [{}],
        retryPolicy: {
          maxAttempts: retries + 1,
          initialBackoff: `${initialBackoffMs / 1000}s`,
          maxBackoff: "5s",
          backoffMultiplier: 2,
          retryableStatusCodes: [...retryableCodes].map((code) => status[code]),
        },
      },
    ],
  });
}

/**
 * Creates a generated client with the kit's defaults: bearer token on every call, a deadline on
 * unary calls that set none, retries of retryable codes with exponential backoff, message limits.
 */
export function createClient<C extends Client>(
  Ctor: ClientConstructor<C>,
  options: ClientOptions,
): C {
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const retries = options.retries ?? DEFAULT_RETRIES;
  const token = options.token?.trim();
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const defaults: Interceptor = (callOptions, nextCall) => {
    if (
      deadlineMs > 0 &&
      callOptions.deadline === undefined &&
      !callOptions.method_definition.responseStream
    ) {
      callOptions.deadline = Date.now() + deadlineMs;
    }
    return new InterceptingCall(nextCall(callOptions), {
      start: (metadata, listener, next) => {
        if (token !== undefined && token !== "" && metadata.get("authorization").length === 0) {
          metadata.set("authorization", `Bearer ${token}`);
        }
        next(metadata, listener);
      },
    });
  };
  const channelOptions: Partial<GrpcClientOptions> = {
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    "grpc.enable_retries": retries > 0 ? 1 : 0,
    // Reconnect soon after a failure, so a retry can find a server that has just come up.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 5_000,
    ...(retries > 0
      ? {
          "grpc.service_config": retryServiceConfig(retries, options.initialBackoffMs),
          "grpc-node.retry_max_attempts_limit": Math.max(5, retries + 1),
        }
      : {}),
    ...options.channelOptions,
    interceptors: [defaults, ...((options.channelOptions?.interceptors as Interceptor[]) ?? [])],
  };
  return new Ctor(options.address, channelCredentials(options.tls), channelOptions);
}

/** Per-call options of {@link unary} and {@link serverStream}. */
export interface CallSettings {
  /** Deadline of this call in ms from now (overrides the client's default). */
  deadlineMs?: number;
  /** Extra request metadata. */
  metadata?: Metadata;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
}

type UnaryCallback<Res> = (error: ServiceError | null, response: Res) => void;

// The last overload of a generated unary method: (request, metadata, options, callback).
type LastUnary<F> = F extends (
  request: infer Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: UnaryCallback<infer Res>,
) => ClientUnaryCall
  ? { request: Req; response: Res }
  : never;

// The last overload of a generated server-streaming method: (request, metadata?, options?).
type LastStream<F> = F extends (
  request: infer Req,
  metadata?: Metadata,
  options?: Partial<CallOptions>,
) => ClientReadableStream<infer Res>
  ? { request: Req; response: Res }
  : never;

/** Names of a client's unary methods. */
export type UnaryMethod<C> = {
  [K in keyof C]: C[K] extends (...args: never[]) => infer R
    ? R extends ClientReadableStream<unknown>
      ? never
      : R extends ClientUnaryCall
        ? K
        : never
    : never;
}[keyof C] &
  string;

/** Names of a client's server-streaming methods. */
export type StreamMethod<C> = {
  [K in keyof C]: C[K] extends (...args: never[]) => ClientReadableStream<unknown> ? K : never;
}[keyof C] &
  string;

/** The request type of a client method. */
export type RequestOf<C, M extends keyof C> = (LastUnary<C[M]> | LastStream<C[M]>)["request"];
/** The response type of a unary client method. */
export type ResponseOf<C, M extends keyof C> = LastUnary<C[M]>["response"];
/** The message type of a server-streaming client method. */
export type StreamMessageOf<C, M extends keyof C> = LastStream<C[M]>["response"];

function callOptionsOf(settings: CallSettings): Partial<CallOptions> {
  return settings.deadlineMs !== undefined ? { deadline: Date.now() + settings.deadlineMs } : {};
}

function targetOf(client: Client): string {
  return client.getChannel().getTarget();
}

/**
 * Calls a unary method and resolves with its response, e.g.
 * `await unary(client, "listPipelines", { commit: "" }, { deadlineMs: 5000 })`.
 */
export function unary<C extends Client, M extends UnaryMethod<C>>(
  client: C,
  method: M,
  request: RequestOf<C, M>,
  settings: CallSettings = {},
): Promise<ResponseOf<C, M>> {
  return new Promise((resolve, reject) => {
    const fn = client[method] as unknown as (
      request: unknown,
      metadata: Metadata,
      options: Partial<CallOptions>,
      callback: UnaryCallback<ResponseOf<C, M>>,
    ) => ClientUnaryCall;
    if (settings.signal?.aborted) {
      reject(settings.signal.reason as Error);
      return;
    }
    const onAbort = (): void => call.cancel();
    const call = fn.call(
      client,
      request,
      settings.metadata ?? new Metadata(),
      callOptionsOf(settings),
      (err, response) => {
        settings.signal?.removeEventListener("abort", onAbort);
        if (err) {
          rememberErrorAddress(err, targetOf(client));
          reject(err);
        } else {
          resolve(response);
        }
      },
    );
    settings.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Calls a server-streaming method and yields its messages, e.g.
 * `for await (const event of serverStream(client, "watchRun", { runId })) …`. Leaving the loop
 * early cancels the call; a failed call throws its status error.
 */
export async function* serverStream<C extends Client, M extends StreamMethod<C>>(
  client: C,
  method: M,
  request: RequestOf<C, M>,
  settings: CallSettings = {},
): AsyncGenerator<StreamMessageOf<C, M>, void, undefined> {
  const fn = client[method] as unknown as (
    request: unknown,
    metadata: Metadata,
    options: Partial<CallOptions>,
  ) => ClientReadableStream<StreamMessageOf<C, M>>;
  const call = fn.call(
    client,
    request,
    settings.metadata ?? new Metadata(),
    callOptionsOf(settings),
  );
  const onAbort = (): void => call.cancel();
  settings.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const message of call) yield message as StreamMessageOf<C, M>;
  } catch (err) {
    rememberErrorAddress(err, targetOf(client));
    throw err;
  } finally {
    settings.signal?.removeEventListener("abort", onAbort);
    call.cancel();
  }
}
