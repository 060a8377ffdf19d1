// One run as the browser knows it: the run, every task's state and the task runs it has read,
// kept current from WatchRun. Views read it and redraw when its version changes.
//
// A large run's snapshot carries every task's state (one byte a task) but no task runs
// (WatchRun's `max_snapshot_task_runs`): the page reads the task runs of what it shows — the rows
// on screen, the graph's single-task nodes, the open panel — with GetRun naming those tasks. So
// opening a 10,000-task run neither builds, sends nor decodes 10,000 task runs.
import type { TaskRun, Run } from "../gen/odin/common/v1/run_pb.js";
import { TaskState } from "../gen/odin/common/v1/run_pb.js";
import type { WatchRunResponse } from "../gen/odin/dagscheduler/v1/dagscheduler_pb.js";

/** Reads the task runs of the named tasks (GetRun naming them). */
export type TaskRunReader = (tasks: string[]) => Promise<TaskRun[]>;

/** At most this many tasks are named in one read. */
const READ_BATCH = 500;

/** The live state of one run. */
export class RunModel {
  /** The run itself; undefined until the first snapshot part. */
  run: Run | undefined;
  /** Task names in the order their task runs arrived (pipeline order for a run sent whole). */
  readonly names: string[] = [];
  /** The latest task run of each task read so far, by name. */
  readonly taskRuns = new Map<string, TaskRun>();
  /** Bumped on every change. */
  version = 0;
  /** True once the whole opening snapshot has arrived. */
  complete = false;
  /**
   * True when the snapshot left the task runs out (a large run): they are read as they are
   * shown, with {@link want}.
   */
  partial = false;
  /**
   * Every task's state in pipeline order, from the snapshot's `task_states` part, kept current
   * from the task runs that arrive once the pipeline's names are known ({@link setPipeline}).
   */
  states: TaskState[] | undefined;
  private position: Map<string, number> | undefined;
  private readonly listeners = new Set<() => void>();
  /** Names asked for and not yet read, and names being read. */
  private readonly wanted = new Set<string>();
  private readonly reading = new Set<string>();
  private readTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped when a new snapshot starts, so reads begun before it are dropped. */
  private generation = 0;

  /** `read` fetches task runs by name for a large run; without it nothing is read. */
  constructor(private readonly read?: TaskRunReader) {}

  /** True once every task's state is known: the snapshot's states part, or all of it, arrived. */
  get statesKnown(): boolean {
    return this.complete || this.states !== undefined;
  }

  /** The task run of a task, if read. */
  taskRun(name: string): TaskRun | undefined {
    return this.taskRuns.get(name);
  }

  /** A task's state: its task run's, or the snapshot's for the task at `index` in the pipeline. */
  stateOf(name: string, index: number | undefined): TaskState {
    return (
      this.taskRuns.get(name)?.state ??
      (index === undefined ? undefined : this.states?.[index]) ??
      TaskState.PENDING
    );
  }

  /** Calls `fn` after every change; returns the unsubscribe function. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The pipeline's task names in file order (the order of `states`), once its graph is read. */
  setPipeline(names: readonly string[]): void {
    this.position = new Map();
    names.forEach((n, i) => this.position!.set(n, i));
    // Changes that arrived before the names did.
    if (this.states) for (const t of this.taskRuns.values()) this.placeState(t);
    for (const n of this.wanted) if (!this.position.has(n)) this.wanted.delete(n);
    if (this.wanted.size > 0) this.want([]);
    this.changed();
  }

  /** Applies one WatchRun message. */
  apply(message: WatchRunResponse): void {
    const event = message.event;
    if (event.case === "snapshot") {
      if (event.value.run) {
        // A new stream's snapshot (after a reconnect or a retry) replaces what was known.
        if (this.complete) this.reset();
        this.run = event.value.run;
      }
      if (event.value.taskStates.length > 0) {
        this.states = event.value.taskStates.slice();
        // A last part that carries the states: the server left the task runs out.
        if (event.value.last) this.partial = true;
      }
      for (const t of event.value.taskRuns) this.setTask(t);
      if (event.value.last) this.complete = true;
    } else if (event.case === "run") {
      this.run = event.value;
    } else if (event.case === "taskRun") {
      this.setTask(event.value);
    }
    this.changed();
  }

  /**
   * Asks for the task runs of these tasks (rows on screen, an open panel): those not read yet are
   * read together once the current task ends, so several views asking at once make one call.
   */
  want(names: Iterable<string>): void {
    if (!this.partial || !this.read) return;
    for (const n of names) {
      // A name the pipeline does not have would fail the whole read.
      if (this.position && !this.position.has(n)) continue;
      if (!this.taskRuns.has(n) && !this.reading.has(n)) this.wanted.add(n);
    }
    if (this.wanted.size > 0 && this.readTimer === undefined)
      this.readTimer = setTimeout(() => this.readWanted(), 0);
  }

  /** How many tasks are in each state. */
  counts(): Map<TaskState, number> {
    const counts = new Map<TaskState, number>();
    if (this.states) {
      for (const s of this.states) counts.set(s, (counts.get(s) ?? 0) + 1);
      return counts;
    }
    for (const t of this.taskRuns.values()) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
    return counts;
  }

  /** Stops reading (the page closed). */
  close(): void {
    clearTimeout(this.readTimer);
    this.generation++;
  }

  private readWanted(): void {
    this.readTimer = undefined;
    // Names are checked against the pipeline first; setPipeline reads what waited for it.
    if (!this.position) return;
    const batch = [...this.wanted].slice(0, READ_BATCH);
    for (const n of batch) {
      this.wanted.delete(n);
      this.reading.add(n);
    }
    if (this.wanted.size > 0) this.readTimer = setTimeout(() => this.readWanted(), 0);
    const generation = this.generation;
    this.read!(batch).then(
      (taskRuns) => {
        for (const n of batch) this.reading.delete(n);
        if (generation !== this.generation) return;
        // What the stream brought meanwhile is as new or newer: a read never replaces it.
        for (const t of taskRuns) if (!this.taskRuns.has(t.task)) this.setTask(t);
        this.changed();
      },
      () => {
        // Asked again when next shown.
        for (const n of batch) this.reading.delete(n);
      },
    );
  }

  private reset(): void {
    this.generation++;
    this.complete = false;
    this.partial = false;
    this.states = undefined;
    this.taskRuns.clear();
    this.names.length = 0;
    this.wanted.clear();
    this.reading.clear();
  }

  private setTask(t: TaskRun): void {
    if (!this.taskRuns.has(t.task)) this.names.push(t.task);
    this.taskRuns.set(t.task, t);
    this.placeState(t);
  }

  private placeState(t: TaskRun): void {
    const i = this.position?.get(t.task);
    if (i !== undefined && this.states) this.states[i] = t.state;
  }

  private changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }
}
