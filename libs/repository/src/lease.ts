// Leadership of repo-sync replicas: a lease held in a key-value store (NATS KV in production),
// renewed by compare-and-set. The revision the holder last wrote is its fencing token. The commit
// the replicas serve is kept in the lease key itself and changed only by a compare-and-set on that
// revision (`publish`), so a leader that was paused (GC, SIGSTOP, a frozen VM) and lost the lease
// meanwhile cannot change what is served: the store refuses its write, whenever it wakes up.
// Writes outside the store (the remote, the working clone) are checked first (`fence`): that
// check and the write are two steps, see deploy/README.md for what a paused leader can still do.
import { RevisionMismatchError, type Entry, type KeyValueStore } from "@odin/run-store";
import { UnavailableError } from "@odin/service-kit";

/** What the lease key holds. */
export interface LeaseHolder {
  /** Unique per process (a replica that restarts is a new holder). */
  id: string;
  /** `host:port` where the holder serves gRPC, for forwarding pushes and syncs to it. */
  address: string;
}

/** What the lease key holds: the holder, and the commit served (set by the leader, carried over). */
interface LeaseValue extends LeaseHolder {
  /** The commit the replicas serve ("" before the first sync). */
  commit?: string;
  /** Given up by its holder (`close`): the next replica to look takes it at once. */
  released?: boolean;
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
  private seen:
    | { revision: number; at: number; holder: LeaseHolder | undefined; released: boolean }
    | undefined;
  /** The served commit as last written or read in the key. */
  private served = "";
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  /** Writes of the key, one at a time: a renewal racing a publish would make this replica lose its own compare-and-set. */
  private writes: Promise<unknown> = Promise.resolve();
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
    return this.seen?.released ? undefined : this.seen?.holder;
  }

  /**
   * Throws `NotLeaderError` unless this replica still holds the lease: locally unexpired, and the
   * key's revision in the store still the one it wrote. Call it right before every write outside
   * the store (a check: the write after it is not conditioned on it; see `publish`).
   */
  async fence(): Promise<void> {
    const token = this.token;
    if (token === undefined || !this.isLeader())
      throw new NotLeaderError("this repo-sync replica does not lead; the write was not made");
    const entry = await this.options.store.get(this.key);
    // A renewal may have landed meanwhile: the token it wrote counts as well.
    if (entry?.revision !== token && (this.token === undefined || entry?.revision !== this.token)) {
      this.step(false);
      throw new NotLeaderError(
        "this repo-sync replica lost its lease to another one; the write was not made",
      );
    }
  }

  /**
   * Makes `commit` the served commit, atomically fenced: written into the lease key by
   * compare-and-set on this replica's lease revision, so the store refuses it (`NotLeaderError`)
   * once another replica has taken the lease — however long this one was paused before the call
   * reached the store. Renews the lease too.
   */
  async publish(commit: string): Promise<void> {
    await this.exclusive(async () => {
      const token = this.token;
      if (token === undefined || !this.isLeader())
        throw new NotLeaderError("this repo-sync replica does not lead; the commit was not served");
      const sentAt = this.now();
      let revision: number;
      try {
        revision = await this.options.store.update(this.key, this.value(commit), token);
      } catch (err) {
        if (!(err instanceof RevisionMismatchError)) throw err;
        this.step(false);
        throw new NotLeaderError(
          "this repo-sync replica lost its lease to another one; the commit was not served",
          { cause: err },
        );
      }
      this.served = commit;
      this.hold(revision, sentAt);
    });
  }

  /**
   * The commit the leader serves, read from the store ("" when none was served yet): what a
   * follower serves. Reads the key each time, so it is never older than the leader's last publish.
   */
  async servedCommit(): Promise<string> {
    if (this.isLeader()) return this.served;
    const entry = await this.options.store.get(this.key);
    if (entry !== undefined) this.observe(entry);
    return this.served;
  }

  /** Stops renewing and gives the lease up at once, so a follower takes over without waiting. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    await this.exclusive(async () => {
      const token = this.token;
      this.step(false);
      // Marked released rather than deleted: the served commit stays in the key.
      if (token !== undefined)
        await this.options.store
          .update(this.key, this.value(this.served, true), token)
          .catch(() => undefined);
    });
  }

  /** Takes or renews the lease once (`start` does this every third of the TTL). */
  renew(): Promise<void> {
    // One at a time: a slow store must not stack renewals.
    this.ticking ??= this.exclusive(() => this.renewOrAcquire())
      .catch((err: unknown) => {
        if (!(err instanceof RevisionMismatchError)) this.options.onError?.(err);
        if (this.token !== undefined && !this.isLeader()) this.step(false);
      })
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  /** Runs `fn` after every write of the key already started (renewals, publishes, the release). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  /** What this replica writes into the key. */
  private value(commit: string, released = false): Uint8Array {
    const { id, address } = this.options.self;
    const v: LeaseValue = { id, address, commit, ...(released ? { released } : {}) };
    return encoder.encode(JSON.stringify(v));
  }

  private async renewOrAcquire(): Promise<void> {
    if (this.closed) return;
    // The lease counts from before the request: the store may have applied it late.
    const sentAt = this.now();
    if (this.token !== undefined) {
      try {
        this.hold(
          await this.options.store.update(this.key, this.value(this.served), this.token),
          sentAt,
        );
        return;
      } catch (err) {
        if (!(err instanceof RevisionMismatchError)) throw err;
        // Someone else took it (or gave it up for us): follow, and learn who leads.
        this.step(false);
      }
    }
    const entry = await this.options.store.get(this.key);
    if (entry === undefined) {
      this.hold(await this.options.store.create(this.key, this.value(this.served)), sentAt);
      return;
    }
    this.observe(entry);
    const seen = this.seen;
    if (seen !== undefined && (seen.released || this.now() - seen.at >= this.ttlMs)) {
      // Given up, or unchanged for a whole TTL (its holder is gone). Compare-and-set, so one
      // follower wins; the served commit is carried over.
      this.hold(
        await this.options.store.update(this.key, this.value(this.served), entry.revision),
        sentAt,
      );
    }
  }

  private observe(entry: Entry): void {
    if (this.seen?.revision === entry.revision) return;
    let holder: LeaseHolder | undefined;
    let released = false;
    try {
      const v = JSON.parse(decoder.decode(entry.value)) as LeaseValue;
      holder = { id: String(v.id), address: String(v.address) };
      released = v.released === true;
      if (typeof v.commit === "string" && v.commit !== "") this.served = v.commit;
    } catch {
      holder = undefined;
    }
    this.seen = { revision: entry.revision, at: this.now(), holder, released };
  }

  private hold(revision: number, sentAt: number): void {
    this.token = revision;
    this.validUntil = sentAt + this.ttlMs;
    this.seen = { revision, at: this.now(), holder: this.options.self, released: false };
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
