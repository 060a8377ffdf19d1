// One timer for the whole simulator: a min-heap of due tasks behind a single setTimeout, so
// thousands of pods cost heap entries, not timers, and close() cancels everything at once.

interface Task {
  at: number;
  seq: number;
  run: () => void;
}

/** Runs callbacks at given delays from one armed timer; `stop()` drops everything pending. */
export class Scheduler {
  private readonly heap: Task[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private stopped = false;

  /** Runs `run` after `delayMs` (tasks due at the same time run in insertion order). */
  after(delayMs: number, run: () => void): void {
    if (this.stopped) return;
    const task = { at: Date.now() + Math.max(0, delayMs), seq: this.seq++, run };
    this.push(task);
    this.arm();
  }

  /** Number of tasks not yet run. */
  get pending(): number {
    return this.heap.length;
  }

  /** Cancels every pending task; later `after` calls are ignored. */
  stop(): void {
    this.stopped = true;
    this.heap.length = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    const head = this.heap[0];
    if (head === undefined || head.at >= this.armedAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = head.at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, head.at - Date.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = Date.now();
    // Bound one batch so a task that schedules at delay 0 cannot starve the event loop.
    let budget = 10_000;
    while (budget-- > 0 && !this.stopped) {
      const head = this.heap[0];
      if (head === undefined || head.at > now) break;
      this.pop();
      try {
        head.run();
      } catch (error) {
        // A simulated controller bug must not take the server down; surface it and carry on.
        process.emitWarning(`kube-sim: scheduled task failed: ${String(error)}`);
      }
    }
    if (!this.stopped) this.arm();
  }

  private less(a: Task, b: Task): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(task: Task): void {
    const heap = this.heap;
    heap.push(task);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Task;
      if (!this.less(task, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = task;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && this.less(heap[r] as Task, heap[l] as Task) ? r : l;
      const c = heap[child] as Task;
      if (!this.less(c, last)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
  }
}
