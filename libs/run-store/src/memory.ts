import {
  KeyExistsError,
  matchesFilter,
  normalizeFilter,
  RevisionMismatchError,
  StoreClosedError,
  validateKey,
  validateRevision,
  ValueTooLargeError,
  type Change,
  type Entry,
  type KeyRevision,
  type KeyValueStore,
  type Watch,
} from "./store.js";

/** Options of the in-memory store. */
export interface MemoryKeyValueStoreOptions {
  /** The largest value accepted, in bytes (default 1 MiB, as the JetStream adapter). */
  maxValueBytes?: number;
}

/** A key's last write; `value` undefined marks a delete (kept, as JetStream keeps its marker). */
interface Slot {
  value: Uint8Array | undefined;
  revision: number;
}

interface MemoryWatch {
  pattern: string;
  handler: (change: Change) => void;
  queue: Change[];
  scheduled: boolean;
  stopped: boolean;
}

/**
 * The run store of embedded mode: the JetStream KV semantics (one revision counter for the whole
 * store, compare-and-set on a key's last revision, delete markers, watches of later changes) held
 * in this process's memory. Values are copied in and out, so callers cannot change stored bytes.
 */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly maxValueBytes: number;
  private readonly slots = new Map<string, Slot>();
  private readonly watches = new Set<MemoryWatch>();
  private revision = 0;
  private closed = false;

  constructor(options: MemoryKeyValueStoreOptions = {}) {
    this.maxValueBytes = options.maxValueBytes ?? 1024 * 1024;
  }

  get(key: string): Promise<Entry | undefined> {
    return this.run(() => {
      this.checkOpen();
      validateKey(key);
      const slot = this.slots.get(key);
      if (slot?.value === undefined) return undefined;
      return { key, value: slot.value.slice(), revision: slot.revision };
    });
  }

  create(key: string, value: Uint8Array): Promise<number> {
    return this.run(() => {
      this.checkWrite(key, value);
      if (this.slots.get(key)?.value !== undefined) throw new KeyExistsError(key);
      return this.write(key, value);
    });
  }

  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    return this.run(() => {
      this.checkWrite(key, value);
      validateRevision(expectedRevision);
      if ((this.slots.get(key)?.revision ?? 0) !== expectedRevision) {
        throw new RevisionMismatchError(key, expectedRevision);
      }
      return this.write(key, value);
    });
  }

  put(key: string, value: Uint8Array): Promise<number> {
    return this.run(() => {
      this.checkWrite(key, value);
      return this.write(key, value);
    });
  }

  delete(key: string, expectedRevision?: number): Promise<void> {
    return this.run(() => {
      this.checkOpen();
      validateKey(key);
      if (expectedRevision !== undefined) {
        validateRevision(expectedRevision);
        if ((this.slots.get(key)?.revision ?? 0) !== expectedRevision) {
          throw new RevisionMismatchError(key, expectedRevision);
        }
      }
      this.write(key, undefined);
    });
  }

  async *keys(filter: string): AsyncIterable<string> {
    for await (const entry of this.list(filter)) yield entry.key;
  }

  async *list(filter: string): AsyncIterable<Entry> {
    const pattern = normalizeFilter(filter);
    await Promise.resolve();
    this.checkOpen();
    const matched: Entry[] = [];
    for (const [key, slot] of this.slots) {
      if (slot.value !== undefined && matchesFilter(pattern, key)) {
        matched.push({ key, value: slot.value, revision: slot.revision });
      }
    }
    for (const entry of matched) yield { ...entry, value: entry.value.slice() };
  }

  watch(filter: string, handler: (change: Change) => void): Promise<Watch> {
    return this.run(() => {
      const pattern = normalizeFilter(filter);
      this.checkOpen();
      const watch: MemoryWatch = { pattern, handler, queue: [], scheduled: false, stopped: false };
      this.watches.add(watch);
      return {
        stop: () => {
          watch.stopped = true;
          this.watches.delete(watch);
          return Promise.resolve();
        },
      };
    });
  }

  watchKeys(filter: string, handler: (change: KeyRevision) => void): Promise<Watch> {
    return this.watch(filter, (change) =>
      handler(
        change.op === "reset"
          ? change
          : { op: change.op, key: change.key, revision: change.revision },
      ),
    );
  }

  close(): Promise<void> {
    this.closed = true;
    for (const watch of this.watches) watch.stopped = true;
    this.watches.clear();
    return Promise.resolve();
  }

  private write(key: string, value: Uint8Array | undefined): number {
    const revision = ++this.revision;
    const stored = value?.slice();
    // Re-inserting keeps the map in last-write order, as a JetStream listing is.
    this.slots.delete(key);
    this.slots.set(key, { value: stored, revision });
    for (const watch of this.watches) {
      if (!matchesFilter(watch.pattern, key)) continue;
      watch.queue.push(
        stored === undefined
          ? { op: "delete", key, revision }
          : { op: "put", key, value: stored.slice(), revision },
      );
      this.schedule(watch);
    }
    return revision;
  }

  /** Delivers a watch's queued changes after the writer's call returns, in order. */
  private schedule(watch: MemoryWatch): void {
    if (watch.scheduled) return;
    watch.scheduled = true;
    setImmediate(() => {
      watch.scheduled = false;
      for (let change = watch.queue.shift(); change; change = watch.queue.shift()) {
        if (watch.stopped) return;
        try {
          watch.handler(change);
        } catch (err) {
          // A throwing handler is a bug: surface it as an uncaught error, as the NATS adapter does.
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    });
  }

  private checkWrite(key: string, value: Uint8Array): void {
    this.checkOpen();
    validateKey(key);
    if (!(value instanceof Uint8Array)) throw new TypeError(`value of ${key} must be a Uint8Array`);
    if (value.byteLength > this.maxValueBytes) {
      throw new ValueTooLargeError(
        `value of ${key} is ${value.byteLength} bytes, more than the store's limit of ${this.maxValueBytes}; keep run state small and split it across keys`,
      );
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError("the run store is closed");
  }

  /** Runs a synchronous operation as a promise, so errors arrive as rejections like over NATS. */
  private run<T>(operation: () => T): Promise<T> {
    try {
      return Promise.resolve(operation());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
