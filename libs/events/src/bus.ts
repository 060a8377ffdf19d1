/** One event as delivered to a consumer. */
export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** Position in the event log; increases with every event published. */
  sequence: number;
  /** 1 on first delivery, more when redelivered. */
  deliveryCount: number;
}

/** What a durable consumer does with each event; throwing makes the event come back later. */
export type EventHandler = (message: BusMessage) => Promise<void>;

/** A durable consumer: a named position in the log shared by every member that joins it. */
export interface ConsumeOptions {
  /** Consumer name; every process consuming under the same name shares the work. */
  durable: string;
  /** Subject filter (`odin.events.task.>`); one per consumer. */
  filter: string;
  /** How long an event may stay unacknowledged before it is delivered again (default 30 s). */
  ackWaitMs?: number;
  /** Delay before an event whose handler threw is delivered again (default 1 s). */
  retryDelayMs?: number;
  /**
   * Events handled at once by this member (default 1: one after another, in order). Above 1,
   * events may be handled out of order, so handlers must not depend on it.
   */
  concurrency?: number;
}

/** A live subscription or consumer; stop it to leave. */
export interface Subscription {
  stop(): Promise<void>;
}

/** How to publish. */
export interface PublishOptions {
  /** A repeated publish with the same id within the dedupe window is dropped. */
  msgId?: string;
  /**
   * Do not wait for the log to confirm the event (sequence 0 is returned): much cheaper, for
   * notifications whose loss costs nothing because their facts are recorded elsewhere.
   */
  noAck?: boolean;
}

/** Result of a publish. */
export interface PublishAck {
  sequence: number;
  /** True when an event with the same id was already published (and this one was dropped). */
  duplicate: boolean;
}

/**
 * The event bus port. Events are facts: a durable consumer sees each one at least once (a handler
 * must be idempotent), a publish with a `msgId` seen recently is dropped, and events on one
 * subject arrive in the order they were published.
 */
export interface EventBus {
  /** Appends an event to the log. `msgId` makes a repeated publish a no-op. */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PublishAck>;
  /** Joins a durable consumer: each matching event goes to one of its members, in order. */
  consume(options: ConsumeOptions, handler: EventHandler): Promise<Subscription>;
  /** Live, at-most-once subscription to new events (for watchers); every subscriber gets every event. */
  subscribe(filter: string, handler: (message: BusMessage) => void): Promise<Subscription>;
  /** Stops every consumer and subscription and releases the connection. */
  close(): Promise<void>;
}

/** The bus cannot be reached (for example NATS is down); the operation may be retried. */
export class EventBusUnavailableError extends Error {
  override name = "EventBusUnavailableError";
}

/**
 * How many partitions runs are spread over: the scheduler replicas split partitions, not runs, so
 * each can consume only its own runs' task events (a durable consumer per partition). Fixed: a
 * run's partition is part of its task events' subject.
 */
export const runPartitions = 16;

/** FNV-1a, 32 bits. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The partition of a run (0 to {@link runPartitions} − 1). */
export function partitionOf(runId: string): number {
  return fnv1a(runId) % runPartitions;
}

/** Subjects of Odin's events. */
export const subjects = {
  /** Every Odin event; the stream's subject space. */
  all: "odin.events.>",
  /** A task's lifecycle events (from launchers), per run: `odin.events.task.<partition>.<run>`. */
  task: (runId: string) => `odin.events.task.${partitionOf(runId)}.${runId}`,
  /** The task events of one partition's runs. */
  partitionTasks: (partition: number) => `odin.events.task.${partition}.*`,
  /** Task events as launchers before partitions published them: `odin.events.task.<run>`. */
  unpartitionedTasks: "odin.events.task.*",
  /** All task events. */
  allTasks: "odin.events.task.>",
  /** Run and task state changes (from schedulers), per run. */
  run: (runId: string) => `odin.events.run.${runId}`,
  /** All run events. */
  allRuns: "odin.events.run.>",
  /** The pipelines repository moved to a new commit. */
  repoSynced: "odin.events.repo.synced",
} as const;

/** True when a NATS-style subject matches a filter (`*` one token, `>` the rest). */
export function subjectMatches(filter: string, subject: string): boolean {
  if (filter === subject) return true;
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== "*" && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}
