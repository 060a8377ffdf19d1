// Commit triggers: every scheduler replica hears `repo.synced`, asks repo-sync which commits
// arrived since the last commit the triggers were checked against (the cursor, in the run store)
// and which files each changed, and starts the runs the pipelines' `triggers:` ask for. Which
// replica starts a commit's run is decided by creating the claim key of (trigger, commit) in the
// run store: exactly one create succeeds, on any number of replicas and across restarts, and the
// claim names the run id before the run is submitted, so whoever finishes a claim (the claimer, or
// another replica after the claimer died) submits that id and the run store creates it once.
import { newRunId, triggeredCommits, type TriggerSpec } from "@odin/pipeline-spec";
import { subjects, type EventBus, type Subscription } from "@odin/events";
import { dagscheduler, events } from "@odin/proto";
import {
  jsonCodec,
  KeyExistsError,
  RevisionMismatchError,
  updateWithRetry,
  type KeyValueStore,
} from "@odin/run-store";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  type Logger,
} from "@odin/service-kit";
import type { CommitSource, DeclaredTriggerSource, RepoCommit } from "./ports.js";
import type { RunRecord } from "./records.js";
import { commitLabel, triggerLabel, triggerLabelValue, triggerRunSelector } from "./run-labels.js";

/** The newest commit every trigger has been checked against (`trigger-cursor`). */
export interface TriggerCursor {
  commit: string;
  /** When it moved there (epoch ms). */
  at: number;
}

/**
 * A (trigger, commit) whose run is being started or was started (`trigger-claims.<trigger>.<sha>`).
 * Created once; only `done` and `error` change after.
 */
export interface TriggerClaim {
  runId: string;
  commit: string;
  /** The replica that claimed it, and when (its clock). */
  by: string;
  at: number;
  /** The run was submitted (or could not be: `error`). */
  done?: boolean;
  error?: string;
}

/** What a trigger last did (`trigger-state.<trigger>`), for `odin triggers`. */
export interface TriggerState {
  lastCommit: string;
  /** `Name <email>` of that commit's author. */
  lastAuthor: string;
  lastRunId?: string;
  lastRunTime?: number;
  /** Runs started, ever. */
  runs: number;
  lastError?: string;
}

/** A declared trigger with what it last did, as ListTriggers shows it. */
export interface TriggerView {
  /** `<pipeline path>:<name>`. */
  name: string;
  pipeline: string;
  spec: TriggerSpec;
  state?: TriggerState;
}

/** A trigger's name as one key token: bytes outside `[-_a-zA-Z0-9]` as `=XX`. */
function token(name: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(name)) {
    const c = String.fromCharCode(byte);
    out += /[-_a-zA-Z0-9]/.test(c) ? c : `=${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** Key of the commit the triggers were last checked up to. */
export const triggerCursorKey = "trigger-cursor";
/** Key of the claim of a trigger's run for one commit. */
export const triggerClaimKey = (name: string, sha: string): string =>
  `trigger-claims.${token(name)}.${sha}`;
/** Key of what a trigger last did. */
export const triggerStateKey = (name: string): string => `trigger-state.${token(name)}`;
/** Who a triggered run is submitted by: the commit and its author. */
export const triggerSubmitter = (commit: Pick<RepoCommit, "sha" | "author">): string =>
  `commit:${commit.sha.slice(0, 7)} by ${commit.author.name} <${commit.author.email}>`;

const cursorCodec = jsonCodec<TriggerCursor>();
const claimCodec = jsonCodec<TriggerClaim>();
const stateCodec = jsonCodec<TriggerState>();

/** What triggers need of the scheduler: submit a run of a pipeline at a commit, with a chosen id. */
export interface TriggerRunStarter {
  submit(input: {
    pipeline: string;
    commit: string;
    parameters?: Readonly<Record<string, unknown>>;
    labels?: Record<string, string>;
    submittedBy: string;
    runId: string;
  }): Promise<RunRecord>;
  /** A fresh run id for a pipeline (default: any, by `newRunId`; the scheduler spreads them). */
  newRunId?(pipelineName: string): string;
}

/** What a TriggerRunner needs. */
export interface TriggerRunnerOptions {
  kv: KeyValueStore;
  runs: TriggerRunStarter;
  /** The triggers pipelines declare at a commit. */
  declared: DeclaredTriggerSource;
  /** The commits a sync brought, with their changed files (repo-sync's ListCommits). */
  commits: CommitSource;
  /** `repo.synced` events start a check at once; without it only the sweep does. */
  bus?: EventBus;
  logger: Logger;
  now?: () => number;
  /** How long a claim by another replica is left to it before this one finishes it (default 10 s). */
  takeoverMs?: number;
  /** Check every minute by itself (default true); tests call `check` themselves. */
  timers?: boolean;
  /** At most this many commits are looked at per check (the newest; default 1,000). */
  maxCommits?: number;
  /** Tests: called after a claim is created, before its run is submitted. */
  afterClaim?: (trigger: string, claim: TriggerClaim) => Promise<void>;
}

/** How often every replica checks for commits anyway (a missed event, a claim left behind). */
const sweepMs = 60_000;
/** How soon a check that failed for a passing reason (a service unreachable) is tried again. */
const retryMs = 5_000;
const defaultTakeoverMs = 10_000;

/**
 * Starts the runs of commit triggers. One per scheduler replica; all replicas do the same work and
 * the claim keys pick one replica per (trigger, commit).
 */
export class TriggerRunner {
  private readonly replica = Math.random().toString(36).slice(2, 10);
  private tail: Promise<void> = Promise.resolve();
  private synced: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: TriggerRunnerOptions) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private get kv(): KeyValueStore {
    return this.options.kv;
  }

  /**
   * Checks the commits that arrived while no scheduler ran, then follows `repo.synced` and checks
   * every minute besides.
   */
  async start(): Promise<void> {
    if (this.options.bus) {
      this.synced = await this.options.bus.subscribe(subjects.repoSynced, (m) => {
        if (this.closed) return;
        const { commit } = events.RepoSynced.decode(m.data);
        void this.check(commit || undefined);
      });
    }
    await this.check();
  }

  /** Stops listening and checking; a claim in flight is finished by another replica. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.synced?.stop();
    await this.tail;
  }

  /**
   * Starts the runs the commits up to `head` (default: the served commit) ask for; checks run one
   * after another. Never rejects: a check that fails is logged and tried again soon.
   */
  check(head?: string): Promise<void> {
    const run = this.tail.then(async () => {
      if (this.closed) return;
      let again: number | undefined;
      try {
        again = await this.pass(head);
      } catch (err) {
        again = this.now() + retryMs;
        this.options.logger.warn("commit triggers not checked yet; trying again", {
          commit: head,
          error: (err as Error).message,
        });
      }
      this.arm(again);
    });
    this.tail = run;
    return run;
  }

  /** Wakes for the next check: at `at` (a claim to take over, a retry), or at the next sweep. */
  private arm(at?: number): void {
    if (this.closed || this.options.timers === false) return;
    if (this.timer) clearTimeout(this.timer);
    const when = Math.min(at ?? Number.POSITIVE_INFINITY, this.now() + sweepMs);
    this.timer = setTimeout(() => void this.check(), Math.max(0, when - this.now()));
    this.timer.unref();
  }

  /**
   * One check: the commits after the cursor up to `head`, the triggers declared at `head`, one claim
   * per (trigger, commit) the policy picks, and the cursor moved to `head` once every claim of the
   * range is done. Returns when to look again when another replica's claim is still in flight.
   */
  private async pass(head: string | undefined): Promise<number | undefined> {
    const entry = await this.kv.get(triggerCursorKey);
    if (!entry) {
      // The first check ever: triggers follow from the commit served now; older ones never run.
      const { until } = await this.options.commits.listCommits("", head, 1);
      await this.kv
        .create(triggerCursorKey, cursorCodec.encode({ commit: until, at: this.now() }))
        .then(
          () =>
            this.options.logger.info("commit triggers follow the repository from this commit", {
              commit: until,
            }),
          (err: unknown) => {
            if (!(err instanceof KeyExistsError)) throw err;
          },
        );
      return undefined;
    }
    const cursor = cursorCodec.decode(entry.value);
    const range = await this.options.commits.listCommits(
      cursor.commit,
      head,
      this.options.maxCommits ?? 1000,
    );
    if (range.commits.length === 0) return undefined;
    if (range.truncated)
      this.options.logger.warn(
        "more commits arrived than triggers look at; the oldest are not run",
        {
          since: cursor.commit,
          until: range.until,
          looked: range.commits.length,
        },
      );
    if (range.sinceUnknown)
      this.options.logger.warn(
        "the commit triggers were last checked at is not in the repository; only the newest commit is looked at",
        { since: cursor.commit, until: range.until },
      );
    else if (range.rewritten)
      this.options.logger.info(
        "the branch's history was rewritten; commits already run are not run again",
        { since: cursor.commit, until: range.until },
      );
    const pipelines = await this.options.declared.declaredTriggers(range.until);
    let waitUntil: number | undefined;
    for (const p of pipelines) {
      for (const spec of p.triggers) {
        const name = `${p.pipeline}:${spec.name}`;
        for (const commit of triggeredCommits(spec, range.commits)) {
          const wait = await this.claim(p, spec, name, commit);
          if (wait === undefined) continue;
          // Another replica is starting this trigger's runs: it goes on with the later commits
          // too, so runs start oldest first; this one looks again when that claim could be taken over.
          waitUntil = Math.min(waitUntil ?? wait, wait);
          break;
        }
      }
    }
    // Another replica is starting a run of this range: the cursor stays until it is done (or
    // taken over), so a replica dying now leaves nothing behind.
    if (waitUntil !== undefined) return waitUntil;
    try {
      await this.kv.update(
        triggerCursorKey,
        cursorCodec.encode({ commit: range.until, at: this.now() }),
        entry.revision,
      );
    } catch (err) {
      // Another replica moved it: it checked the same commits or newer ones.
      if (!(err instanceof RevisionMismatchError)) throw err;
    }
    return undefined;
  }

  /**
   * Claims (trigger, commit) and starts its run, or finishes a claim left by a replica that died.
   * Returns when to look again when another replica's fresh claim is in flight.
   */
  private async claim(
    pipeline: { pipeline: string; pipelineName: string },
    spec: TriggerSpec,
    name: string,
    commit: RepoCommit,
  ): Promise<number | undefined> {
    const key = triggerClaimKey(name, commit.sha);
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.kv.get(key);
      if (!entry) {
        const claim: TriggerClaim = {
          runId:
            this.options.runs.newRunId?.(pipeline.pipelineName) ?? newRunId(pipeline.pipelineName),
          commit: commit.sha,
          by: this.replica,
          at: this.now(),
        };
        try {
          await this.kv.create(key, claimCodec.encode(claim));
        } catch (err) {
          // Another replica claimed it first: read its claim.
          if (err instanceof KeyExistsError) continue;
          throw err;
        }
        await this.options.afterClaim?.(name, claim);
        await this.finish(pipeline.pipeline, spec, name, commit, claim);
        return undefined;
      }
      const claim = claimCodec.decode(entry.value);
      if (claim.done) return undefined;
      const takeoverAt = claim.at + (this.options.takeoverMs ?? defaultTakeoverMs);
      if (claim.by !== this.replica && this.now() < takeoverAt) return takeoverAt;
      this.options.logger.info("finishing a commit trigger's claim another replica left", {
        trigger: name,
        commit: commit.sha,
        run: claim.runId,
      });
      await this.finish(pipeline.pipeline, spec, name, commit, claim);
      return undefined;
    }
    return this.now() + retryMs;
  }

  /** Submits a claimed run (again, harmlessly, after a takeover) and marks the claim done. */
  private async finish(
    pipeline: string,
    spec: TriggerSpec,
    name: string,
    commit: RepoCommit,
    claim: TriggerClaim,
  ): Promise<void> {
    let error: string | undefined;
    try {
      const labels: Record<string, string> = {
        [commitLabel]: commit.sha,
        [triggerLabel]: triggerLabelValue(pipeline, spec.name),
      };
      await this.options.runs.submit({
        pipeline,
        commit: commit.sha,
        parameters: spec.parameters,
        labels,
        submittedBy: triggerSubmitter(commit),
        runId: claim.runId,
      });
      this.options.logger.info("commit trigger started a run", {
        trigger: name,
        commit: commit.sha,
        run: claim.runId,
      });
    } catch (err) {
      // The pipeline cannot run at that commit (invalid there, or not there yet): that commit
      // starts no run, and says why. Anything else (a service unreachable) leaves the claim to
      // be finished by the next check.
      if (!(
        err instanceof InvalidArgumentError ||
        err instanceof FailedPreconditionError ||
        err instanceof NotFoundError
      ))
        throw err;
      error = `commit ${commit.sha.slice(0, 12)} started no run: ${err.message}`;
      this.options.logger.warn("commit trigger started no run", { trigger: name, error });
    }
    const marked = await updateWithRetry<TriggerClaim>(
      this.kv,
      triggerClaimKey(name, commit.sha),
      (current) =>
        current && current.runId === claim.runId && !current.done
          ? { ...current, done: true, ...(error !== undefined ? { error } : {}) }
          : undefined,
      claimCodec,
    );
    // Only the write that marked the claim done records it: counts stay exact under takeovers.
    if (!marked.written) return;
    await updateWithRetry<TriggerState>(
      this.kv,
      triggerStateKey(name),
      (current) => {
        const next: TriggerState = {
          lastCommit: commit.sha,
          lastAuthor: `${commit.author.name} <${commit.author.email}>`,
          runs: (current?.runs ?? 0) + (error === undefined ? 1 : 0),
        };
        if (error === undefined) {
          next.lastRunId = claim.runId;
          next.lastRunTime = this.now();
        } else next.lastError = error;
        return next;
      },
      stateCodec,
    );
  }

  // -- API ------------------------------------------------------------------------------------

  /**
   * Every trigger the pipelines declare at the newest commit (of pipelines under `pipeline`, when
   * given), by name, with what it last did; and the commit the triggers were checked up to.
   */
  async list(pipeline = ""): Promise<{ triggers: TriggerView[]; checkedCommit: string }> {
    const declared = await this.options.declared.declaredTriggers();
    const out: TriggerView[] = [];
    for (const p of declared) {
      if (pipeline && p.pipeline !== pipeline && !p.pipeline.startsWith(`${pipeline}/`)) continue;
      for (const spec of p.triggers) {
        const name = `${p.pipeline}:${spec.name}`;
        const entry = await this.kv.get(triggerStateKey(name));
        const view: TriggerView = { name, pipeline: p.pipeline, spec };
        if (entry) view.state = stateCodec.decode(entry.value);
        out.push(view);
      }
    }
    const cursor = await this.kv.get(triggerCursorKey);
    return {
      triggers: out.sort((a, b) => a.name.localeCompare(b.name)),
      checkedCommit: cursor ? cursorCodec.decode(cursor.value).commit : "",
    };
  }
}

/** A trigger as ListTriggers sends it. */
export function triggerToProto(view: TriggerView): dagscheduler.Trigger {
  const out: dagscheduler.Trigger = {
    name: view.name,
    pipeline: view.pipeline,
    paths: view.spec.paths,
    policy:
      view.spec.policy === "each"
        ? dagscheduler.TriggerPolicy.TRIGGER_POLICY_EACH
        : dagscheduler.TriggerPolicy.TRIGGER_POLICY_NEWEST,
    parameters: view.spec.parameters,
    lastCommit: view.state?.lastCommit ?? "",
    lastAuthor: view.state?.lastAuthor ?? "",
    lastRunId: view.state?.lastRunId ?? "",
    runsStarted: view.state?.runs ?? 0,
    lastError: view.state?.lastError ?? "",
    runSelector: triggerRunSelector(view.pipeline, view.spec.name),
  };
  if (view.state?.lastRunTime !== undefined) out.lastRunTime = new Date(view.state.lastRunTime);
  return out;
}
