// The pure core of one task attempt, as libs/dag is for runs: what a backend observes about the
// attempt (its object was named, a pod or process runs, it ended, a pod cannot start, Odin or
// someone else deleted it) goes in as facts, and the events to report and the commands to carry
// out come back. Time is data: every call is given `now`, `wakeAt()` says when the core wants a
// `tick(now)`, and the backend (the I/O shell) owns the real timers. No I/O, no clock here.
//
// What it guarantees, whatever order and however often facts arrive (watches repeat themselves,
// restarted launchers re-list everything):
// - each state is reported at most once per attempt: RUNNING once, then one terminal state;
// - nothing is reported after the attempt ended or after Odin cancelled or deleted it;
// - a pod stuck (unschedulable, image not pullable …) for longer than pending_timeout ends the
//   attempt ERROR, with the reason and the first message Kubernetes gave, and a command to delete
//   the attempt's object (so it cannot start later beside a retry);
// - the main object deleted by someone other than Odin before it finished is ERROR `Deleted`;
// - events carry deterministic ids (`eventId`): a restarted backend that sees the same facts
//   again reports the same events, which the bus drops as duplicates.
import type { ReportedState, TaskStateEvent } from "../backend.js";

/** Which attempt of which task of which run. */
export interface AttemptId {
  runId: string;
  task: string;
  attempt: number;
}

/** The key of an attempt in a backend's tables: `<run>/<task>/<attempt>`. */
export function attemptKey(id: AttemptId): string {
  return `${id.runId}/${id.task}/${id.attempt}`;
}

/** What one observation says about an attempt's state. */
export interface Observation {
  state: ReportedState;
  time?: Date;
  exitCode?: number;
  reason?: string;
  message?: string;
  outputsJson?: string;
  /** The image digest the attempt ran, when known (see TaskStateEvent.imageDigest). */
  imageDigest?: string;
}

/** Why a unit of an attempt (a pod) cannot start by itself. */
export interface Stuck {
  /** `Unschedulable`, or the container's waiting reason (`ImagePullBackOff` …). */
  reason: string;
  message: string;
  /** Since when, when the platform says (a restarted launcher keeps counting from there). */
  since?: Date;
}

/** A fact a backend observed about an attempt. */
export type AttemptFact =
  /** The attempt runs as this object (its Pod, Job, training job or process). */
  | { kind: "named"; objectName: string }
  /** The task's own pending_timeout (the first one told wins). */
  | { kind: "pending-timeout"; ms: number }
  /** A pod or process of the attempt runs. */
  | { kind: "running"; time?: Date }
  /** The attempt ended this way (a terminal `Observation`). */
  | { kind: "ended"; outcome: Observation }
  /** A unit cannot start by itself (told again on every change while it lasts). */
  | { kind: "stuck"; unit: string; stuck: Stuck }
  /** A unit is no longer stuck (it started, or it is gone). */
  | { kind: "unstuck"; unit: string }
  /** Odin marked the attempt's object for deletion (any replica, or this one before a restart). */
  | { kind: "deleted-by-odin" }
  /** This backend is about to stop or delete the attempt … */
  | { kind: "cancelling" }
  /** … and could not: it runs on, and its end must still be reported. */
  | { kind: "cancel-failed" }
  /** The main object is gone without having ended; `what` names it (`Pod x`). */
  | { kind: "deleted"; what: string; time?: Date };

/** Something the shell must do for the attempt, after the events of the same step are delivered. */
export interface AttemptCommand {
  kind: "delete";
  /** Recorded on the object, so other launchers know the deletion is Odin's. */
  why: "pending-timeout";
}

/** What one fact or tick produced. */
export interface AttemptStep {
  events: TaskStateEvent[];
  commands: AttemptCommand[];
}

/** How an attempt core is set up. */
export interface AttemptCoreOptions {
  /** pending_timeout of tasks that set none. */
  defaultPendingTimeoutMs: number;
  /**
   * When the backend started watching. A unit stuck since (platform time) before then was stuck
   * while the backend was down, and is timed from the platform's time, so a restart does not
   * reset the clock; otherwise it is timed from when the core was first told.
   */
  startedAt: number;
  /** States reported before a restart (from a durable record): not reported again. */
  reported?: readonly ReportedState[];
}

interface StuckUnit {
  stuck: Stuck;
  /** What the platform said first (ErrImagePull has the registry's answer; the BackOff after it does not). */
  first: Stuck;
  since: number;
}

const none: AttemptStep = Object.freeze({ events: [], commands: [] });

/** The bookkeeping of one attempt: facts in, events and commands out. */
export class AttemptCore {
  private name = "";
  private running = false;
  private terminal: ReportedState | undefined;
  /** `confirmed`: Odin's mark is on the object; `requested`: this backend is deleting it. */
  private cancel: "no" | "requested" | "confirmed" = "no";
  private pendingTimeoutMs: number | undefined;
  private readonly stuck = new Map<string, StuckUnit>();

  constructor(
    readonly id: AttemptId,
    private readonly options: AttemptCoreOptions,
  ) {
    for (const state of options.reported ?? []) {
      if (state === "RUNNING") this.running = true;
      else this.terminal = state;
    }
  }

  /** Ended, or cancelled by Odin: nothing more will be reported. */
  get done(): boolean {
    return this.terminal !== undefined || this.cancel !== "no";
  }

  /** Odin stopped or deleted the attempt (or is doing so). */
  get cancelled(): boolean {
    return this.cancel !== "no";
  }

  /** The name of the object (or process) that runs the attempt, `""` while unknown. */
  get objectName(): string {
    return this.name;
  }

  /** The terminal state reported, if any. */
  get terminalState(): ReportedState | undefined {
    return this.terminal;
  }

  /** Takes in one fact; `now` is the shell's clock in ms. */
  observe(fact: AttemptFact, now: number): AttemptStep {
    switch (fact.kind) {
      case "named":
        this.name = fact.objectName;
        return none;
      case "pending-timeout":
        if (this.pendingTimeoutMs === undefined && Number.isFinite(fact.ms) && fact.ms > 0) {
          this.pendingTimeoutMs = fact.ms;
        }
        return none;
      case "running":
        if (this.done || this.running) return none;
        this.running = true;
        return this.report({ state: "RUNNING", ...(fact.time ? { time: fact.time } : {}) }, now);
      case "ended":
        if (this.done || fact.outcome.state === "RUNNING") return none;
        this.terminal = fact.outcome.state;
        this.stuck.clear();
        return this.report(fact.outcome, now);
      case "stuck":
        this.noteStuck(fact.unit, fact.stuck, now);
        return none;
      case "unstuck":
        this.stuck.delete(fact.unit);
        return none;
      case "deleted-by-odin":
        this.cancel = "confirmed";
        this.stuck.clear();
        return none;
      case "cancelling":
        if (this.cancel === "no") this.cancel = "requested";
        this.stuck.clear();
        return none;
      case "cancel-failed":
        if (this.cancel === "requested") this.cancel = "no";
        return none;
      case "deleted":
        this.stuck.clear();
        if (this.done) return none;
        this.terminal = "ERROR";
        return this.report(
          {
            state: "ERROR",
            reason: "Deleted",
            message: `${fact.what} was deleted before it finished, not by Odin`,
            ...(fact.time ? { time: fact.time } : {}),
          },
          now,
        );
    }
  }

  /** The clock reached `now`: a unit stuck past pending_timeout ends the attempt. */
  tick(now: number): AttemptStep {
    if (this.done) return none;
    const timeout = this.timeoutMs();
    for (const [unit, entry] of this.stuck) {
      if (now < entry.since + timeout) continue;
      const { reason } = entry.stuck;
      const message =
        entry.first.message === entry.stuck.message
          ? entry.stuck.message
          : `${entry.stuck.message} (earlier: ${entry.first.reason}: ${entry.first.message})`;
      this.terminal = "ERROR";
      this.stuck.clear();
      const step = this.report(
        {
          state: "ERROR",
          reason,
          message: `pod ${unit} could not start for ${seconds(now - entry.since)} (pending_timeout ${seconds(timeout)}): ${message}`,
        },
        now,
      );
      return { events: step.events, commands: [{ kind: "delete", why: "pending-timeout" }] };
    }
    return none;
  }

  /** When the core wants `tick`, if it does. */
  wakeAt(): number | undefined {
    if (this.done || this.stuck.size === 0) return undefined;
    let earliest = Infinity;
    for (const entry of this.stuck.values()) earliest = Math.min(earliest, entry.since);
    return earliest + this.timeoutMs();
  }

  private timeoutMs(): number {
    return this.pendingTimeoutMs ?? this.options.defaultPendingTimeoutMs;
  }

  private noteStuck(unit: string, stuck: Stuck, now: number): void {
    if (this.done) return;
    const entry = this.stuck.get(unit);
    if (entry) {
      entry.stuck = stuck;
      return;
    }
    // Platform times have whole seconds: only a time clearly before the start counts.
    const platformSince = stuck.since?.getTime();
    const since =
      platformSince !== undefined && platformSince + 1000 < this.options.startedAt
        ? platformSince
        : now;
    this.stuck.set(unit, { stuck, first: stuck, since });
  }

  private report(o: Observation, now: number): AttemptStep {
    const event: TaskStateEvent = {
      runId: this.id.runId,
      task: this.id.task,
      attempt: this.id.attempt,
      state: o.state,
      objectName: this.name,
      time: o.time ?? new Date(now),
      ...(o.exitCode !== undefined ? { exitCode: o.exitCode } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
      ...(o.message ? { message: o.message } : {}),
      ...(o.outputsJson ? { outputsJson: o.outputsJson } : {}),
      ...(o.imageDigest ? { imageDigest: o.imageDigest } : {}),
    };
    return { events: [event], commands: [] };
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}
