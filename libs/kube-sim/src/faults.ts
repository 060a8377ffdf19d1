// Fault injection for reliability tests: refuse the next requests, slow every response, drop the
// open watches — what an overloaded or restarting API server does to a client.
import { ApiError, failure } from "./status.js";
import { matchesPattern } from "./scripts.js";

/** Which requests a fault applies to; every given field must match. */
export interface FaultMatch {
  /** HTTP method, e.g. `POST`. */
  method?: string;
  /** URL path (no query): a RegExp, or a string with `*` wildcards over the whole path. */
  path?: RegExp | string;
  /** Only watch requests (true) or only non-watch requests (false). */
  watch?: boolean;
}

/** Options of `failNext`. */
export interface FailNextOptions {
  match?: FaultMatch;
  /** `Retry-After` seconds of a 429 (default 1). */
  retryAfterSeconds?: number;
  /** Message of the returned Status. */
  message?: string;
}

/** Options of `dropWatches`. */
export interface DropWatchesOptions {
  /** End each response cleanly (chunked terminator) instead of cutting the connection. */
  graceful?: boolean;
}

interface PendingFailure {
  remaining: number;
  code: number;
  options: FailNextOptions;
}

const REASONS: Record<number, string> = {
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

function matches(
  match: FaultMatch | undefined,
  method: string,
  path: string,
  watch: boolean,
): boolean {
  if (match === undefined) return true;
  if (match.method !== undefined && match.method.toUpperCase() !== method) return false;
  if (match.path !== undefined && !matchesPattern(match.path, path)) return false;
  if (match.watch !== undefined && match.watch !== watch) return false;
  return true;
}

/** Fault injection controls of one simulator. */
export class Faults {
  private failures: PendingFailure[] = [];
  private delays: { ms: number; match: FaultMatch | undefined }[] = [];
  /** Requests answered by an injected failure so far. */
  injected = 0;

  constructor(private readonly dropAll: (graceful: boolean) => number) {}

  /**
   * Answers the next `count` matching requests with `code` (500 by default; 429 carries
   * `Retry-After`) and a Kubernetes Status body.
   */
  failNext(count: number, code = 500, options: FailNextOptions = {}): void {
    if (count > 0) this.failures.push({ remaining: count, code, options });
  }

  /** Closes every open watch connection now; returns how many were closed. */
  dropWatches(options: DropWatchesOptions = {}): number {
    return this.dropAll(options.graceful === true);
  }

  /** Delays every matching response by `ms` until changed; `delay(0)` removes all delays. */
  delay(ms: number, options: { match?: FaultMatch } = {}): void {
    if (ms <= 0) this.delays = [];
    else this.delays.push({ ms, match: options.match });
  }

  /** Removes every pending failure and delay. */
  reset(): void {
    this.failures = [];
    this.delays = [];
  }

  /** Failure to answer this request with, consuming one pending failure. */
  take(method: string, path: string, watch: boolean): ApiError | undefined {
    const pending = this.failures.find((f) => matches(f.options.match, method, path, watch));
    if (pending === undefined) return undefined;
    pending.remaining--;
    if (pending.remaining <= 0) this.failures = this.failures.filter((f) => f !== pending);
    this.injected++;
    const reason = REASONS[pending.code] ?? "InternalError";
    const message = pending.options.message ?? `kube-sim injected fault: ${pending.code} ${reason}`;
    if (pending.code === 429) {
      const seconds = pending.options.retryAfterSeconds ?? 1;
      return new ApiError(failure(429, reason, message, { retryAfterSeconds: seconds }), {
        "Retry-After": String(seconds),
      });
    }
    return new ApiError(failure(pending.code, reason, message));
  }

  /** Total delay for this request, in ms. */
  delayFor(method: string, path: string, watch: boolean): number {
    let total = 0;
    for (const d of this.delays) if (matches(d.match, method, path, watch)) total += d.ms;
    return total;
  }
}
