// Posting a JSON body to a webhook: retried with exponential backoff on what a retry can fix
// (network errors, timeouts, 408, 429, 5xx); an error never quotes the URL.
import type { WebhookSecrets } from "./secrets.js";

/** How a delivery is attempted. Every field has a default; tests pass `sleep` to count, not wait. */
export interface DeliveryOptions {
  /** Attempts in all, the first included (default 5). */
  attempts?: number;
  /** Wait before the second attempt, doubled for each next one (default 2 s). */
  backoffMs?: number;
  /** Longest wait between attempts (default 60 s); a receiver's Retry-After is honoured up to it. */
  maxBackoffMs?: number;
  /** Limit on one attempt, answer included (default 10 s). */
  timeoutMs?: number;
  /** Waits between attempts (default: a timer). */
  sleep?: (ms: number) => Promise<void>;
  /** Told of each failed attempt, with the wait before the next one (undefined: none follows). */
  onAttemptFailed?: (attempt: number, error: string, retryInMs: number | undefined) => void;
}

/** How a delivery went. */
export interface DeliveryResult {
  delivered: boolean;
  attempts: number;
  /** Why the last attempt failed; never holds the URL. */
  error?: string;
}

const sleepFor = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

/** What went wrong with one attempt, in words that never include the URL (or its host's secrets). */
function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError")
    return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  const code = e.cause?.code;
  return code ? `could not connect (${code})` : "could not connect";
}

/**
 * Posts `body` as JSON to `url`, retrying with backoff while a retry may help. Resolves with the
 * outcome (it never rejects): a delivery's failure is the caller's to record, never its run's.
 */
export async function deliverWebhook(
  url: string,
  body: unknown,
  options: DeliveryOptions = {},
): Promise<DeliveryResult> {
  const attempts = Math.max(1, options.attempts ?? 5);
  const backoffMs = options.backoffMs ?? 2000;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const sleep = options.sleep ?? sleepFor;
  const payload = JSON.stringify(body);
  let error = "";
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let retryable = true;
    let retryAfterMs: number | undefined;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "odin-notify" },
        body: payload,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
      // The answer is not needed; reading it frees the connection.
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { delivered: true, attempts: attempt };
      error = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
      // A redirect is not followed: the body would go to a host the secret does not name.
      if (res.status >= 300 && res.status < 400) error += " (redirects are not followed)";
      retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      const after = Number(res.headers.get("retry-after"));
      if (Number.isFinite(after) && after > 0) retryAfterMs = after * 1000;
    } catch (err) {
      error = describeFailure(err, timeoutMs);
    }
    const last = attempt === attempts || !retryable;
    const wait = last
      ? undefined
      : Math.min(maxBackoffMs, retryAfterMs ?? backoffMs * 2 ** (attempt - 1));
    options.onAttemptFailed?.(attempt, error, wait);
    if (wait === undefined) return { delivered: false, attempts: attempt, error };
    await sleep(wait);
  }
  return { delivered: false, attempts, error };
}

/** Where one webhook post stands (recorded on a run; shown by `odin status`). */
export interface NotificationStatus {
  /** The webhook secret's name (never the URL). */
  webhookSecret: string;
  state: "pending" | "delivered" | "failed";
  attempts: number;
  /** Why the last attempt failed, or why none was made. */
  error?: string;
  /** When it was delivered or given up on (ms since the epoch). */
  endTime?: number;
}

/** The lines a notifier writes; a service's logger fits. */
export interface NotifyLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Posts bodies to webhooks named by secret: resolves the name, delivers with retries, logs each
 * failure (the name, never the URL) and reports progress. For a run's end (the scheduler) and for
 * anything else that posts to a pipeline's or a schedule's webhooks.
 */
export class WebhookNotifier {
  constructor(
    private readonly options: {
      secrets: WebhookSecrets;
      delivery?: DeliveryOptions;
      log: NotifyLog;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /**
   * Posts `body` to the webhook stored under `secret`. `context` is added to every log line (e.g.
   * the run id). `onProgress` hears the status after each failed attempt and at the end. Never
   * rejects.
   */
  async post(
    secret: string,
    body: unknown,
    context: Record<string, unknown> = {},
    onProgress?: (status: NotificationStatus) => void,
  ): Promise<NotificationStatus> {
    const log = this.options.log;
    const fields = { ...context, webhook: secret };
    let url: string | undefined;
    try {
      url = await this.options.secrets.resolve(secret);
    } catch (err) {
      const status = this.failed(secret, 0, (err as Error).message);
      log.error("webhook not posted", { ...fields, error: status.error });
      onProgress?.(status);
      return status;
    }
    if (url === undefined) {
      const status = this.failed(
        secret,
        0,
        `no webhook secret named ${secret} in ${this.options.secrets.where}; add it there (the pipeline's notify: names it)`,
      );
      log.error("webhook not posted", { ...fields, error: status.error });
      onProgress?.(status);
      return status;
    }
    const result = await deliverWebhook(url, body, {
      ...this.options.delivery,
      onAttemptFailed: (attempt, error, retryInMs) => {
        if (retryInMs === undefined) return;
        log.warn("webhook post failed; retrying", { ...fields, attempt, error, retryInMs });
        onProgress?.({ webhookSecret: secret, state: "pending", attempts: attempt, error });
      },
    });
    if (!result.delivered) {
      const status = this.failed(secret, result.attempts, result.error ?? "not delivered");
      log.error("webhook not delivered; giving up", {
        ...fields,
        attempts: result.attempts,
        error: status.error,
      });
      onProgress?.(status);
      return status;
    }
    const status: NotificationStatus = {
      webhookSecret: secret,
      state: "delivered",
      attempts: result.attempts,
      endTime: this.now(),
    };
    log.info("webhook delivered", { ...fields, attempts: result.attempts });
    onProgress?.(status);
    return status;
  }

  private failed(secret: string, attempts: number, error: string): NotificationStatus {
    return { webhookSecret: secret, state: "failed", attempts, error, endTime: this.now() };
  }
}
