// Which replicas of a service are alive, so that they can split work between them without asking
// each other. Each member announces itself on a core (not stored) subject every heartbeat; a
// member not heard from for `ttlMs` is gone, and one that stops cleanly says so at once. Work is
// assigned by rendezvous hashing over the live members: a key goes to the member with the highest
// hash of (member, key), so a member leaving moves only its own keys, and members agree as soon
// as they see the same members. Views can differ for a moment (a member joining, or dying before
// its silence is noticed), so work split this way must stay correct when two members, or none,
// act on a key for a while: Odin's writes are compare-and-set, and ownership only saves the
// duplicate work.
import { randomBytes } from "node:crypto";
import { fnv1a, type EventBus, type Subscription } from "./bus.js";

/** Who does the work for a key, among the live replicas of a service. */
export interface WorkShare {
  /** This replica's id. */
  readonly id: string;
  /** True when this replica does the work for `key` (as far as it knows the live members). */
  owns(key: string): boolean;
  /** The live members' ids (this one included), sorted: who the keys are split between. */
  members(): readonly string[];
  /** Calls `listener` whenever the live members change; returns a function to stop. */
  onChange(listener: () => void): () => void;
}

/** How a {@link Membership} is set up. */
export interface MembershipOptions {
  /** The service whose replicas share work (`dag-scheduler`): one subject token. */
  group: string;
  /** This replica's id (default: random). */
  id?: string;
  /** How often this replica announces itself (default 1 s). */
  heartbeatMs?: number;
  /** Silence after which a member is taken for gone (default 10 s: a busy event loop is not death). */
  ttlMs?: number;
  /** How long `join` listens for the members already there before it resolves (default 300 ms). */
  settleMs?: number;
  /** Told when a member joins or is taken for gone. */
  log?: { info(msg: string, fields?: Record<string, unknown>): void };
}

/** The subject a group's members announce themselves on (outside the event stream: not stored). */
export function membershipSubject(group: string): string {
  return `odin.members.${group}`;
}

interface Announcement {
  id: string;
  /** `hello`: just joined, members answer at once; `leaving`: stopping now. */
  state: "hello" | "alive" | "leaving";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** FNV-1a over `member \0 key`, 32 bits: the rendezvous score. */
function score(member: string, key: string): number {
  let h = fnv1a(`${member}\0${key}`);
  // Mix the low bits, which FNV leaves weak for keys that differ only at the end.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** The member `key` belongs to among `members` (rendezvous hashing). */
export function ownerOf(key: string, members: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    const s = score(m, key);
    if (s > bestScore || (s === bestScore && best !== undefined && m < best)) {
      best = m;
      bestScore = s;
    }
  }
  return best;
}

/** This replica's membership of its service's group, over the event bus's live subjects. */
export class Membership implements WorkShare {
  readonly id: string;
  private readonly lastSeen = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private sorted: string[] = [];
  private subscription: Subscription | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** When the heartbeat last ran: after a stall of this process, silence proves nothing. */
  private lastTick = Date.now();
  private closed = false;
  private readonly subject: string;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;

  private constructor(
    private readonly bus: EventBus,
    private readonly options: MembershipOptions,
  ) {
    if (!/^[-\w]+$/.test(options.group))
      throw new Error(`membership group ${JSON.stringify(options.group)} must be one token`);
    this.id = options.id ?? randomBytes(6).toString("hex");
    this.subject = membershipSubject(options.group);
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.lastSeen.set(this.id, Number.POSITIVE_INFINITY);
    this.sorted = [this.id];
  }

  /**
   * Joins the group: listens, says hello (members there answer at once), waits `settleMs` to hear
   * them, then announces itself every heartbeat.
   */
  static async join(bus: EventBus, options: MembershipOptions): Promise<Membership> {
    const m = new Membership(bus, options);
    m.subscription = await bus.subscribe(m.subject, (message) => m.heard(message.data));
    m.announce("hello");
    await new Promise((r) => setTimeout(r, options.settleMs ?? 300));
    m.heartbeat = setInterval(() => {
      m.announce("alive");
      m.sweep();
    }, m.heartbeatMs);
    m.heartbeat.unref();
    return m;
  }

  /** The live members' ids (this one included), sorted. */
  members(): readonly string[] {
    return this.sorted;
  }

  owns(key: string): boolean {
    return ownerOf(key, this.sorted) === this.id;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Says it is leaving (the others take its work over at once) and stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.announce("leaving");
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.subscription?.stop();
  }

  private announce(state: Announcement["state"]): void {
    if (this.closed) return;
    const body: Announcement = { id: this.id, state };
    // A lost heartbeat costs nothing: the next one follows.
    this.bus
      .publish(this.subject, encoder.encode(JSON.stringify(body)), { noAck: true })
      .catch(() => undefined);
  }

  private heard(data: Uint8Array): void {
    if (this.closed) return;
    let a: Announcement;
    try {
      a = JSON.parse(decoder.decode(data)) as Announcement;
    } catch {
      return;
    }
    if (typeof a.id !== "string" || a.id === this.id) return;
    if (a.state === "leaving") {
      if (this.lastSeen.delete(a.id)) this.changed(`member ${a.id} left`);
      return;
    }
    const known = this.lastSeen.has(a.id);
    this.lastSeen.set(a.id, Date.now());
    if (a.state === "hello") this.announce("alive");
    if (!known) this.changed(`member ${a.id} joined`);
  }

  /** Forgets members silent for longer than the TTL. */
  private sweep(): void {
    const now = Date.now();
    const stalled = now - this.lastTick > 2 * this.heartbeatMs;
    this.lastTick = now;
    // This process's own event loop stood still: what the others said meanwhile is still queued.
    if (stalled) return;
    const gone: string[] = [];
    for (const [id, seen] of this.lastSeen) if (now - seen > this.ttlMs) gone.push(id);
    for (const id of gone) this.lastSeen.delete(id);
    if (gone.length > 0) this.changed(`member ${gone.join(", ")} silent for ${this.ttlMs} ms`);
  }

  private changed(why: string): void {
    this.sorted = [...this.lastSeen.keys()].sort();
    this.options.log?.info(`${this.options.group} replicas changed: ${why}`, {
      self: this.id,
      members: this.sorted,
    });
    for (const l of [...this.listeners]) l();
  }
}
