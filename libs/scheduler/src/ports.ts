import type {
  LaunchSpec,
  ParameterValue,
  Pipeline,
  Problem,
  ScheduleSpec,
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

/** Run-pinned checkouts: repo-sync (over gRPC, or in-process). */
export interface CheckoutSource {
  /** Makes sure the commit's checkout exists and keeps it while `holder` (a run id) uses it. */
  acquire(commit: string, holder: string): Promise<{ commit: string; path: string }>;
  /** The run no longer needs it. */
  release(commit: string, holder: string): Promise<void>;
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
