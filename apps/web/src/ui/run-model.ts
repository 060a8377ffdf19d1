// One run as the browser knows it: the run, its pipeline's tasks in file order and each task's
// latest TaskRun, kept current from WatchRun. Views read it and redraw when its version changes.
import type { Run, TaskRun } from "../gen/odin/common/v1/run_pb.js";
import { TaskState } from "../gen/odin/common/v1/run_pb.js";
import type { WatchRunResponse } from "../gen/odin/dagscheduler/v1/dagscheduler_pb.js";

/** A state a task was seen in, and when (the browser's clock, or the server's timestamps). */
export interface Transition {
  state: TaskState;
  attempt: number;
  at: number;
}

/** The live state of one run. */
export class RunModel {
  /** The run itself; undefined until the first snapshot part. */
  run: Run | undefined;
  /** Task names in pipeline file order. */
  readonly names: string[] = [];
  /** Latest TaskRun per task, by index into `names`. */
  readonly taskRuns: (TaskRun | undefined)[] = [];
  /** States seen per task while this page was open (the snapshot's state first). */
  readonly history = new Map<number, Transition[]>();
  /** Bumped on every change. */
  version = 0;
  /** True once the whole opening snapshot has arrived. */
  complete = false;
  /**
   * Every task's state in pipeline order, from the snapshot's `task_states` part (asked for with
   * `taskStatesFirst`), for the tasks whose task runs have not arrived yet.
   */
  snapshotStates: TaskState[] | undefined;
  private readonly index = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  /** True once every task's state is known: the snapshot's states part, or all of it, arrived. */
  get statesKnown(): boolean {
    return this.complete || this.snapshotStates !== undefined;
  }

  /** Index of a task by name. */
  indexOf(name: string): number | undefined {
    return this.index.get(name);
  }

  /** Calls `fn` after every change; returns the unsubscribe function. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Applies one WatchRun message. */
  apply(message: WatchRunResponse): void {
    const event = message.event;
    if (event.case === "snapshot") {
      if (event.value.run) this.run = event.value.run;
      if (event.value.taskStates.length > 0) this.snapshotStates = event.value.taskStates;
      for (const t of event.value.taskRuns) this.setTask(t, true);
      if (event.value.last) this.complete = true;
    } else if (event.case === "run") {
      this.run = event.value;
    } else if (event.case === "taskRun") {
      this.setTask(event.value, false);
    }
    this.changed();
  }

  /** Applies a GetRun page (used when the stream has ended: the run is over). */
  applyPage(run: Run | undefined, taskRuns: TaskRun[]): void {
    if (run) this.run = run;
    for (const t of taskRuns) this.setTask(t, true);
    this.changed();
  }

  /** How many tasks are in each state. */
  counts(): Map<TaskState, number> {
    const counts = new Map<TaskState, number>();
    if (!this.complete && this.snapshotStates) {
      for (const s of this.snapshotStates) counts.set(s, (counts.get(s) ?? 0) + 1);
      return counts;
    }
    for (const t of this.taskRuns) {
      const s = t?.state ?? TaskState.PENDING;
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    return counts;
  }

  private setTask(t: TaskRun, fromSnapshot: boolean): void {
    let i = this.index.get(t.task);
    if (i === undefined) {
      i = this.names.length;
      this.index.set(t.task, i);
      this.names.push(t.task);
    }
    const before = this.taskRuns[i];
    this.taskRuns[i] = t;
    if (before?.state === t.state && before.attempt === t.attempt) return;
    let seen = this.history.get(i);
    if (seen === undefined) {
      if (fromSnapshot && t.state === TaskState.PENDING) return;
      seen = [];
      this.history.set(i, seen);
    }
    seen.push({ state: t.state, attempt: t.attempt, at: Date.now() });
  }

  private changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }
}
