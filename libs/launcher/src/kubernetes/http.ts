// How the launcher talks to the Kubernetes API: every request of the generated clients goes
// through one HTTP library that waits for a token of a client-side rate limit, reuses keep-alive
// connections, and retries 429, 5xx and network failures with exponential backoff and jitter
// (honouring Retry-After). Retrying a create is safe because object names are deterministic: a
// create that had in fact succeeded comes back as 409, which launch treats as "already launched".
import * as http from "node:http";
import * as https from "node:https";
import {
  BatchV1Api,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  IsomorphicFetchHttpLibrary,
  type KubeConfig,
  type PromiseHttpLibrary,
  type RequestContext,
  type ResponseContext,
  ServerConfiguration,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import type { KubernetesApiMetrics } from "@odin/service-kit";

/** A token bucket: `qps` tokens a second, at most `burst` saved up; callers wait their turn in order. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(qps > 0) || !(burst >= 1)) {
      throw new RangeError(`rate limit needs qps > 0 and burst >= 1 (got ${qps}, ${burst})`);
    }
    this.tokens = burst;
    this.last = this.now();
  }

  /** Resolves when the caller may send one request. */
  take(): Promise<void> {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  /** Wakes every waiter (used on shutdown so nothing hangs). */
  drain(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) w();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.qps) * 1000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.waiters.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()?.();
      }
      if (this.waiters.length > 0) this.schedule();
    }, wait);
  }
}

/** Retry policy of API requests. */
export interface RetryPolicy {
  /** Retries after the first try (default 5). */
  retries: number;
  /** First backoff in ms, doubled per retry (default 100). */
  baseDelayMs: number;
  /** Largest backoff of our own, in ms (default 10,000). */
  maxDelayMs: number;
  /** Longest Retry-After honoured, in ms (default 30,000). */
  maxRetryAfterMs: number;
}

/** Defaults of {@link RetryPolicy}. */
export const defaultRetryPolicy: Readonly<RetryPolicy> = Object.freeze({
  retries: 5,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 30_000,
});

/**
 * Backoff before retry number `retry` (0-based): "full jitter" over an exponentially growing
 * window, so many clients retrying at once spread out; a Retry-After given by the server is a floor.
 */
export function backoffDelay(
  retry: number,
  policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs"> & Partial<RetryPolicy>,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  const jittered = window / 2 + random() * (window / 2);
  const floor = Math.min(retryAfterMs ?? 0, policy.maxRetryAfterMs ?? policy.maxDelayMs);
  return Math.max(jittered, floor);
}

/** Retry-After (seconds or an HTTP date) in ms, if present and sane. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

/** True for a failure to talk to the server at all (as opposed to an answer). */
export function isNetworkError(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown; type?: unknown; cause?: unknown } | null;
  if (e === null || typeof e !== "object") return false;
  const codes = [e.code, e.errno, (e.cause as { code?: unknown } | undefined)?.code];
  if (codes.some((c) => typeof c === "string" && NETWORK_CODES.has(c))) return true;
  // node-fetch reports a connection cut mid-response as a "system" FetchError.
  return e.type === "system";
}

/** What the HTTP layer counts, for tests and metrics. */
export interface HttpStats {
  requests: number;
  retries: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The launcher's HTTP library for the generated Kubernetes clients: rate limit, keep-alive,
 * retries. The kubeconfig authenticates each request as before (tokens in headers, client
 * certificates in the agent); the agent it builds per request is replaced by one shared keep-alive
 * agent with the same TLS options, so requests do not open a connection each.
 */
export class KubernetesHttp implements PromiseHttpLibrary {
  readonly stats: HttpStats = { requests: 0, retries: 0 };
  private readonly inner = new IsomorphicFetchHttpLibrary();
  private readonly agents = new Map<string, http.Agent>();
  private closed = false;

  constructor(
    private readonly limiter: TokenBucket,
    private readonly policy: RetryPolicy = defaultRetryPolicy,
    private readonly metrics?: KubernetesApiMetrics,
  ) {}

  async send(request: RequestContext): Promise<ResponseContext> {
    const agent = this.sharedAgent(request.getAgent());
    if (agent !== undefined) request.setAgent(agent);
    const verb = String(request.getHttpMethod());
    for (let retry = 0; ; retry++) {
      const waiting = performance.now();
      await this.limiter.take();
      const sent = performance.now();
      this.metrics?.throttled((sent - waiting) / 1000);
      this.stats.requests++;
      let response: ResponseContext;
      try {
        response = await this.inner.send(request).toPromise();
        this.metrics?.request(
          verb,
          String(response.httpStatusCode),
          (performance.now() - sent) / 1000,
        );
      } catch (err) {
        this.metrics?.request(verb, "error", (performance.now() - sent) / 1000);
        if (this.closed || retry >= this.policy.retries || !isNetworkError(err)) throw err;
        this.stats.retries++;
        await sleep(backoffDelay(retry, this.policy));
        continue;
      }
      if (
        this.closed ||
        retry >= this.policy.retries ||
        !RETRYABLE_STATUS.has(response.httpStatusCode)
      ) {
        return response;
      }
      // Read the body so the keep-alive connection is released before waiting.
      await response.body.text().catch(() => "");
      this.stats.retries++;
      await sleep(backoffDelay(retry, this.policy, retryAfterMs(response.headers["retry-after"])));
    }
  }

  /** Stops retrying (requests in flight get their current answer) and closes idle connections. */
  close(): void {
    this.closed = true;
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }

  private sharedAgent(
    agent: http.Agent | https.Agent | undefined,
  ): http.Agent | https.Agent | undefined {
    // Proxy agents (and anything unknown) are used as the kubeconfig made them.
    if (agent === undefined) return undefined;
    const isHttps = agent.constructor === https.Agent;
    if (!isHttps && agent.constructor !== http.Agent) return agent;
    const options = (agent as unknown as { options: https.AgentOptions }).options;
    const key = JSON.stringify([
      isHttps,
      optionText(options.ca),
      optionText(options.cert),
      optionText(options.key),
      options.rejectUnauthorized,
      options.servername,
    ]);
    let shared = this.agents.get(key);
    if (shared === undefined) {
      const keepAlive = { ...options, keepAlive: true, maxSockets: 64, maxFreeSockets: 16 };
      shared = isHttps ? new https.Agent(keepAlive) : new http.Agent(keepAlive);
      this.agents.set(key, shared);
    }
    return shared;
  }
}

/** A TLS option (PEM text, buffers, lists of them, key objects) as text, to compare agents. */
function optionText(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("base64");
  if (Array.isArray(value)) return value.map(optionText).join("\n");
  return JSON.stringify(value);
}

/** The three API groups the launcher uses, sharing one rate limit and retry policy. */
export interface KubernetesApis {
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  http: KubernetesHttp;
}

/** API clients for the kubeconfig's current cluster through {@link KubernetesHttp}. */
export function kubernetesApis(kc: KubeConfig, httpLibrary: KubernetesHttp): KubernetesApis {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    httpApi: wrapHttpLibrary(httpLibrary),
  });
  return {
    core: new CoreV1Api(configuration),
    batch: new BatchV1Api(configuration),
    custom: new CustomObjectsApi(configuration),
    http: httpLibrary,
  };
}
