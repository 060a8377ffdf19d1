// Leadership of repo-sync replicas: a lease held in a key-value store (NATS KV in production),
// renewed by compare-and-set. The revision the holder last wrote is its fencing token: before each
// write to the remote or the working clone the leader checks that the key still has exactly that
// revision, so a leader that was paused (GC, SIGSTOP, a frozen VM) and lost the lease meanwhile
// cannot write after another replica took over.
import { RevisionMismatchError, type Entry, type KeyValueStore } from "@odin/run-store";
import { UnavailableError } from "@odin/service-kit";

/** What the lease key holds. */
export interface LeaseHolder {
  /** Unique per process (a replica that restarts is a new holder). */
  id: string;
  /** `host:port` where the holder serves gRPC, for forwarding pushes and syncs to it. */
  address: string;
}

/** How the lease behaves. */
export interface LeaseOptions {
  store: KeyValueStore;
  /** The key (default `repo-sync.leader`). */
  key?: string;
  self: LeaseHolder;
  /**
   * How long a lease lasts without renewal, in ms (default 6,000). The leader renews every third
   * of it; a follower takes over when the key has not changed for this long.
   */
  ttlMs?: number;
  /** Monotonic clock in ms, for tests (default `performance.now`). */
  now?: () => number;
  /** Called when this replica becomes leader or stops being one. */
  onChange?: (leading: boolean) => void;
  /** Called with errors of the background loop (the store being unreachable, usually). */
  onError?: (err: unknown) => void;
}

/** This replica does not hold the lease (any more): the write was not made. */
export class NotLeaderError extends UnavailableError {}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A lease in a key-value store, with fencing by revision. */
export class Lease {
  private readonly key: string;
  private readonly ttlMs: number;
  private readonly now: () => number;
  /** Revision this replica last wrote while leading (the fencing token), else undefined. */
  private token: number | undefined;
  /** Until when (local monotonic clock) this replica may act as leader without renewing. */
  private validUntil = 0;
  /** The last revision seen on the key while following, and when it was first seen. */
  private seen: { revision: number; at: number; holder: LeaseHolder | undefined } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: LeaseOptions) {
    this.key = options.key ?? "repo-sync.leader";
    this.ttlMs = options.ttlMs ?? 6000;
    this.now = options.now ?? (() => performance.now());
  }

  /** Tries once to take or renew the lease, then keeps doing so every third of the TTL. */
  async start(): Promise<void> {
    await this.renew();
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Whether this replica holds a lease that has not run out on its own clock. */
  isLeader(): boolean {
    return this.token !== undefined && this.now() < this.validUntil;
  }

  /** The fencing token: the lease revision this replica holds, or undefined. */
  fencingToken(): number | undefined {
    return this.isLeader() ? this.token : undefined;
  }

  /** The leader as last seen (this replica when it leads), or undefined when none is known. */
  leader(): LeaseHolder | undefined {
    if (this.isLeader()) return this.options.self;
    return this.seen?.holder;
  }

  /**
   * Throws `NotLeaderError` unless this replica still holds the lease: locally unexpired, and the
   * key's revision in the store still the one it wrote. Call it right before every write.
   */
  async fence(): Promise<void> {
    const token = this.token;
    if (token === undefined || !this.isLeader())
      throw new NotLeaderError("this repo-sync replica does not lead; the write was not made");
    const entry = await this.options.store.get(this.key);
    if (entry?.revision !== token) {
      this.step(false);
      throw new NotLeaderError(
        "this repo-sync replica lost its lease to another one; the write was not made",
      );
    }
  }

  /** Stops renewing and gives the lease up at once, so a follower takes over without waiting. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    const token = this.token;
    this.step(false);
    if (token !== undefined)
      await this.options.store.delete(this.key, token).catch(() => undefined);
  }

  /** Takes or renews the lease once (`start` does this every third of the TTL). */
  renew(): Promise<void> {
    // One at a time: a slow store must not stack renewals.
    this.ticking ??= this.renewOrAcquire()
      .catch((err: unknown) => {
        if (!(err instanceof RevisionMismatchError)) this.options.onError?.(err);
        if (this.token !== undefined && !this.isLeader()) this.step(false);
      })
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  private async renewOrAcquire(): Promise<void> {
    if (this.closed) return;
    const value = encoder.encode(JSON.stringify(this.options.self));
    // The lease counts from before the request: the store may have applied it late.
    const sentAt = this.now();
    if (this.token !== undefined) {
      try {
        this.hold(await this.options.store.update(this.key, value, this.token), sentAt);
        return;
      } catch (err) {
        if (!(err instanceof RevisionMismatchError)) throw err;
        // Someone else took it (or gave it up for us): follow, and learn who leads.
        this.step(false);
      }
    }
    const entry = await this.options.store.get(this.key);
    if (entry === undefined) {
      this.hold(await this.options.store.create(this.key, value), sentAt);
      return;
    }
    this.observe(entry);
    const seen = this.seen;
    if (seen !== undefined && this.now() - seen.at >= this.ttlMs) {
      // Unchanged for a whole TTL: its holder is gone. Compare-and-set, so one follower wins.
      this.hold(await this.options.store.update(this.key, value, entry.revision), sentAt);
    }
  }

  private observe(entry: Entry): void {
    if (this.seen?.revision === entry.revision) return;
    let holder: LeaseHolder | undefined;
    try {
      holder = JSON.parse(decoder.decode(entry.value)) as LeaseHolder;
    } catch {
      holder = undefined;
    }
    this.seen = { revision: entry.revision, at: this.now(), holder };
  }

  private hold(revision: number, sentAt: number): void {
    this.token = revision;
    this.validUntil = sentAt + this.ttlMs;
    this.seen = { revision, at: this.now(), holder: this.options.self };
    this.step(true);
  }

  private leading = false;

  private step(leading: boolean): void {
    if (!leading) this.token = undefined;
    if (leading === this.leading) return;
    this.leading = leading;
    this.options.onChange?.(leading);
  }
}
