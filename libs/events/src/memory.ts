import {
  subjectMatches,
  type BusMessage,
  type ConsumeOptions,
  type EventBus,
  type EventHandler,
  type PublishAck,
  type PublishOptions,
  type Subscription,
} from "./bus.js";

interface Stored {
  subject: string;
  data: Uint8Array;
  sequence: number;
}

interface Redelivery {
  event: Stored;
  due: number;
  deliveryCount: number;
}

interface Durable {
  options: ConsumeOptions;
  /** Index into the log of the next event not yet delivered. */
  cursor: number;
  members: EventHandler[];
  next: number;
  /** Deliveries in flight. */
  busy: number;
  retries: Redelivery[];
  timer: NodeJS.Timeout | undefined;
}

/**
 * The event bus of embedded mode: the same semantics as the JetStream adapter (durable consumers
 * shared by their members, at-least-once delivery with redelivery, msg-id dedupe, per-subject
 * order), held in this process's memory.
 */
export class MemoryEventBus implements EventBus {
  private readonly log: Stored[] = [];
  private readonly ids = new Map<string, { sequence: number; expires: number }>();
  private readonly durables = new Map<string, Durable>();
  private readonly subscribers = new Set<{ filter: string; handler: (m: BusMessage) => void }>();
  private closed = false;

  constructor(private readonly duplicateWindowMs = 120_000) {}

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PublishAck> {
    if (this.closed) return Promise.reject(new Error("event bus is closed"));
    const now = Date.now();
    if (options.msgId !== undefined) {
      const seen = this.ids.get(options.msgId);
      if (seen !== undefined && seen.expires > now)
        return Promise.resolve({ sequence: seen.sequence, duplicate: true });
      if (this.ids.size > 100_000) {
        for (const [id, entry] of this.ids) if (entry.expires <= now) this.ids.delete(id);
      }
    }
    const event: Stored = { subject, data, sequence: this.log.length + 1 };
    this.log.push(event);
    if (options.msgId !== undefined)
      this.ids.set(options.msgId, {
        sequence: event.sequence,
        expires: now + this.duplicateWindowMs,
      });
    for (const s of this.subscribers) {
      if (subjectMatches(s.filter, subject)) {
        const message = { subject, data, sequence: event.sequence, deliveryCount: 1 };
        queueMicrotask(() => s.handler(message));
      }
    }
    for (const d of this.durables.values()) this.kick(d);
    return Promise.resolve({ sequence: event.sequence, duplicate: false });
  }

  consume(options: ConsumeOptions, handler: EventHandler): Promise<Subscription> {
    let durable = this.durables.get(options.durable);
    if (durable === undefined) {
      durable = {
        options,
        cursor: 0,
        members: [],
        next: 0,
        busy: 0,
        retries: [],
        timer: undefined,
      };
      this.durables.set(options.durable, durable);
    }
    const d = durable;
    d.members.push(handler);
    this.kick(d);
    return Promise.resolve({
      stop: () => {
        const i = d.members.indexOf(handler);
        if (i !== -1) d.members.splice(i, 1);
        return Promise.resolve();
      },
    });
  }

  subscribe(filter: string, handler: (message: BusMessage) => void): Promise<Subscription> {
    const entry = { filter, handler };
    this.subscribers.add(entry);
    return Promise.resolve({
      stop: () => {
        this.subscribers.delete(entry);
        return Promise.resolve();
      },
    });
  }

  close(): Promise<void> {
    this.closed = true;
    for (const d of this.durables.values()) {
      d.members.length = 0;
      if (d.timer) clearTimeout(d.timer);
    }
    this.subscribers.clear();
    return Promise.resolve();
  }

  /** Delivers the next due event of a durable consumer, one at a time, if it has a member. */
  private kick(d: Durable): void {
    const limit = Math.max(1, d.options.concurrency ?? 1) * Math.max(1, d.members.length);
    if (d.busy >= limit || d.members.length === 0 || this.closed) return;
    const now = Date.now();
    let delivery: Redelivery | undefined;
    const dueAt = d.retries.findIndex((r) => r.due <= now);
    if (dueAt !== -1) {
      delivery = d.retries.splice(dueAt, 1)[0];
    } else {
      while (
        d.cursor < this.log.length &&
        !subjectMatches(d.options.filter, this.log[d.cursor]!.subject)
      )
        d.cursor++;
      if (d.cursor < this.log.length) {
        delivery = { event: this.log[d.cursor]!, due: now, deliveryCount: 1 };
        d.cursor++;
      }
    }
    if (delivery === undefined) {
      this.scheduleRetryKick(d);
      return;
    }
    const member = d.members[d.next++ % d.members.length]!;
    d.busy++;
    const { event, deliveryCount } = delivery;
    const message: BusMessage = {
      subject: event.subject,
      data: event.data,
      sequence: event.sequence,
      deliveryCount,
    };
    const ackWait = d.options.ackWaitMs ?? 30_000;
    let timeout: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timeout = setTimeout(() => reject(new Error("ack wait expired")), ackWait);
      timeout.unref();
    });
    Promise.race([member(message), expired])
      .catch(() => {
        d.retries.push({
          event,
          due: Date.now() + (d.options.retryDelayMs ?? 1000),
          deliveryCount: deliveryCount + 1,
        });
      })
      .finally(() => {
        clearTimeout(timeout);
        d.busy--;
        setImmediate(() => this.kick(d));
      });
    // More may go out at once when the consumer allows it.
    if (d.busy < limit) setImmediate(() => this.kick(d));
  }

  private scheduleRetryKick(d: Durable): void {
    if (d.retries.length === 0 || d.timer !== undefined) return;
    const wait = Math.max(0, Math.min(...d.retries.map((r) => r.due)) - Date.now());
    d.timer = setTimeout(() => {
      d.timer = undefined;
      this.kick(d);
    }, wait);
    d.timer.unref();
  }
}
