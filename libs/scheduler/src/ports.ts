import type { Pipeline, Problem, Task } from "@odin/pipeline-spec";

/** Where pipelines come from: pipeline-registry (over gRPC, or in-process in embedded mode). */
export interface PipelineSource {
  /** A pipeline at a commit (default: the newest); `pipeline` is unset when it has errors. */
  getPipeline(
    path: string,
    commit?: string,
  ): Promise<{ commit: string; pipeline?: Pipeline; problems: Problem[] }>;
}

/** Run-pinned checkouts: repo-sync (over gRPC, or in-process). */
export interface CheckoutSource {
  /** Makes sure the commit's checkout exists and keeps it while `holder` (a run id) uses it. */
  acquire(commit: string, holder: string): Promise<{ commit: string; path: string }>;
  /** The run no longer needs it. */
  release(commit: string, holder: string): Promise<void>;
}

/** Where the paths of a task point, as its container sees them. */
export interface LaunchPaths {
  rootPath: string;
  workPath: string;
  dataPath: string;
  runPath: string;
  taskPath: string;
}

/** One attempt to launch, with variables and `^task.outputs` references already substituted. */
export interface LaunchRequest {
  runId: string;
  pipeline: string;
  commit: string;
  task: Task;
  taskId: string;
  attempt: number;
  paths: LaunchPaths;
}

/** k8s-launcher (over gRPC), or a local backend in embedded mode. */
export interface LauncherPort {
  /** Launches an attempt; idempotent. Throws on refusal (bad spec) or when unreachable. */
  launch(request: LaunchRequest): Promise<{ objectName: string }>;
  /** Stops an attempt (all attempts without one). */
  cancel(runId: string, task: string, attempt?: number): Promise<void>;
  /** Removes a run's objects, and its RUN_PATH with `purgeData`. */
  deleteRun(runId: string, purgeData: boolean): Promise<{ deleted: number; dataPurged: boolean }>;
}

/** True for errors worth retrying later (the launcher or the API server is unreachable or busy). */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  const name = (err as { name?: unknown }).name;
  // gRPC UNAVAILABLE (14), DEADLINE_EXCEEDED (4), RESOURCE_EXHAUSTED (8), ABORTED (10)
  return (
    code === 14 ||
    code === 4 ||
    code === 8 ||
    code === 10 ||
    name === "UnavailableError" ||
    name === "DeadlineExceededError"
  );
}
