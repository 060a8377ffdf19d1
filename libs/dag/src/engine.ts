import {
  taskStates,
  TaskGraph,
  type Pipeline,
  type RunState,
  type Task,
  type TaskState,
} from "@odin/pipeline-spec";

/** What the run store records about a task, as far as decisions depend on it. */
export interface TaskStatus {
  state: TaskState;
  /** The current (or last) attempt; 0 before the first launch. */
  attempt: number;
  /** When the current attempt was launched (ms since the epoch). */
  launchTime?: number;
  /** RETRYING: when the next attempt is due (ms since the epoch). */
  nextAttemptTime?: number;
  /** The first attempt of the current round (1, or the first after a run retry); retries count from it. */
  firstAttempt?: number;
  /** SUCCEEDED and its outputs asked to end the run early ({@link requestsEarlyExit}). */
  earlyExit?: boolean;
}

/**
 * Whether a task's reported outputs ask to end its run early and successfully:
 * `{"odin": {"early_exit": true}}`, or the original Odin's `{"request_early_exit": true}`.
 */
export function requestsEarlyExit(outputs: unknown): boolean {
  if (typeof outputs !== "object" || outputs === null) return false;
  const o = outputs as { odin?: unknown; request_early_exit?: unknown };
  if (o.request_early_exit === true) return true;
  return (
    typeof o.odin === "object" &&
    o.odin !== null &&
    (o.odin as { early_exit?: unknown }).early_exit === true
  );
}

/** Something the scheduler must do (and record) because of a decision. */
export type Decision =
  /** Record LAUNCHING with this attempt and launch it (idempotently). */
  | { kind: "launch"; task: string; attempt: number }
  /** Record RETRYING: `attempt` failed; the next one is due at `at`. */
  | { kind: "retry"; task: string; attempt: number; at: number }
  /**
   * Record SKIPPED: the task will not run. `earlyExit`: because the run ends early, so a task
   * waiting to retry is SKIPPED too (otherwise it keeps the FAILED of its last attempt).
   */
  | { kind: "skip"; task: string; reason: string; earlyExit?: boolean }
  /** Stop the attempt and record FAILED with reason DeadlineExceeded. */
  | { kind: "timeout"; task: string; attempt: number }
  /** Stop the attempt and record CANCELLED. */
  | { kind: "cancel"; task: string; attempt: number }
  /** Record CANCELLED for a task that never started (or waits for a retry). */
  | { kind: "cancelled"; task: string }
  /** Record the run's final state. */
  | {
      kind: "finish";
      state: "SUCCEEDED" | "FAILED" | "CANCELLED";
      reason: string;
      /** SUCCEEDED because this task asked to end the run early. */
      earlyExitBy?: string;
    };

// The engine keeps states as their index in pipeline-spec's one table.
const codes: readonly TaskState[] = taskStates;
const PENDING = 0;
const LAUNCHING = 1;
const RUNNING = 2;
const SUCCEEDED = 3;
const FAILED = 4;
const ERROR = 5;
const SKIPPED = 6;
const CANCELLED = 7;
const RETRYING = 8;
const code = new Map(codes.map((s, i) => [s, i]));

const isActive = (s: number): boolean => s === LAUNCHING || s === RUNNING;
const isTerminal = (s: number): boolean => s >= SUCCEEDED && s <= CANCELLED;

/** Longest wait between attempts, however many retries. */
export const maxRetryBackoffMs = 10 * 60_000;

/** Wait before the attempt after `failedAttempt`: `retry_backoff`, doubled per attempt, capped. */
export function retryDelay(task: Pick<Task, "retryBackoffMs">, failedAttempt: number): number {
  return Math.min(maxRetryBackoffMs, task.retryBackoffMs * 2 ** Math.max(0, failedAttempt - 1));
}

interface Timer {
  at: number;
  task: number;
  attempt: number;
  kind: "retry" | "timeout";
}

/** A binary min-heap of timers by due time. */
class Timers {
  private readonly heap: Timer[] = [];
  get size(): number {
    return this.heap.length;
  }
  peek(): Timer | undefined {
    return this.heap[0];
  }
  push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  pop(): Timer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.at < h[m]!.at) m = l;
        if (r < h.length && h[r]!.at < h[m]!.at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.heap.length = 0;
  }
}

/**
 * The decisions of one run, without I/O: feed it what the store records (`observe`) and the clock
 * (`next`), and it says what to launch, retry, skip, time out, cancel and when the run is over.
 * Tasks start as soon as their own dependencies have succeeded (no layer barriers), within the
 * pipeline's `parallelism` and the slots the scheduler grants. Work per change is proportional to
 * the changed task's dependents, so a 100,000-task run costs the same per task as a small one.
 *
 * The engine applies its own decisions to its view at once (a launched task is LAUNCHING) and is
 * told each recorded change once (the scheduler does not feed it the store's echo of its own
 * writes). Updates for an older attempt than the one the engine knows are ignored, so redelivered
 * or late events are harmless.
 */
export class RunEngine {
  readonly graph: TaskGraph;
  private readonly tasks: readonly Task[];
  private readonly state: Uint8Array;
  private readonly attempt: Uint32Array;
  private readonly first: Uint32Array;
  private readonly launchTime: Float64Array;
  /** When each task became ready to launch (ms since the epoch; 0: not known, e.g. after a restore). */
  private readonly readyTime: Float64Array;
  /** The ready time of tasks found ready when the engine is built or restored (0: not known). */
  private readySinceDefault = 0;
  private readonly remaining: Int32Array;
  private readonly queued: Uint8Array;
  private ready: number[] = [];
  private readyHead = 0;
  private readonly timers = new Timers();
  private active = 0;
  private unfinished: number;
  private anyFailed = false;
  private failing = false;
  /** The task whose outputs ended the run early, or -1. */
  private earlyExit = -1;
  private cancelRequested = false;
  private finished: RunState | undefined;

  constructor(
    private readonly pipeline: Pipeline,
    graph?: TaskGraph,
  ) {
    this.graph = graph ?? TaskGraph.build(pipeline.tasks);
    this.tasks = pipeline.tasks;
    const n = this.tasks.length;
    this.state = new Uint8Array(n);
    this.attempt = new Uint32Array(n);
    this.first = new Uint32Array(n).fill(1);
    this.launchTime = new Float64Array(n);
    this.readyTime = new Float64Array(n);
    this.remaining = new Int32Array(n);
    this.queued = new Uint8Array(n);
    this.unfinished = n;
    for (let i = 0; i < n; i++) this.remaining[i] = this.graph.dependencies[i]!.length;
    for (const i of this.graph.topologicalOrder()) if (this.remaining[i] === 0) this.enqueue(i);
  }

  /**
   * Rebuilds a run's engine from recorded task statuses (after a restart or a takeover).
   * Decisions still owed are returned by the first `next()`; LAUNCHING tasks are returned by
   * `relaunches()` because their launch may not have happened (launching is idempotent).
   */
  static restore(
    pipeline: Pipeline,
    statuses: (task: string) => TaskStatus | undefined,
    run: {
      cancelRequested?: boolean;
      /** When the tasks found ready became ready (the run was submitted or retried); unset: unknown. */
      readySince?: number;
    } = {},
    graph?: TaskGraph,
  ): RunEngine {
    const engine = new RunEngine(pipeline, graph);
    engine.readySinceDefault = run.readySince ?? 0;
    engine.load(statuses, run.cancelRequested === true);
    return engine;
  }

  /** The run's state as far as the engine can tell. */
  get runState(): RunState {
    if (this.finished) return this.finished;
    return this.active > 0 || this.unfinished < this.tasks.length || this.attempt.some((a) => a > 0)
      ? "RUNNING"
      : "PENDING";
  }

  /** The engine's view of one task. */
  status(task: string): TaskStatus {
    const i = this.index(task);
    const status: TaskStatus = { state: codes[this.state[i]!]!, attempt: this.attempt[i]! };
    if (this.launchTime[i]) status.launchTime = this.launchTime[i];
    if (this.first[i] !== 1) status.firstAttempt = this.first[i];
    return status;
  }

  /** How many tasks are in each state. */
  counts(): Record<TaskState, number> {
    const out = Object.fromEntries(codes.map((s) => [s, 0])) as Record<TaskState, number>;
    for (const s of this.state) out[codes[s]!]++;
    return out;
  }

  /**
   * When a task became ready to launch — its run submitted or retried, its dependencies done, its
   * retry due — or undefined when this engine does not know (it was restored after that).
   */
  readySince(task: string): number | undefined {
    return this.readyTime[this.index(task)] || undefined;
  }

  /**
   * Tasks ready to launch that wait: for the scheduler's slots (the global cap) or the pipeline's
   * `parallelism`. None while the run is failing fast, cancelled, ending early or finished.
   */
  get queuedTasks(): number {
    if (this.stopping || this.finished) return 0;
    let n = 0;
    for (let k = this.readyHead; k < this.ready.length; k++) {
      const i = this.ready[k]!;
      const s = this.state[i];
      if (this.queued[i] && (s === PENDING || s === RETRYING)) n++;
    }
    return n;
  }

  /** Tasks recorded as LAUNCHING whose launch must be repeated after a restart (idempotent). */
  relaunches(): { task: string; attempt: number }[] {
    const out: { task: string; attempt: number }[] = [];
    this.state.forEach((s, i) => {
      if (s === LAUNCHING) out.push({ task: this.tasks[i]!.name, attempt: this.attempt[i]! });
    });
    return out;
  }

  /** When `next` has time-based work (a retry or timeout due), or undefined. */
  nextWakeAt(): number | undefined {
    return this.timers.peek()?.at;
  }

  /**
   * What to do now: due retries and timeouts, then launches of ready tasks — at most `slots`
   * of them (the scheduler's global cap) and within the pipeline's `parallelism`.
   */
  next(now: number, slots = Number.POSITIVE_INFINITY): Decision[] {
    const out: Decision[] = [];
    while (this.timers.size > 0 && this.timers.peek()!.at <= now) {
      const t = this.timers.pop()!;
      if (this.attempt[t.task] !== t.attempt) continue;
      const s = this.state[t.task]!;
      if (t.kind === "retry" && s === RETRYING && !this.stopping) {
        this.enqueue(t.task, t.at);
      } else if (t.kind === "timeout" && isActive(s)) {
        out.push({ kind: "timeout", task: this.tasks[t.task]!.name, attempt: t.attempt });
      }
    }
    if (this.stopping || this.finished) return out;
    const cap = this.pipeline.parallelism ?? Number.POSITIVE_INFINITY;
    let budget = Math.min(slots, cap - this.active);
    while (budget > 0 && this.readyHead < this.ready.length) {
      const i = this.ready[this.readyHead++]!;
      this.queued[i] = 0;
      const s = this.state[i]!;
      if (s !== PENDING && s !== RETRYING) continue;
      const attempt = this.attempt[i]! + 1;
      this.attempt[i] = attempt;
      this.launchTime[i] = now;
      this.set(i, LAUNCHING);
      const timeout = this.tasks[i]!.timeoutMs;
      if (timeout !== undefined)
        this.timers.push({ at: now + timeout, task: i, attempt, kind: "timeout" });
      out.push({ kind: "launch", task: this.tasks[i]!.name, attempt });
      budget--;
    }
    if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.readyHead);
      this.readyHead = 0;
    }
    return out;
  }

  /** Tasks launching or running now. */
  get activeTasks(): number {
    return this.active;
  }

  /** Applies a recorded change of one task and says what follows from it. */
  observe(task: string, status: TaskStatus, now: number): Decision[] {
    const i = this.index(task);
    const to = code.get(status.state);
    if (to === undefined) throw new Error(`unknown task state ${status.state}`);
    const known = this.attempt[i]!;
    if (status.attempt < known) return [];
    const from = this.state[i]!;
    if (status.attempt === known && from === to) return [];
    if (status.attempt === known && isTerminal(from)) return [];
    this.attempt[i] = status.attempt;
    if (status.launchTime !== undefined) this.launchTime[i] = status.launchTime;
    const out: Decision[] = [];
    if (to === FAILED || to === ERROR) {
      this.failed(i, status.attempt, now, out, to);
    } else if (to === RETRYING) {
      this.set(i, RETRYING);
      const at = status.nextAttemptTime ?? now + retryDelay(this.tasks[i]!, status.attempt);
      this.timers.push({ at, task: i, attempt: status.attempt, kind: "retry" });
    } else {
      this.set(i, to);
      if (to === SUCCEEDED) {
        for (const d of this.graph.dependents[i]!) {
          if (--this.remaining[d]! === 0 && this.state[d] === PENDING) this.enqueue(d, now);
        }
        if (status.earlyExit && !this.stopping) {
          this.earlyExit = i;
          this.skipForEarlyExit(out);
        }
      } else if (to === SKIPPED || to === CANCELLED) {
        if (!this.cancelRequested)
          this.skipDependents(i, out, `dependency "${task}" was ${codes[to]!.toLowerCase()}`);
      }
    }
    this.finishIfDone(out);
    return out;
  }

  /**
   * Like `observe`, but for what the store says after one of this engine's own decisions could not
   * be recorded (another replica recorded something else first): an optimistic launch that did
   * not happen is undone before the stored status is applied.
   */
  reconcile(task: string, status: TaskStatus, now: number): Decision[] {
    const i = this.index(task);
    if (this.state[i] === LAUNCHING && status.attempt < this.attempt[i]!) {
      this.attempt[i] = status.attempt;
      this.set(i, status.state === "RETRYING" ? RETRYING : PENDING);
      if (status.state === "PENDING" && this.remaining[i] === 0)
        this.enqueue(i, this.readyTime[i] || now);
    }
    return this.observe(task, status, now);
  }

  /** The run was cancelled: stop what runs, cancel what waits. */
  cancel(): Decision[] {
    const out: Decision[] = [];
    if (this.finished) return out;
    this.cancelRequested = true;
    this.state.forEach((s, i) => {
      const name = this.tasks[i]!.name;
      if (s === PENDING || s === RETRYING) {
        this.set(i, CANCELLED);
        out.push({ kind: "cancelled", task: name });
      } else if (isActive(s)) {
        out.push({ kind: "cancel", task: name, attempt: this.attempt[i]! });
      }
    });
    this.finishIfDone(out);
    return out;
  }

  /**
   * Retries a finished run: failed, errored, skipped and cancelled tasks run again (each with a
   * new attempt number); succeeded tasks keep their results. Returns the tasks reset.
   */
  retry(): string[] {
    const reset: string[] = [];
    this.failing = false;
    this.earlyExit = -1;
    this.cancelRequested = false;
    this.anyFailed = false;
    this.finished = undefined;
    this.timers.clear();
    this.ready = [];
    this.readyHead = 0;
    this.queued.fill(0);
    this.state.forEach((s, i) => {
      if (s === FAILED || s === ERROR || s === SKIPPED || s === CANCELLED) {
        this.set(i, PENDING);
        this.first[i] = this.attempt[i]! + 1;
        reset.push(this.tasks[i]!.name);
      }
    });
    this.recount();
    return reset;
  }

  // -------------------------------------------------------------------------------------------

  /** Nothing new starts: the run is failing fast, cancelled or ending early. */
  private get stopping(): boolean {
    return this.failing || this.cancelRequested || this.earlyExit >= 0;
  }

  /** Early exit: every task not started (or waiting to retry) is SKIPPED; running ones finish. */
  private skipForEarlyExit(out: Decision[]): void {
    const reason = `early exit requested by task "${this.tasks[this.earlyExit]!.name}"`;
    this.state.forEach((s, j) => {
      if (s === PENDING || s === RETRYING) {
        this.set(j, SKIPPED);
        out.push({ kind: "skip", task: this.tasks[j]!.name, reason, earlyExit: true });
      }
    });
  }

  private index(task: string): number {
    const i = this.graph.indexOf(task);
    if (i === undefined) throw new Error(`task "${task}" is not in pipeline ${this.pipeline.name}`);
    return i;
  }

  private enqueue(i: number, at = this.readySinceDefault): void {
    if (this.queued[i]) return;
    this.queued[i] = 1;
    this.readyTime[i] = at;
    this.ready.push(i);
  }

  private set(i: number, to: number): void {
    const from = this.state[i]!;
    if (from === to) return;
    if (isActive(from)) this.active--;
    if (isActive(to)) this.active++;
    if (!isTerminal(from) && isTerminal(to)) this.unfinished--;
    if (isTerminal(from) && !isTerminal(to)) this.unfinished++;
    this.state[i] = to;
  }

  private failed(i: number, attempt: number, now: number, out: Decision[], to: number): void {
    const task = this.tasks[i]!;
    if (attempt - this.first[i]! < task.retries && !this.stopping) {
      const at = now + retryDelay(task, attempt);
      this.set(i, RETRYING);
      this.timers.push({ at, task: i, attempt, kind: "retry" });
      out.push({ kind: "retry", task: task.name, attempt, at });
      return;
    }
    this.set(i, to);
    this.anyFailed = true;
    if (this.cancelRequested) return;
    if (this.pipeline.failFast) {
      // As the original and Argo's failFast: nothing new starts; running tasks finish.
      this.failing = true;
      const reason = `fail-fast: task "${task.name}" ${to === ERROR ? "could not run" : "failed"}`;
      this.state.forEach((s, j) => {
        if (s === PENDING || s === RETRYING) {
          this.set(j, SKIPPED);
          out.push({ kind: "skip", task: this.tasks[j]!.name, reason });
        }
      });
    } else {
      this.skipDependents(i, out, `dependency "${task.name}" did not succeed`);
    }
  }

  private skipDependents(i: number, out: Decision[], reason: string): void {
    const stack = [...this.graph.dependents[i]!];
    while (stack.length > 0) {
      const d = stack.pop()!;
      const s = this.state[d]!;
      if (s !== PENDING && s !== RETRYING) continue;
      this.set(d, SKIPPED);
      out.push({ kind: "skip", task: this.tasks[d]!.name, reason });
      stack.push(...this.graph.dependents[d]!);
    }
  }

  private finishIfDone(out: Decision[]): void {
    if (this.finished || this.unfinished > 0) return;
    if (this.cancelRequested) {
      this.finished = "CANCELLED";
      out.push({ kind: "finish", state: "CANCELLED", reason: "cancelled" });
    } else if (!this.anyFailed && this.earlyExit >= 0) {
      this.finished = "SUCCEEDED";
      const by = this.tasks[this.earlyExit]!.name;
      out.push({
        kind: "finish",
        state: "SUCCEEDED",
        reason: `early exit requested by task "${by}"`,
        earlyExitBy: by,
      });
    } else if (this.anyFailed || this.state.some((s) => s !== SUCCEEDED)) {
      this.finished = "FAILED";
      const failedTasks = this.tasks
        .filter((_, i) => this.state[i] === FAILED || this.state[i] === ERROR)
        .map((t) => t.name);
      out.push({
        kind: "finish",
        state: "FAILED",
        reason:
          failedTasks.length > 0
            ? `failed: ${failedTasks.slice(0, 5).join(", ")}${failedTasks.length > 5 ? ` and ${failedTasks.length - 5} more` : ""}`
            : "tasks were skipped",
      });
    } else {
      this.finished = "SUCCEEDED";
      out.push({ kind: "finish", state: "SUCCEEDED", reason: "all tasks succeeded" });
    }
  }

  private recount(): void {
    this.remaining.fill(0);
    this.active = 0;
    this.unfinished = 0;
    const n = this.tasks.length;
    for (let i = 0; i < n; i++) {
      const s = this.state[i]!;
      if (isActive(s)) this.active++;
      if (!isTerminal(s)) this.unfinished++;
      if (s === FAILED || s === ERROR) this.anyFailed = true;
      for (const d of this.graph.dependencies[i]!)
        if (this.state[d] !== SUCCEEDED) this.remaining[i]!++;
    }
    for (const i of this.graph.topologicalOrder()) {
      if (this.state[i] === PENDING && this.remaining[i] === 0) this.enqueue(i);
    }
  }

  private load(statuses: (task: string) => TaskStatus | undefined, cancelRequested: boolean): void {
    this.ready = [];
    this.readyHead = 0;
    this.queued.fill(0);
    this.tasks.forEach((t, i) => {
      const s = statuses(t.name);
      if (!s) return;
      this.state[i] = code.get(s.state) ?? PENDING;
      this.attempt[i] = s.attempt;
      this.first[i] = s.firstAttempt ?? 1;
      if (s.launchTime !== undefined) this.launchTime[i] = s.launchTime;
      if (s.state === "SUCCEEDED" && s.earlyExit && this.earlyExit < 0) this.earlyExit = i;
      if (s.state === "RETRYING") {
        this.timers.push({
          at: s.nextAttemptTime ?? 0,
          task: i,
          attempt: s.attempt,
          kind: "retry",
        });
      }
      if (
        (s.state === "LAUNCHING" || s.state === "RUNNING") &&
        t.timeoutMs !== undefined &&
        s.launchTime !== undefined
      ) {
        this.timers.push({
          at: s.launchTime + t.timeoutMs,
          task: i,
          attempt: s.attempt,
          kind: "timeout",
        });
      }
    });
    this.cancelRequested = cancelRequested;
    this.recount();
    // A fail-fast run whose failure was recorded but whose skips were not (a crash in between).
    if (this.anyFailed && this.pipeline.failFast && !cancelRequested) {
      const failedAt = this.state.findIndex((s) => s === FAILED || s === ERROR);
      if (failedAt !== -1) this.failing = true;
    }
    if (this.failing) this.earlyExit = -1;
  }

  /**
   * Decisions owed after `restore`: for a cancelled run, cancel what still runs; for a failing
   * fail-fast run, skip what has not started; and finish a run whose tasks are all done.
   */
  resume(): Decision[] {
    const out: Decision[] = [];
    if (this.cancelRequested) return this.cancel();
    if (this.earlyExit >= 0) {
      this.skipForEarlyExit(out);
    } else if (this.failing) {
      const first = this.state.findIndex((s) => s === FAILED || s === ERROR);
      const reason = `fail-fast: task "${this.tasks[first]!.name}" failed`;
      this.state.forEach((s, j) => {
        if (s === PENDING || s === RETRYING) {
          this.set(j, SKIPPED);
          out.push({ kind: "skip", task: this.tasks[j]!.name, reason });
        }
      });
    } else if (!this.pipeline.failFast) {
      this.state.forEach((s, i) => {
        if (s === FAILED || s === ERROR || s === SKIPPED || s === CANCELLED) {
          this.skipDependents(i, out, `dependency "${this.tasks[i]!.name}" did not succeed`);
        }
      });
    }
    this.finishIfDone(out);
    return out;
  }
}
