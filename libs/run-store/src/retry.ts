import type { Codec } from "./codec.js";
import { RevisionMismatchError, type KeyValueStore } from "./store.js";

/** Bounds of the compare-and-set retry loop. */
export interface UpdateWithRetryOptions {
  /** Attempts before giving up with `RevisionMismatchError` (default 25). */
  maxAttempts?: number;
  /** First backoff ceiling in ms; doubles per attempt (default 2). */
  baseDelayMs?: number;
  /** Largest backoff ceiling in ms (default 200). Each delay is uniformly random below its ceiling. */
  maxDelayMs?: number;
}

/** What `updateWithRetry` left in the store. */
export interface UpdateOutcome<T> {
  /** The value now stored (undefined when the key has none). */
  value: T | undefined;
  /** Its revision (0 when the key has no value). */
  revision: number;
  /** True when this call wrote; false when `mutate` returned undefined (nothing to change). */
  written: boolean;
  /** Compare-and-set attempts used (1 when nobody else wrote meanwhile). */
  attempts: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Read-modify-write with compare-and-set: reads `key`, asks `mutate` for the new value (undefined:
 * leave it as it is) and writes it only if nobody wrote in between; otherwise reads again and
 * retries after a jittered backoff. `mutate` may run several times and gets a fresh copy each time,
 * so it must only compute. Concurrent callers on any number of replicas never lose an update.
 */
export async function updateWithRetry<T>(
  store: KeyValueStore,
  key: string,
  mutate: (current: T | undefined) => T | undefined,
  codec: Codec<T>,
  options: UpdateWithRetryOptions = {},
): Promise<UpdateOutcome<T>> {
  const maxAttempts = options.maxAttempts ?? 25;
  const baseDelayMs = options.baseDelayMs ?? 2;
  const maxDelayMs = options.maxDelayMs ?? 200;
  let lastConflict: RevisionMismatchError | undefined;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const entry = await store.get(key);
    const current = entry === undefined ? undefined : codec.decode(entry.value);
    const next = mutate(current);
    if (next === undefined) {
      return { value: current, revision: entry?.revision ?? 0, written: false, attempts: attempt };
    }
    const bytes = codec.encode(next);
    try {
      const revision =
        entry === undefined
          ? await store.create(key, bytes)
          : await store.update(key, bytes, entry.revision);
      return { value: next, revision, written: true, attempts: attempt };
    } catch (err) {
      if (!(err instanceof RevisionMismatchError)) throw err;
      lastConflict = err;
    }
    if (attempt < maxAttempts) {
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      await sleep(Math.random() * ceiling);
    }
  }
  throw new RevisionMismatchError(
    key,
    lastConflict?.expectedRevision ?? 0,
    `${key}: gave up after ${maxAttempts} compare-and-set attempts, other writers kept changing it; ` +
      `retry later or raise maxAttempts`,
    { cause: lastConflict },
  );
}
