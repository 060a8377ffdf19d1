import type {
  LaunchSpec,
  ParameterValue,
  Pipeline,
  Problem,
  ScheduleSpec,
  TriggerSpec,
} from "@odin/pipeline-spec";

/** Where pipelines come from: pipeline-registry (over gRPC, or in-process in embedded mode). */
export interface PipelineSource {
  /**
   * A pipeline at a commit (default: the newest) read for a run with these parameter values;
   * `pipeline` is unset when it has errors. `parameters`: the values the run has (given ones typed,
   * else defaults; for a template, its context).
   */
  getPipeline(
    path: string,
    commit: string | undefined,
    parameters: Readonly<Record<string, unknown>>,
  ): Promise<{
    commit: string;
    pipeline?: Pipeline;
    problems: Problem[];
    parameters: Record<string, ParameterValue>;
  }>;
}

/** What a run asks of its checkout besides the checkout itself. */
export interface CheckoutRequest {
  /** The run's pipeline directory: one holding `*.jinja2` files is rendered for the run. */
  pipeline: string;
  /** The templates' context: the run's parameters. */
  parameters: Readonly<Record<string, unknown>>;
  /** The run's attempt: a release for an earlier attempt leaves this one's hold. */
  attempt: number;
}

/** A run's checkout and, for a templated pipeline, its rendered pipeline directory. */
export interface RunCheckout {
  commit: string;
  /** The run's `ROOT_PATH`. */
  path: string;
  /** The run's `WORK_PATH` when its pipeline directory has templates. */
  workPath?: string;
  /** `sha256:` of that directory's content, what the task cache keys on instead of its path. */
  workDigest?: string;
}

/** Run-pinned checkouts: repo-sync (over gRPC, or in-process). */
export interface CheckoutSource {
  /**
   * Makes sure the commit's checkout exists and keeps it while `holder` (a run id) uses it; with
   * `request`, renders the run's templated pipeline directory (refusing a template that does not
   * render, with its problems).
   */
  acquire(commit: string, holder: string, request?: CheckoutRequest): Promise<RunCheckout>;
  /** The run (at `attempt`; 0 = any) no longer needs it. */
  release(commit: string, holder: string, attempt?: number): Promise<void>;
}

/** k8s-launcher (over gRPC), or a local backend in embedded mode. */
export interface LauncherPort {
  /** Launches an attempt; idempotent. Throws on refusal (bad spec) or when unreachable. */
  launch(spec: LaunchSpec): Promise<{ objectName: string }>;
  /** Stops an attempt (all attempts without one); resolves once the launcher has acted. */
  cancel(runId: string, task: string, attempt?: number): Promise<unknown>;
  /** Removes a run's objects, and its RUN_PATH with `purgeData`. */
  deleteRun(runId: string, purgeData: boolean): Promise<{ deleted: number; dataPurged: boolean }>;
  /**
   * Content digests of files and directories where the data is (`missing` for what is not
   * there), after making the given links. Without it, nothing is cached.
   */
  hashFiles?(
    paths: readonly string[],
    links?: readonly { target: string; path: string }[],
  ): Promise<string[]>;
}

/** The schedules pipelines declare (`schedules:`) at the newest commit: pipeline-registry's listing. */
export interface DeclaredScheduleSource {
  /**
   * Every pipeline of a commit (default: the newest) with the schedules it declares; `valid:
   * false` for one that does not load now (its schedules are kept as they were).
   */
  declaredSchedules(
    commit?: string,
  ): Promise<
    { pipeline: string; pipelineName: string; valid: boolean; schedules: ScheduleSpec[] }[]
  >;
}

/** The commit triggers pipelines declare (`triggers:`) at a commit: pipeline-registry's listing. */
export interface DeclaredTriggerSource {
  /** Every valid pipeline of a commit (default: the newest) with the triggers it declares. */
  declaredTriggers(
    commit?: string,
  ): Promise<{ pipeline: string; pipelineName: string; triggers: TriggerSpec[] }[]>;
}

/** A commit of the pipelines repository as commit triggers see it. */
export interface RepoCommit {
  sha: string;
  author: { name: string; email: string };
  authorTime: Date;
  subject: string;
  changedPaths: string[];
}

/** The commits a sync or push brought: repo-sync's ListCommits (over gRPC, or in-process). */
export interface CommitSource {
  /**
   * The commits after `since` up to `until` (default: the served commit), oldest first, at most
   * `max` (the newest). `since` "" lists `until` alone.
   */
  listCommits(
    since: string,
    until: string | undefined,
    max: number,
  ): Promise<{
    until: string;
    commits: RepoCommit[];
    truncated: boolean;
    rewritten: boolean;
    sinceUnknown: boolean;
  }>;
}
