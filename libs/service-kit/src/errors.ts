// One error model for every Odin service. Handlers and libs throw small domain errors; the kit's
// handler wrapper (server.ts) is the one place that turns them into gRPC statuses, and
// describeGrpcError turns a status back into one line a user can act on.
import { Metadata, status, type StatusObject } from "@grpc/grpc-js";

/** One positioned problem (e.g. in a `main.yml`), sent to clients in trailing metadata. */
export interface Problem {
  /** File relative to the repository root, e.g. `sst2/main.yml`. */
  file?: string;
  /** 1-based line; absent or 0 when unknown. */
  line?: number;
  /** 1-based column; absent or 0 when unknown. */
  column?: number;
  /** The task the problem is in, if any. */
  task?: string;
  /** The key path, e.g. `args[2]`. */
  field?: string;
  /** What is wrong and what to do about it. */
  message: string;
  /** `error` (the default) or `warning`. */
  severity?: "error" | "warning";
}

/** Options every domain error accepts. */
export interface OdinErrorOptions {
  /** The lower-level error this one explains. */
  cause?: unknown;
}

/** Something the caller named does not exist (NOT_FOUND). */
export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

/** What the caller wants to create exists already (ALREADY_EXISTS). */
export class AlreadyExistsError extends Error {
  override readonly name = "AlreadyExistsError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

/** The request is wrong; `problems` says where, e.g. file:line:col (INVALID_ARGUMENT). */
export class InvalidArgumentError extends Error {
  override readonly name = "InvalidArgumentError";
  /** Positioned problems, delivered to the client in the `odin-problems-bin` trailer. */
  readonly problems: readonly Problem[];
  constructor(message: string, options?: OdinErrorOptions & { problems?: readonly Problem[] }) {
    super(message, options);
    this.problems = options?.problems ?? [];
  }
}

/** The system is not in a state that allows this, e.g. a run already finished (FAILED_PRECONDITION). */
export class FailedPreconditionError extends Error {
  override readonly name = "FailedPreconditionError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

/** The caller is known but may not do this (PERMISSION_DENIED). */
export class PermissionDeniedError extends Error {
  override readonly name = "PermissionDeniedError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

/** The caller could not be identified (UNAUTHENTICATED). */
export class UnauthenticatedError extends Error {
  override readonly name = "UnauthenticatedError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

/** A dependency (git remote, NATS, Kubernetes, another service) cannot be reached; retry later (UNAVAILABLE). */
export class UnavailableError extends Error {
  override readonly name = "UnavailableError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

/** Something took longer than allowed (DEADLINE_EXCEEDED). */
export class DeadlineExceededError extends Error {
  override readonly name = "DeadlineExceededError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

/** A concurrent change won, e.g. a compare-and-set on a stale revision; re-read and retry (ABORTED). */
export class ConflictError extends Error {
  override readonly name = "ConflictError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

/** A size or quota limit was hit, e.g. an oversized file (RESOURCE_EXHAUSTED). */
export class ResourceExhaustedError extends Error {
  override readonly name = "ResourceExhaustedError";
  constructor(message: string, options?: OdinErrorOptions) {
    super(message, options);
  }
}

// By name rather than by class, so a lib without a dependency on the kit (the run store, the
// event bus) can throw its own error class and still map correctly.
const codeByErrorName: Readonly<Record<string, status>> = {
  NotFoundError: status.NOT_FOUND,
  AlreadyExistsError: status.ALREADY_EXISTS,
  InvalidArgumentError: status.INVALID_ARGUMENT,
  FailedPreconditionError: status.FAILED_PRECONDITION,
  PermissionDeniedError: status.PERMISSION_DENIED,
  UnauthenticatedError: status.UNAUTHENTICATED,
  UnavailableError: status.UNAVAILABLE,
  DeadlineExceededError: status.DEADLINE_EXCEEDED,
  ConflictError: status.ABORTED,
  ResourceExhaustedError: status.RESOURCE_EXHAUSTED,
  // @odin/run-store: NATS down or slow; a compare-and-set (or create) lost to another writer.
  StoreUnavailableError: status.UNAVAILABLE,
  RevisionMismatchError: status.ABORTED,
  KeyExistsError: status.ABORTED,
  ValueTooLargeError: status.RESOURCE_EXHAUSTED,
  // @odin/events: NATS down or slow.
  EventBusUnavailableError: status.UNAVAILABLE,
};

/**
 * The status codes a caller should retry (with backoff): the callee or one of its dependencies is
 * unreachable or overloaded (UNAVAILABLE), a concurrent change won a compare-and-set and the
 * operation re-reads when run again (ABORTED), or the callee's dependency did not answer in time
 * (DEADLINE_EXCEEDED). Every other code means the same call fails the same way again. Odin's
 * servers make each of these safe to repeat (request ids, attempts, compare-and-set).
 */
export const retryableCodes: ReadonlySet<status> = new Set([
  status.UNAVAILABLE,
  status.ABORTED,
  status.DEADLINE_EXCEEDED,
]);

/** The gRPC code an error stands for: its own (a status from a call) or its domain error's. */
export function grpcCodeOf(err: unknown): status | undefined {
  if (isGrpcStatusError(err)) return err.code;
  if (err instanceof Error) return codeByErrorName[err.name];
  return undefined;
}

/**
 * True when the failed operation is worth retrying later — the one place that decides it, for a
 * gRPC status from a call as for a domain error thrown in process (embedded mode).
 */
export function isRetryable(err: unknown): boolean {
  const code = grpcCodeOf(err);
  return code !== undefined && retryableCodes.has(code);
}

/** Trailing-metadata key carrying a JSON array of {@link Problem}s. */
export const PROBLEMS_METADATA_KEY = "odin-problems-bin";
/** Trailing-metadata key carrying the server's id for the call (quoted in its logs). */
export const REQUEST_ID_METADATA_KEY = "odin-request-id";

// Peers refuse metadata above 8 KiB by default; problems beyond this budget are summarized.
const PROBLEMS_BUDGET_BYTES = 4096;

/** Encodes problems as JSON for trailing metadata, cut to fit the metadata size budget. */
export function encodeProblems(problems: readonly Problem[]): Buffer {
  const kept: Problem[] = [];
  let size = 2;
  for (const [i, problem] of problems.entries()) {
    const bytes = Buffer.byteLength(JSON.stringify(problem)) + 1;
    if (size + bytes > PROBLEMS_BUDGET_BYTES - 100) {
      kept.push({ message: `… and ${problems.length - i} more problems` });
      break;
    }
    kept.push(problem);
    size += bytes;
  }
  return Buffer.from(JSON.stringify(kept));
}

/** The positioned problems a failed call carries (empty when none or unreadable). */
export function problemsOf(err: unknown): Problem[] {
  const metadata = (err as { metadata?: unknown } | null)?.metadata;
  if (!(metadata instanceof Metadata)) return [];
  const [value] = metadata.get(PROBLEMS_METADATA_KEY);
  if (!Buffer.isBuffer(value)) return [];
  try {
    const parsed: unknown = JSON.parse(value.toString("utf8"));
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (p): p is Problem =>
        typeof p === "object" && p !== null && typeof (p as Problem).message === "string",
    );
  } catch {
    return [];
  }
}

/** The server's request id of a failed call, if it sent one. */
export function requestIdOfError(err: unknown): string | undefined {
  const metadata = (err as { metadata?: unknown } | null)?.metadata;
  if (!(metadata instanceof Metadata)) return undefined;
  const [value] = metadata.get(REQUEST_ID_METADATA_KEY);
  return typeof value === "string" ? value : undefined;
}

/** A gRPC status as thrown by grpc-js clients: an Error with a numeric `code` and `metadata`. */
export function isGrpcStatusError(
  err: unknown,
): err is Error & { code: status; details: string; metadata: Metadata } {
  return (
    err instanceof Error &&
    typeof (err as { code?: unknown }).code === "number" &&
    (err as { metadata?: unknown }).metadata instanceof Metadata
  );
}

/** What the server sends for an error thrown by a handler, and whether it must be logged. */
export interface MappedStatus extends StatusObject {
  /** True when the error was not a domain error: it is logged with its stack, the client sees only the request id. */
  unexpected: boolean;
}

/**
 * The longest status message sent. It travels in an HTTP/2 header: one that quotes a huge input
 * back (a 9 MiB id) would exceed the peer's header limit, and the client would hear nothing until
 * its deadline. Longer messages are cut, saying so.
 */
export const MAX_STATUS_DETAILS = 4000;

/** Maps an error thrown (or passed to a callback) by a handler to the status the client receives. */
export function toGrpcStatus(err: unknown, requestId: string): MappedStatus {
  const mapped = mapError(err, requestId);
  // Messages quote what the caller sent: control characters (a NUL, a terminal escape) are
  // written out as escapes, never sent raw to a terminal.
  mapped.details = mapped.details.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u0008\u000b-\u001f\u007f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  if (mapped.details.length > MAX_STATUS_DETAILS)
    mapped.details = `${mapped.details.slice(0, MAX_STATUS_DETAILS - 60)}… (${mapped.details.length} characters; cut)`;
  return mapped;
}

function mapError(err: unknown, requestId: string): MappedStatus {
  const metadata = new Metadata();
  const plain = { metadata, unexpected: false };
  // A status error from a downstream Odin call keeps its code, message and problems; a downstream
  // authentication failure is the server's misconfiguration, not the caller's, so it is internal.
  if (isGrpcStatusError(err)) {
    const [problems] = err.metadata.get(PROBLEMS_METADATA_KEY);
    if (problems !== undefined) metadata.set(PROBLEMS_METADATA_KEY, problems);
    if (err.code === status.UNAUTHENTICATED || err.code === status.OK) {
      return internal(requestId);
    }
    return { ...plain, code: err.code, details: err.details || err.message };
  }
  if (err instanceof Error && !isDomException(err)) {
    const code = codeByErrorName[err.name];
    if (code !== undefined) {
      const problems = (err as { problems?: unknown }).problems;
      if (Array.isArray(problems) && problems.length > 0) {
        metadata.set(PROBLEMS_METADATA_KEY, encodeProblems(problems as Problem[]));
      }
      return { ...plain, code, details: err.message };
    }
  }
  // A grpc-js style status object ({ code, details }) passed to a callback on purpose.
  if (!(err instanceof Error) && typeof err === "object" && err !== null) {
    const { code, details } = err as { code?: unknown; details?: unknown };
    if (typeof code === "number" && code > 0 && code <= 16) {
      const known = code as status;
      if (known === status.UNAUTHENTICATED) return internal(requestId);
      return {
        ...plain,
        code: known,
        details: typeof details === "string" ? details : status[known],
      };
    }
  }
  return internal(requestId);
}

function internal(requestId: string): MappedStatus {
  return {
    code: status.INTERNAL,
    details: `internal error (see server log, request id ${requestId})`,
    metadata: new Metadata(),
    unexpected: true,
  };
}

function isDomException(err: Error): boolean {
  return typeof DOMException !== "undefined" && err instanceof DOMException;
}

/**
 * Maps an error of `@kubernetes/client-node` (an ApiException with an HTTP `.code` and a Status
 * `.body`, or a network/timeout error) to a domain error; anything else is returned unchanged.
 * `what` says what was being done, e.g. `create pod odin-x`.
 */
export function fromKubernetesError(err: unknown, what?: string): Error {
  const prefix = what !== undefined && what !== "" ? `${what}: ` : "";
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    code?: unknown;
    body?: unknown;
    message?: unknown;
    name?: unknown;
    type?: unknown;
    cause?: unknown;
  };
  const options = { cause: err };
  if (typeof e.code === "number" && e.code >= 100 && e.code < 600) {
    const body = kubernetesStatus(e.body);
    const reason =
      body.message ??
      (typeof e.message === "string" && e.message !== "" ? e.message : "no message");
    const message = `${prefix}${reason} (Kubernetes API ${e.code})`;
    const code = e.code;
    if (body.reason === "Timeout" || body.reason === "ServerTimeout" || code === 408) {
      return new DeadlineExceededError(message, options);
    }
    if (code === 404) return new NotFoundError(message, options);
    if (code === 409) {
      return body.reason === "Conflict"
        ? new ConflictError(message, options)
        : new AlreadyExistsError(message, options);
    }
    if (code === 400 || code === 422) return new InvalidArgumentError(message, options);
    if (code === 403) return new PermissionDeniedError(message, options);
    if (code === 401) return new UnauthenticatedError(message, options);
    if (code === 429 || code >= 500) return new UnavailableError(message, options);
    return err instanceof Error ? err : new Error(message, options);
  }
  const codes = [e.code, (e.cause as { code?: unknown } | undefined)?.code].filter(
    (c): c is string => typeof c === "string",
  );
  const text = typeof e.message === "string" ? e.message : String(err);
  if (
    e.name === "TimeoutError" ||
    e.name === "AbortError" ||
    e.type === "request-timeout" ||
    codes.some((c) => /TIMEDOUT|TIMEOUT/.test(c))
  ) {
    return new DeadlineExceededError(`${prefix}the Kubernetes API did not answer in time`, options);
  }
  if (codes.some((c) => NETWORK_CODES.has(c))) {
    return new UnavailableError(`${prefix}cannot reach the Kubernetes API: ${text}`, options);
  }
  return err instanceof Error ? err : new Error(`${prefix}${text}`, options);
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "UND_ERR_SOCKET",
]);

/** The `message` and `reason` of a Kubernetes Status body (object or JSON text). */
function kubernetesStatus(body: unknown): { message?: string; reason?: string } {
  let value = body;
  if (typeof body === "string") {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim() !== "" && body.length < 500 ? { message: body.trim() } : {};
    }
  }
  if (typeof value !== "object" || value === null) return {};
  const { message, reason } = value as { message?: unknown; reason?: unknown };
  return {
    ...(typeof message === "string" && message !== "" ? { message } : {}),
    ...(typeof reason === "string" ? { reason } : {}),
  };
}

/** How to reach the server, for {@link describeGrpcError}'s messages. */
export interface DescribeOptions {
  /** The address the client dialled; default: the one the kit's call helpers recorded, else "the server". */
  address?: string;
}

// Errors raised through unary()/serverStream() remember the address they were dialling.
const errorAddresses = new WeakMap<object, string>();

/** Records which address a failed call dialled (used by the kit's client helpers). */
export function rememberErrorAddress(err: unknown, address: string): void {
  if (typeof err === "object" && err !== null) {
    errorAddresses.set(err, address.replace(/^dns:/, ""));
  }
}

/** One human line for a failed gRPC call, for CLIs and logs: what happened and what to do. */
export function describeGrpcError(err: unknown, options: DescribeOptions = {}): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "number" || !(err as { metadata?: unknown }).metadata) return err.message;
  const where = options.address ?? errorAddresses.get(err) ?? "the server";
  const details = (err as { details?: unknown }).details;
  const text = typeof details === "string" && details !== "" ? details : err.message;
  switch (code as status) {
    case status.UNAVAILABLE: {
      const reason = connectionFailure(text);
      if (reason !== undefined) {
        return `cannot reach odin at ${where}: ${reason} — is the server running? set --server / ODIN_SERVER`;
      }
      return `odin at ${where} is unavailable: ${text}`;
    }
    case status.DEADLINE_EXCEEDED:
      return /^deadline exceeded/i.test(text)
        ? `odin at ${where} did not answer in time (deadline exceeded)`
        : `deadline exceeded: ${text}`;
    case status.UNAUTHENTICATED:
      return /ODIN_TOKEN/.test(text)
        ? `not authenticated: ${text}`
        : `not authenticated: ${text}; pass a token with --token or ODIN_TOKEN`;
    case status.PERMISSION_DENIED:
      return `permission denied: ${text}`;
    case status.UNIMPLEMENTED:
      return `odin at ${where} does not implement this call (${text}) — is it an Odin server of the same version?`;
    case status.CANCELLED:
      return `the call was cancelled before it finished (${text}); the server may have shut down`;
    case status.RESOURCE_EXHAUSTED:
      return `too large or over a limit: ${text}`;
    case status.UNKNOWN:
      return `unexpected error from odin at ${where}: ${text}`;
    default:
      return text;
  }
}

/** A short reason when an UNAVAILABLE status means "no connection", else undefined. */
function connectionFailure(details: string): string | undefined {
  if (/ECONNREFUSED|connection refused/i.test(details)) return "connection refused";
  if (/ENOTFOUND|EAI_AGAIN|name resolution|DNS resolution failed/i.test(details)) {
    return "unknown host";
  }
  if (/ETIMEDOUT|timed out/i.test(details)) return "connection timed out";
  if (/ECONNRESET|socket hang up|connection reset/i.test(details)) return "connection reset";
  if (/SSL|TLS|certificate|EPROTO|handshake/i.test(details)) {
    return `TLS handshake failed (${details.slice(0, 200)}) — do client and server agree on TLS and the CA?`;
  }
  if (/No connection established|Failed to connect|connection closed/i.test(details)) {
    return "no connection";
  }
  return undefined;
}
