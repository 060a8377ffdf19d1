import {
  jsonCodec,
  KeyExistsError,
  listLatest,
  RevisionMismatchError,
  updateWithRetry,
  type Change,
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

/** A task record as last seen: decoded, or still as the watch delivered it. */
interface KnownTask {
  revision: number;
  record?: TaskRecord;
  raw?: Uint8Array;
}

/** A known task's record, decoded on first use. */
function recordOf(known: KnownTask): TaskRecord {
  if (known.record === undefined) {
    known.record = decode<TaskRecord>(known.raw!);
    known.raw = undefined;
  }
  return known.record;
}

/** What a {@link SchedulerStore.watch} passes on. */
export interface WatchOptions {
  /**
   * Whether the handler is told about changes of a run's tasks (default: every run). The others
   * are only remembered, undecoded: a replica pays little for the runs it neither drives nor shows.
   */
  tasksOf?: (runId: string) => boolean;
}

/**
 * Run state in the key-value store: one key per run and one per task that has left PENDING, each
 * updated by compare-and-set. Remembers the task values and revisions it has seen, so most task updates need no read.
 */
export class SchedulerStore {
  /**
   * The last value and revision seen of each task key (from our writes, reads and the watch). A
   * value the watch brought for a run nobody here looks at is kept as it came (`raw`) and decoded
   * only if it is asked for.
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
      const revision = await this.kv.create(runKey(record.id), encode(record));
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
    const outcome = await updateWithRetry<RunRecord>(
      this.kv,
      runKey(runId),
      (current) => (current ? mutate(current) : undefined),
      runCodec,
    );
    if (outcome.written && outcome.value) {
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

  /** A task's record (undefined: PENDING, never launched). */
  async getTask(runId: string, task: string): Promise<TaskRecord | undefined> {
    const entry = await this.kv.get(taskKey(runId, task));
    if (!entry) return undefined;
    const record = decode<TaskRecord>(entry.value);
    this.remember(entry.key, entry.revision, record);
    return record;
  }

  private remember(
    key: string,
    revision: number,
    record: TaskRecord | undefined,
    raw?: Uint8Array,
  ): void {
    const known = this.tasks.get(key);
    if (known && known.revision > revision) return;
    const rest = key.slice("tasks.".length);
    const dot = rest.indexOf(".");
    const runId = rest.slice(0, dot);
    const task = rest.slice(dot + 1);
    let names = this.tasksOfRun.get(runId);
    if (record || raw) {
      this.tasks.set(key, record ? { revision, record } : { revision, raw });
      if (!names) this.tasksOfRun.set(runId, (names = new Set()));
      names.add(task);
    } else {
      this.tasks.delete(key);
      names?.delete(task);
    }
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
    const current = known && recordOf(known);
    const next = mutate(current);
    if (next === undefined) {
      if (current) return { record: current, written: false };
    } else {
      try {
        const revision = known
          ? await this.kv.update(key, encode(next), known.revision)
          : await this.kv.create(key, encode(next));
        this.remember(key, revision, next);
        this.onRecordWritten?.({ kind: "task", runId, task, record: next, revision });
        return { record: next, written: true };
      } catch (err) {
        if (!(err instanceof RevisionMismatchError)) throw err;
      }
    }
    const outcome = await updateWithRetry<TaskRecord>(
      this.kv,
      key,
      mutate,
      jsonCodec<TaskRecord>(),
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
    const known = this.tasks.get(taskKey(runId, task));
    return known && recordOf(known);
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
        const known = this.tasks.get(prefix + task);
        if (known) out.set(task, recordOf(known));
      }
      return out;
    }
    const watched = this.watching;
    for await (const entry of this.kv.list(runTasksFilter(runId))) {
      const record = decode<TaskRecord>(entry.value);
      this.remember(entry.key, entry.revision, record);
      out.set(entry.key.slice(prefix.length), record);
    }
    // What changed during the listing came through the watch too (remember keeps the newer).
    if (watched && this.watching) this.listed.add(runId);
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

  /** Follows every change of run and task records made after the call, by any replica. */
  async watch(handler: (change: RecordChange) => void, options: WatchOptions = {}): Promise<Watch> {
    const tasksOf = options.tasksOf;
    const watch = await this.kv.watch(">", (change: Change) => {
      if (change.op === "reset") {
        this.tasks.clear();
        this.tasksOfRun.clear();
        this.listed.clear();
        this.runRead.clear();
        this.delivered = 0;
        handler({ kind: "reset" });
        return;
      }
      const key = change.key;
      const value = change.op === "put" ? change.value : undefined;
      this.delivered = Math.max(this.delivered, change.revision);
      if (key.startsWith("runs.")) {
        handler({
          kind: "run",
          runId: key.slice(5),
          record: value ? decodeRun(value) : undefined,
          revision: change.revision,
        });
      } else if (key.startsWith("tasks.")) {
        const rest = key.slice(6);
        const dot = rest.indexOf(".");
        const runId = rest.slice(0, dot);
        if (tasksOf && !tasksOf(runId)) {
          // Kept as it came (copied: the delivered bytes may share a larger buffer), decoded
          // only if this replica asks for it.
          this.remember(key, change.revision, undefined, value?.slice());
          return;
        }
        const record = value ? decode<TaskRecord>(value) : undefined;
        this.remember(key, change.revision, record);
        handler({
          kind: "task",
          runId,
          task: rest.slice(dot + 1),
          record,
          revision: change.revision,
        });
      } else if (key.startsWith("cache.")) {
        handler({
          kind: "cache",
          key: key.slice(6),
          entry: value ? decode<CacheEntry>(value) : undefined,
        });
      } else if (key.startsWith("images.") && value) {
        handler({ kind: "image", record: decode<ImageRecord>(value) });
      }
    });
    this.watching = true;
    return {
      stop: async () => {
        this.watching = false;
        await watch.stop();
      },
    };
  }
}
