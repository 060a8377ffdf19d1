// The real timers behind the attempt cores' `wakeAt()`: one per attempt, re-armed after every
// step, calling back with the time so the shell can feed `tick(now)` to the core.

/** One timer per key, set to an absolute time (ms since the epoch). */
export class Alarms {
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly ring: (key: string, now: number) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Rings `key` at `at`; undefined clears it. Re-setting the same time keeps the running timer. */
  set(key: string, at: number | undefined): void {
    const current = this.timers.get(key);
    if (current?.at === at) return;
    if (current) clearTimeout(current.timer);
    this.timers.delete(key);
    if (at === undefined) return;
    // Node's timers take at most 2^31-1 ms; a later alarm re-arms when that one rings.
    const delay = Math.min(Math.max(0, at - this.clock()), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.ring(key, this.clock());
    }, delay);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Stops every timer. */
  clear(): void {
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
