/** One stored value and the revision that wrote it. */
export interface Entry {
  key: string;
  value: Uint8Array;
  /** Increases with every write to the store (any key); the compare-and-set token. */
  revision: number;
}

/**
 * A change seen by a watch: a write (`put`, `create` and `update` alike), a delete, or a `reset`:
 * the store lost every key at once (NATS came back without its storage and the bucket was made
 * again, empty). After a reset, forget what was known; every later write comes as usual, and
 * revisions start again from 1.
 */
export type Change = KeyChange | { op: "reset" };

/** A change of one key: a write or a delete. */
export type KeyChange =
  | { op: "put"; key: string; value: Uint8Array; revision: number }
  | { op: "delete"; key: string; revision: number };

/**
 * A change as {@link KeyValueStore.watchKeys} sees it: which key a write or delete touched, and
 * its revision, without the value; or a `reset`, as for `watch`.
 */
export type KeyRevision = { op: "put" | "delete"; key: string; revision: number } | { op: "reset" };

/** A running watch; stop it to leave. */
export interface Watch {
  stop(): Promise<void>;
}

/**
 * The run-state port: a key-value store with compare-and-set on revisions. Keys are dot-separated
 * tokens of `[-/_=a-zA-Z0-9]` (`run.<runId>.task.<taskName>`). A filter (for `keys`, `list` and
 * `watch`) is `""` (every key), a prefix ending in `.` (every key under it, `run.r1.task.`), or a
 * pattern where `*` stands for one token and a final `>` for one or more (`run.*`, `run.r1.>`).
 */
export interface KeyValueStore {
  /** The largest value, in bytes, this store accepts. */
  readonly maxValueBytes: number;
  /** The live value of a key, or undefined when it was never written or is deleted. */
  get(key: string): Promise<Entry | undefined>;
  /** Writes a key that has no live value; `KeyExistsError` when it has one. Returns the revision. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Compare-and-set: writes only if the key's last revision is `expectedRevision`, else `RevisionMismatchError`. */
  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number>;
  /** Writes unconditionally (last writer wins; prefer `update`). Returns the revision. */
  put(key: string, value: Uint8Array): Promise<number>;
  /** Deletes a key; with `expectedRevision`, only if nobody wrote it since (else `RevisionMismatchError`). */
  delete(key: string, expectedRevision?: number): Promise<void>;
  /** The keys with a live value matching a filter, in no particular order. */
  keys(filter: string): AsyncIterable<string>;
  /** The live entries matching a filter, in no particular order; a key written meanwhile may come twice, newer last. */
  list(filter: string): AsyncIterable<Entry>;
  /**
   * Calls `handler` for changes to keys matching `filter` made after this resolves, in revision
   * order. A key rewritten before the watch read it may show only its latest revision (the store
   * keeps one per key), never an older one after a newer. Handlers run asynchronously and must not
   * throw. For a snapshot plus changes: start the watch, then `list`, keep the higher revision per key.
   */
  watch(filter: string, handler: (change: Change) => void): Promise<Watch>;
  /**
   * As `watch`, without the values: for a follower that reads (`get`) only the values it wants,
   * so the others do not cross the wire.
   */
  watchKeys(filter: string, handler: (change: KeyRevision) => void): Promise<Watch>;
  /** Stops every watch and releases the connection; later calls fail with `StoreClosedError`. */
  close(): Promise<void>;
}

/** Someone else wrote the key since the revision given (compare-and-set lost); read again and retry. */
export class RevisionMismatchError extends Error {
  override name = "RevisionMismatchError";
  constructor(
    /** The key written. */
    readonly key: string,
    /** The revision the writer expected (0: expected no live value). */
    readonly expectedRevision: number,
    message?: string,
    options?: ErrorOptions,
  ) {
    super(
      message ??
        `${key} changed since revision ${expectedRevision}: another writer got there first; read it again and retry`,
      options,
    );
  }
}

/** `create` found a live value under the key. A kind of `RevisionMismatchError` (expected: none). */
export class KeyExistsError extends RevisionMismatchError {
  override name = "KeyExistsError";
  constructor(key: string, options?: ErrorOptions) {
    super(key, 0, `${key} already exists; read it and update it instead`, options);
  }
}

/** The store cannot be reached or did not answer in time; the operation may be retried. */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

/** The store was closed; a programming error, retrying does not help. */
export class StoreClosedError extends Error {
  override name = "StoreClosedError";
}

/** A key or filter that the store cannot hold. */
export class InvalidKeyError extends Error {
  override name = "InvalidKeyError";
}

/** A value larger than the store's `maxValueBytes`. */
export class ValueTooLargeError extends Error {
  override name = "ValueTooLargeError";
}

/** One dot-free part of a key: the characters NATS KV accepts in a key token. */
export const KEY_TOKEN = /^[-/_=a-zA-Z0-9]+$/;

/** Throws `InvalidKeyError` unless `key` is dot-separated non-empty tokens of `[-/_=a-zA-Z0-9]`. */
export function validateKey(key: string): void {
  if (typeof key !== "string" || key === "") {
    throw new InvalidKeyError("invalid key: a key must be a non-empty string");
  }
  for (const token of key.split(".")) {
    if (!KEY_TOKEN.test(token)) {
      throw new InvalidKeyError(
        `invalid key ${JSON.stringify(key)}: keys are dot-separated non-empty tokens of letters, digits and - / _ =` +
          (token === "" ? " (found an empty token)" : ` (found ${JSON.stringify(token)})`),
      );
    }
  }
}

/**
 * Turns a filter (`""`, a prefix ending in `.`, or a pattern with `*` and a final `>`) into the
 * NATS subject-style pattern it stands for; throws `InvalidKeyError` when it is not one.
 */
export function normalizeFilter(filter: string): string {
  if (filter === "") return ">";
  const pattern = filter.endsWith(".") ? `${filter}>` : filter;
  const tokens = pattern.split(".");
  tokens.forEach((token, i) => {
    if (token === "*" || (token === ">" && i === tokens.length - 1) || KEY_TOKEN.test(token))
      return;
    throw new InvalidKeyError(
      `invalid filter ${JSON.stringify(filter)}: use "" (all keys), a prefix ending in "." ` +
        `("run.r1.task."), or dot-separated tokens where "*" is one token and a final ">" the rest`,
    );
  });
  return pattern;
}

/** True when `key` matches a normalized filter pattern (`*` one token, a final `>` one or more). */
export function matchesFilter(pattern: string, key: string): boolean {
  if (pattern === key) return true;
  const p = pattern.split(".");
  const k = key.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return k.length > i;
    if (i >= k.length) return false;
    if (p[i] !== "*" && p[i] !== k[i]) return false;
  }
  return p.length === k.length;
}

/** Throws unless `revision` is a positive integer (revisions start at 1). */
export function validateRevision(revision: number, what = "expectedRevision"): void {
  if (!Number.isSafeInteger(revision) || revision < 1) {
    throw new RangeError(`${what} must be a positive integer revision, got ${revision}`);
  }
}

/**
 * Every live entry matching a filter, each key once with the newest value the listing saw: `list`
 * may bring a key written during the listing twice (newer last).
 */
export async function listLatest(kv: KeyValueStore, filter: string): Promise<Entry[]> {
  const latest = new Map<string, Entry>();
  for await (const entry of kv.list(filter)) {
    const seen = latest.get(entry.key);
    if (!seen || seen.revision < entry.revision) latest.set(entry.key, entry);
  }
  return [...latest.values()];
}
