// Delivering task events to the bus, shared by every backend: in order per attempt, each event
// retried with backoff until the bus takes it (a bus outage delays events, it never loses them),
// and work that must follow an attempt's events (deleting a stuck attempt's object once its ERROR
// is out) queued behind them. Events sent before `start` wait for it.
import { silentLogger, type Logger } from "@odin/service-kit";
import type { TaskStateEvent } from "../backend.js";

type Report = (event: TaskStateEvent) => Promise<void>;

/** How an {@link EventDelivery} is set up. */
export interface EventDeliveryOptions {
  logger?: Logger;
  /** Called once the bus took an event (the local backend notes it in the attempt's record). */
  onDelivered?: (event: TaskStateEvent) => void;
  /** First retry delay (ms; default 100), doubling up to `maxDelayMs` (default 5000). */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** Ordered, retried delivery of task events, one queue per attempt. */
export class EventDelivery {
  private readonly chains = new Map<string, Promise<void>>();
  private readonly closing = new AbortController();
  private report: Report | undefined;
  private readonly started: Promise<void>;
  private markStarted: () => void = () => undefined;

  constructor(private readonly options: EventDeliveryOptions = {}) {
    this.started = new Promise((resolve) => (this.markStarted = resolve));
  }

  /** Starts delivering through `report`; what was sent before goes first. */
  start(report: Report): void {
    this.report = report;
    this.markStarted();
  }

  /** Queues an event behind the attempt's earlier ones. */
  send(key: string, event: TaskStateEvent): void {
    this.then(key, () => this.deliver(event));
  }

  /** Runs `work` once the attempt's queued events are delivered (its failure is the caller's to log). */
  then(key: string, work: () => Promise<unknown>): void {
    const previous = this.chains.get(key) ?? this.started;
    const next = previous.then(async () => {
      if (this.closing.signal.aborted) return;
      await work();
    });
    const settled = next.catch(() => undefined);
    this.chains.set(key, settled);
    void settled.then(() => {
      if (this.chains.get(key) === settled) this.chains.delete(key);
    });
  }

  /** Stops retrying and waits for deliveries in flight. */
  async close(): Promise<void> {
    this.closing.abort();
    this.markStarted();
    await Promise.all([...this.chains.values()]);
  }

  private async deliver(event: TaskStateEvent): Promise<void> {
    const report = this.report;
    if (report === undefined) return;
    const base = this.options.baseDelayMs ?? 100;
    const max = this.options.maxDelayMs ?? 5000;
    for (let retry = 0; !this.closing.signal.aborted; retry++) {
      try {
        await report(event);
        this.options.onDelivered?.(event);
        return;
      } catch (err) {
        if (retry === 0 || retry % 10 === 0) {
          (this.options.logger ?? silentLogger).warn("cannot deliver a task event; retrying", {
            run: event.runId,
            task: event.task,
            attempt: event.attempt,
            state: event.state,
            err,
          });
        }
        await sleep(Math.min(max, base * 2 ** Math.min(retry, 16)), this.closing.signal);
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
