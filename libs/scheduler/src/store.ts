import {
  jsonCodec,
  KeyExistsError,
  listLatest,
  RevisionMismatchError,
  updateWithRetry,
  type Entry,
  type KeyRevision,
  type KeyValueStore,
  type Watch,
} from "@odin/run-store";
import {
  requestKey,
  runKey,
  runTasksFilter,
  taskKey,
  withHistory,
  type RunRecord,
  type TaskRecord,
} from "./records.js";
import { upgradeRunLabels } from "./run-labels.js";
import { cacheEntryKey, imageKey, type CacheEntry, type ImageRecord } from "./cache.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const encode = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v));
const decode = <T>(b: Uint8Array): T => JSON.parse(decoder.decode(b)) as T;
/** A run record, with the labels of runs older versions started written as they are now. */
const decodeRun = (b: Uint8Array): RunRecord => upgradeRunLabels(decode<RunRecord>(b));
const runCodec = jsonCodec<RunRecord>((v) => upgradeRunLabels(v as RunRecord));

/** A change of a run or task record, as every scheduler replica sees it through its watch. */
export type RecordChange =
  | { kind: "run"; runId: string; record: RunRecord | undefined; revision: number }
  | { kind: "task"; runId: string; task: string; record: TaskRecord | undefined; revision: number }
  /** A cache entry written (`entry`) or removed. */
  | { kind: "cache"; key: string; entry: CacheEntry | undefined }
  /** The digest an image last ran as. */
  | { kind: "image"; record: ImageRecord }
  /** The store lost every record at once (NATS lost its storage); what follows is the new store. */
  | { kind: "reset" };

/**
 * A task record as last seen. Without `record`, a mark: the task was written at `revision`, but
 * the value was not read (its run was of no interest here).
 */
interface KnownTask {
  revision: number;
  record?: TaskRecord;
  /** The newest revision the watch's handler was told of. */
  told?: number;
}

/** A change the watch heard, waiting for its turn: with the read of its value, when it needs one. */
interface Heard {
  change: Exclude<KeyRevision, { op: "reset" }>;
  /** The value read from the store (undefined: the key is gone); unset when none is needed. */
  value?: Promise<Entry | undefined>;
}

/** What a {@link SchedulerStore.watch} passes on. */
export interface WatchOptions {
  /**
   * Whether the handler is told about changes of a run's tasks (default: every run). The others
   * are only remembered, undecoded: a replica pays little for the runs it neither drives nor shows.
   */
  tasksOf?: (runId: string) => boolean;
}

/** How long to wait before reading a value again after `tries` failures: 0.25 s, doubling up to 4 s. */
const rereadMs = (tries: number): number => Math.min(4_000, 250 * 2 ** Math.min(tries, 4));

/**
 * Run state in the key-value store: one key per run and one per task that has left PENDING, each
 * updated by compare-and-set. Remembers the task values and revisions it has seen, so most task updates need no read.
 *
 * Its watch follows every key's revisions but not their values (a headers-only consumer): a value
 * crosses the wire only when this store reads it — the run records, cache entries and images every
 * replica keeps, and the tasks of the runs this replica looks at (`tasksOf`) that another wrote.
 * The tasks this replica writes itself, most of those of the runs it drives, need no read at all.
 */
export class SchedulerStore {
  /**
   * The last value and revision seen of each task key (from our writes, reads and the watch's
   * reads); for runs nobody here looks at, only marks that a value newer than the one read exists.
   */
  private readonly tasks = new Map<string, KnownTask>();
  /** The names of each run's tasks in `tasks`. */
  private readonly tasksOfRun = new Map<string, Set<string>>();
  /**
   * Runs whose every task record is in `tasks`: listed once while the watch ran, which keeps them
   * current since. Their listings (opening an ended 10,000-task run) read nothing from the store.
   */
  private readonly listed = new Set<string>();
  private watching = false;
  /** The newest store revision the watch has delivered. */
  private delivered = 0;
  /** The revision of each run record as last read, so a listing from memory is no older. */
  private readonly runRead = new Map<string, number>();
  /** Run records this store wrote, until the watch hears of them (their values need no read). */
  private readonly runsWritten = new Map<string, { revision: number; record: RunRecord }>();
  /** The newest revision of each run record the watch's handler was told of. */
  private readonly runTold = new Map<string, number>();
  /** Writes of this store in flight, by key: the watch may hear of one before its reply. */
  private readonly writing = new Map<string, Promise<unknown>>();
  /** Runs whose tasks are being listed from the store (how many listings). */
  private readonly listing = new Map<string, number>();
  /** What the watch heard and has not told yet, in revision order, from `heardHead`. */
  private heard: (Heard | undefined)[] = [];
  private heardHead = 0;
  private draining = false;
  /** Bumped when the watch stops or the store resets: reads still in flight are dropped. */
  private generation = 0;
  /** Who the watch tells, and of which runs' tasks. */
  private follower:
    { handler: (change: RecordChange) => void; tasksOf: (runId: string) => boolean } | undefined;

  constructor(
    readonly kv: KeyValueStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** A run's record. */
  async getRun(runId: string): Promise<RunRecord | undefined> {
    const entry = await this.kv.get(runKey(runId));
    if (!entry) return undefined;
    this.runRead.set(runId, entry.revision);
    return decodeRun(entry.value);
  }

  /**
   * Called with every run record this store writes, at once (the watch brings it a moment later):
   * so a caller's own submit or cancel shows in the next listing.
   */
  onRunWritten: ((record: RunRecord, revision: number) => void) | undefined;

  /** Called with every run and task record this store writes, once written (by this process only). */
  onRecordWritten: ((change: Extract<RecordChange, { kind: "run" | "task" }>) => void) | undefined;

  /** Creates a run's record; false when one exists already. */
  async createRun(record: RunRecord): Promise<boolean> {
    try {
      const key = runKey(record.id);
      const revision = await this.writingTo(key, this.kv.create(key, encode(record)));
      this.wroteRun(record, revision);
      this.onRunWritten?.(record, revision);
      this.onRecordWritten?.({ kind: "run", runId: record.id, record, revision });
      return true;
    } catch (err) {
      if (err instanceof KeyExistsError) return false;
      throw err;
    }
  }

  /** Read-modify-write of a run's record; `mutate` returns undefined to leave it as is. */
  async updateRun(
    runId: string,
    mutate: (r: RunRecord) => RunRecord | undefined,
  ): Promise<RunRecord | undefined> {
    const key = runKey(runId);
    const outcome = await this.writingTo(
      key,
      updateWithRetry<RunRecord>(
        this.kv,
        key,
        (current) => (current ? mutate(current) : undefined),
        runCodec,
      ),
    );
    if (outcome.written && outcome.value) {
      this.wroteRun(outcome.value, outcome.revision);
      this.onRunWritten?.(outcome.value, outcome.revision);
      this.onRecordWritten?.({
        kind: "run",
        runId,
        record: outcome.value,
        revision: outcome.revision,
      });
    }
    return outcome.value;
  }

  /** Keeps a run record this store wrote until the watch hears of it. */
  private wroteRun(record: RunRecord, revision: number): void {
    if (!this.watching || (this.runTold.get(record.id) ?? 0) >= revision) return;
    const known = this.runsWritten.get(record.id);
    if (!known || known.revision < revision) this.runsWritten.set(record.id, { revision, record });
  }

  /** A task's record (undefined: PENDING, never launched). */
  async getTask(runId: string, task: string): Promise<TaskRecord | undefined> {
    const entry = await this.kv.get(taskKey(runId, task));
    if (!entry) return undefined;
    const record = decode<TaskRecord>(entry.value);
    this.remember(entry.key, entry.revision, record);
    return record;
  }

  /**
   * Keeps a task's record (undefined: deleted) if it is newer than the one known; `told` carries
   * over. `mark`: the task was written at `revision`, value unread.
   */
  private remember(
    key: string,
    revision: number,
    record: TaskRecord | undefined,
    mark = false,
  ): void {
    const known = this.tasks.get(key);
    if (known && (known.revision > revision || (known.revision === revision && mark))) return;
    const runId = runIdOfTaskKey(key);
    const task = key.slice(7 + runId.length);
    let names = this.tasksOfRun.get(runId);
    if (record || mark) {
      const next: KnownTask = record ? { revision, record } : { revision };
      if (known?.told !== undefined) next.told = known.told;
      this.tasks.set(key, next);
      if (!names) this.tasksOfRun.set(runId, (names = new Set()));
      names.add(task);
    } else {
      this.tasks.delete(key);
      names?.delete(task);
    }
  }

  /** Notes a write of this store in flight until it settles. */
  private writingTo<T>(key: string, write: Promise<T>): Promise<T> {
    if (!this.watching) return write;
    this.writing.set(key, write);
    const settled = (): void => {
      if (this.writing.get(key) === write) this.writing.delete(key);
    };
    write.then(settled, settled);
    return write;
  }

  /**
   * Compare-and-set of a task's record: `mutate` sees the current record (undefined when the task
   * has none) and returns the new one, or undefined to leave it. Returns what is stored afterwards
   * and whether this call wrote it. Tries the remembered revision first and reads only on conflict.
   */
  async updateTask(
    runId: string,
    task: string,
    change: (current: TaskRecord | undefined) => TaskRecord | undefined,
  ): Promise<{ record: TaskRecord | undefined; written: boolean }> {
    // Every write keeps the task's state history.
    const mutate = (current: TaskRecord | undefined): TaskRecord | undefined => {
      const next = change(current);
      return next && withHistory(current, next, this.now());
    };
    const key = taskKey(runId, task);
    const known = this.tasks.get(key);
    // Fast path: the value and revision we last saw are current unless someone else wrote since.
    const current = known?.record;
    const next = known && !current ? undefined : mutate(current);
    if (next === undefined) {
      if (current) return { record: current, written: false };
    } else {
      try {
        const revision = await this.writingTo(
          key,
          known
            ? this.kv.update(key, encode(next), known.revision)
            : this.kv.create(key, encode(next)),
        );
        this.remember(key, revision, next);
        this.onRecordWritten?.({ kind: "task", runId, task, record: next, revision });
        return { record: next, written: true };
      } catch (err) {
        if (!(err instanceof RevisionMismatchError)) throw err;
      }
    }
    const outcome = await this.writingTo(
      key,
      updateWithRetry<TaskRecord>(this.kv, key, mutate, jsonCodec<TaskRecord>()),
    );
    this.remember(key, outcome.revision, outcome.value);
    if (outcome.written)
      this.onRecordWritten?.({
        kind: "task",
        runId,
        task,
        record: outcome.value,
        revision: outcome.revision,
      });
    return { record: outcome.value, written: outcome.written };
  }

  /** The last known record of a task, without a read (may lag another replica's write). */
  cachedTask(runId: string, task: string): TaskRecord | undefined {
    return this.tasks.get(taskKey(runId, task))?.record;
  }

  /** Every task record of a run, by task name. */
  async listTasks(runId: string): Promise<Map<string, TaskRecord>> {
    const out = new Map<string, TaskRecord>();
    const prefix = `tasks.${runId}.`;
    // From memory once the watch has brought every change up to the run record last read: a
    // run's tasks are written before the run that ends it.
    if (
      this.watching &&
      this.listed.has(runId) &&
      this.delivered >= (this.runRead.get(runId) ?? 0)
    ) {
      for (const task of this.tasksOfRun.get(runId) ?? []) {
        const record = this.tasks.get(prefix + task)?.record;
        if (record) out.set(task, record);
        else break; // a mark: a newer value was not read
      }
      if (out.size === (this.tasksOfRun.get(runId)?.size ?? 0)) return out;
      out.clear();
    }
    const watched = this.watching;
    const generation = this.generation;
    this.listing.set(runId, (this.listing.get(runId) ?? 0) + 1);
    try {
      for await (const entry of this.kv.list(runTasksFilter(runId))) {
        const record = decode<TaskRecord>(entry.value);
        this.remember(entry.key, entry.revision, record);
        out.set(entry.key.slice(prefix.length), record);
      }
    } finally {
      const n = (this.listing.get(runId) ?? 1) - 1;
      if (n > 0) this.listing.set(runId, n);
      else this.listing.delete(runId);
    }
    // What changed during the listing the watch heard too: a task it did not read is marked,
    // and a mark is never taken for a value (remember keeps the newer).
    if (watched && this.watching && generation === this.generation) this.listed.add(runId);
    return out;
  }

  /** Every run record, with the store revision it was read at. */
  async listRuns(): Promise<{ record: RunRecord; revision: number }[]> {
    const out: { record: RunRecord; revision: number }[] = [];
    // A run written during the listing may come twice: each once, at its newest.
    for (const entry of await listLatest(this.kv, "runs.>"))
      out.push({ record: decodeRun(entry.value), revision: entry.revision });
    return out;
  }

  /** The run a SubmitRun request id created, if any. */
  async runOfRequest(requestId: string): Promise<string | undefined> {
    const entry = await this.kv.get(requestKey(requestId));
    return entry ? decoder.decode(entry.value) : undefined;
  }

  /** Records that a request id created a run; returns the run id already recorded if there is one. */
  async claimRequest(requestId: string, runId: string): Promise<string> {
    try {
      await this.kv.create(requestKey(requestId), encoder.encode(runId));
      return runId;
    } catch (err) {
      if (err instanceof KeyExistsError) return (await this.runOfRequest(requestId)) ?? runId;
      throw err;
    }
  }

  /** Removes a run's records (its run key and every task key). */
  async deleteRun(runId: string): Promise<void> {
    const keys: string[] = [];
    for await (const key of this.kv.keys(runTasksFilter(runId))) keys.push(key);
    this.listed.delete(runId);
    for (const key of keys) {
      await this.kv.delete(key);
      this.remember(key, Number.MAX_SAFE_INTEGER, undefined);
    }
    await this.kv.delete(runKey(runId));
  }

  /** Every cache entry. */
  async *cacheEntries(): AsyncIterable<CacheEntry> {
    for (const entry of await listLatest(this.kv, "cache.>")) yield decode<CacheEntry>(entry.value);
  }

  /** One cache entry. */
  async getCacheEntry(key: string): Promise<CacheEntry | undefined> {
    const entry = await this.kv.get(cacheEntryKey(key));
    return entry ? decode<CacheEntry>(entry.value) : undefined;
  }

  /**
   * Records a cache entry by compare-and-set: `mutate` sees what is stored under its key (undefined
   * when nothing) and returns what to store, or undefined to leave it.
   */
  async updateCacheEntry(
    key: string,
    mutate: (current: CacheEntry | undefined) => CacheEntry | undefined,
  ): Promise<void> {
    await updateWithRetry<CacheEntry>(this.kv, cacheEntryKey(key), mutate, jsonCodec<CacheEntry>());
  }

  /** Forgets a cache entry (nothing when it is gone). */
  async deleteCacheEntry(key: string): Promise<void> {
    await this.kv.delete(cacheEntryKey(key));
  }

  /** Every image digest known. */
  async images(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const entry of await listLatest(this.kv, "images.>"))
      out.push(decode<ImageRecord>(entry.value));
    return out;
  }

  /** Remembers the digest an image ran as. */
  async putImage(record: ImageRecord): Promise<void> {
    await this.kv.put(imageKey(record.image), encode(record));
  }

  /**
   * Follows every change of run and task records made after the call, by any replica, in revision
   * order. A value this store neither wrote nor read is read from the store first (the watch
   * carries none); the changes after it wait for it, and those reads run side by side.
   */
  async watch(handler: (change: RecordChange) => void, options: WatchOptions = {}): Promise<Watch> {
    this.follower = { handler, tasksOf: options.tasksOf ?? (() => true) };
    const watch = await this.kv.watchKeys(">", (change) => {
      if (change.op === "reset") {
        this.dropHeard();
        this.tasks.clear();
        this.tasksOfRun.clear();
        this.listed.clear();
        this.runRead.clear();
        this.runsWritten.clear();
        this.runTold.clear();
        this.delivered = 0;
        this.tell({ kind: "reset" });
        return;
      }
      const heard: Heard = { change };
      const value = this.needsValue(change);
      if (value) heard.value = this.valueOf(change.key, change.revision, this.generation);
      if (this.heardHead === this.heard.length && !value) this.tellHeard(heard, undefined);
      else {
        this.heard.push(heard);
        void this.drain();
      }
    });
    this.watching = true;
    return {
      stop: async () => {
        this.watching = false;
        this.follower = undefined;
        this.dropHeard();
        await watch.stop();
      },
    };
  }

  /** Forgets what the watch heard and has not told; reads still in flight are dropped. */
  private dropHeard(): void {
    this.generation++;
    this.heard = [];
    this.heardHead = 0;
  }

  /** Hands a change to the watch's handler; a throwing handler is a bug, so it is made loud. */
  private tell(change: RecordChange): void {
    try {
      this.follower?.handler(change);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  /** Whether the watch's handler hears of the changes of a run's tasks. */
  private follows(runId: string): boolean {
    return this.follower?.tasksOf(runId) ?? false;
  }

  /** Whether a change's value must be read before it can be told (no: known, or not wanted). */
  private needsValue(change: Heard["change"]): boolean {
    if (change.op === "delete") return false;
    const key = change.key;
    if (key.startsWith("runs.")) {
      const runId = key.slice(5);
      return (
        (this.runsWritten.get(runId)?.revision ?? 0) < change.revision &&
        (this.runTold.get(runId) ?? 0) < change.revision
      );
    }
    if (key.startsWith("tasks.")) {
      if (!this.follows(runIdOfTaskKey(key))) return false;
      const known = this.tasks.get(key);
      return (
        !(known && (known.told ?? 0) >= change.revision) &&
        !(known?.record && known.revision >= change.revision)
      );
    }
    return key.startsWith("cache.") || key.startsWith("images.");
  }

  /**
   * A key's value at `revision` or newer: from this store's memory once its own write in flight
   * settled, else read (again while the store cannot be reached). Undefined: the key is gone.
   */
  private async valueOf(
    key: string,
    revision: number,
    generation: number,
  ): Promise<Entry | undefined> {
    await this.writing.get(key)?.catch(() => undefined);
    for (let tries = 0; ; tries++) {
      if (generation !== this.generation) return undefined;
      const known = key.startsWith("tasks.") ? this.tasks.get(key) : undefined;
      if (known?.record && known.revision >= revision) return undefined;
      const written = key.startsWith("runs.") ? this.runsWritten.get(key.slice(5)) : undefined;
      if (written && written.revision >= revision) return undefined;
      try {
        return await this.kv.get(key);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, rereadMs(tries)).unref());
      }
    }
  }

  /** Tells what the watch heard, in order, each once the value it waits for is read. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      const generation = this.generation;
      while (this.heardHead < this.heard.length && generation === this.generation) {
        const heard = this.heard[this.heardHead]!;
        const { change } = heard;
        let entry = heard.value ? await heard.value : undefined;
        // A run looked at only since the change was heard: its task's value is read now.
        if (!heard.value && this.needsValue(change))
          entry = await this.valueOf(change.key, change.revision, generation);
        if (generation !== this.generation) return;
        this.heard[this.heardHead++] = undefined;
        this.tellHeard(heard, entry);
      }
      this.heard = [];
      this.heardHead = 0;
    } finally {
      this.draining = false;
    }
    if (this.heardHead < this.heard.length) void this.drain();
  }

  /** Tells one change heard (with the value read for it, if any); what it knew stays known. */
  private tellHeard({ change }: Heard, entry: Entry | undefined): void {
    const { key, revision } = change;
    this.delivered = Math.max(this.delivered, revision);
    if (key.startsWith("runs.")) {
      const runId = key.slice(5);
      if (change.op === "delete") {
        this.runsWritten.delete(runId);
        this.runTold.delete(runId);
        this.tell({ kind: "run", runId, record: undefined, revision });
        return;
      }
      const written = this.runsWritten.get(runId);
      let record: RunRecord;
      let at: number;
      if (written && written.revision >= revision) {
        record = written.record;
        at = written.revision;
        this.runsWritten.delete(runId);
      } else if (entry && entry.revision >= revision) {
        record = decodeRun(entry.value);
        at = entry.revision;
      } else return; // told already, or gone since (its delete comes next)
      if ((this.runTold.get(runId) ?? 0) >= at) return;
      this.runTold.set(runId, at);
      this.tell({ kind: "run", runId, record, revision: at });
    } else if (key.startsWith("tasks.")) {
      const runId = runIdOfTaskKey(key);
      const task = key.slice(7 + runId.length);
      if (change.op === "delete") {
        this.remember(key, revision, undefined);
        if (this.follows(runId))
          this.tell({ kind: "task", runId, task, record: undefined, revision });
        return;
      }
      if (entry) this.remember(key, entry.revision, decode<TaskRecord>(entry.value));
      const known = this.tasks.get(key);
      if (!this.follows(runId)) {
        // Not read: an older value known of this task, or a listing of its run under way (which
        // may read the older one), is marked stale.
        if (known ? known.revision < revision : this.listing.has(runId)) {
          this.remember(key, revision, undefined, true);
          this.listed.delete(runId);
        }
        return;
      }
      if (!known?.record || known.revision < revision || (known.told ?? 0) >= known.revision)
        return;
      known.told = known.revision;
      this.tell({ kind: "task", runId, task, record: known.record, revision: known.revision });
    } else if (key.startsWith("cache.")) {
      if (change.op === "delete") this.tell({ kind: "cache", key: key.slice(6), entry: undefined });
      else if (entry)
        this.tell({ kind: "cache", key: key.slice(6), entry: decode<CacheEntry>(entry.value) });
    } else if (key.startsWith("images.") && entry) {
      this.tell({ kind: "image", record: decode<ImageRecord>(entry.value) });
    }
  }
}

/** The run id in a task key (`tasks.<run>.<task>`). */
function runIdOfTaskKey(key: string): string {
  return key.slice(6, key.indexOf(".", 6));
}
