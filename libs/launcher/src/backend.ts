// The launcher backend port: what the k8s-launcher service (and embedded mode) needs from a place
// that runs tasks. Adapters: Kubernetes (src/kubernetes/) and local processes (src/local/). Both
// pass the same contract suite (src/contract.ts).
import type { LaunchSpec, ReportedState } from "@odin/pipeline-spec";

// The launch type and the reported states are pipeline-spec's (one definition each).
export type { LaunchSpec, ReportedState, TaskPaths } from "@odin/pipeline-spec";

/** What became of a launch. */
export interface LaunchResult {
  /** Name of the object (or process handle) that runs the attempt. */
  objectName: string;
  /** True when the attempt had been launched before (a repeated launch is not an error). */
  alreadyExisted: boolean;
}

/**
 * A fact about one attempt, reported at most once per (run, task, attempt, state) — the
 * `eventId` is deterministic so duplicate publishes (restarts, replicas) are dropped by the bus.
 */
export interface TaskStateEvent {
  runId: string;
  task: string;
  attempt: number;
  state: ReportedState;
  objectName: string;
  time: Date;
  /** Exit code of the main container/process, when there is one. */
  exitCode?: number;
  /** Short machine-friendly reason (`Error`, `OOMKilled`, `ImagePullBackOff`, `Unschedulable`, `Deleted`, `DeadlineExceeded` …). */
  reason?: string;
  /** What happened, for people. */
  message?: string;
  /** Small outputs reported by the task (termination message / `$TASK_PATH/outputs.json`), as JSON text. */
  outputsJson?: string;
  /**
   * The image the attempt actually ran, as a digest (`sha256:…`, from the pod's imageID); `local`
   * from the local backend (no image runs). On RUNNING and SUCCEEDED, when known.
   */
  imageDigest?: string;
}

/** The deterministic id of an event: `<run>.<task>.<attempt>.<state>`. */
export function eventId(e: Pick<TaskStateEvent, "runId" | "task" | "attempt" | "state">): string {
  return `${e.runId}.${e.task}.${e.attempt}.${e.state}`;
}

/** One line of a task's log. */
export interface LogLine {
  /** Pod (or process) the line came from; multi-worker tasks have several. */
  pod: string;
  container: string;
  line: string;
  time?: Date;
}

/** How to read logs. */
export interface LogOptions {
  follow: boolean;
  /** Only the last N lines of each pod. */
  tailLines?: number;
  /** Only this pod / container. */
  pod?: string;
  container?: string;
  /** Stops a follow. */
  signal?: AbortSignal;
}

/** A platform event about a task's objects (Kubernetes Events; the local backend makes its own). */
export interface ObjectEvent {
  time: Date;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  objectKind: string;
  objectName: string;
  source: string;
  count: number;
  attempt: number;
}

/** Identifies a task's attempt; attempt 0 / undefined means "the latest". */
export interface AttemptRef {
  runId: string;
  task: string;
  attempt?: number;
}

/** A place that runs tasks. */
export interface TaskBackend {
  /** Starts reporting state changes (including those that happened while the backend was down). */
  start(report: (event: TaskStateEvent) => Promise<void>): Promise<void>;
  /** Launches one attempt; idempotent per (run, task, attempt). */
  launch(spec: LaunchSpec): Promise<LaunchResult>;
  /** Stops an attempt (all attempts when none is given); resolves to how many objects were removed. */
  cancel(ref: AttemptRef): Promise<number>;
  /** Removes everything of a run; with `purgeData`, also its `RUN_PATH`. */
  deleteRun(
    runId: string,
    options: { purgeData: boolean; runPath?: string },
  ): Promise<{ deleted: number; dataPurged: boolean }>;
  /** A task's log lines (saved logs once its pods are gone); follows while it runs when asked. */
  logs(ref: AttemptRef, options: LogOptions): AsyncIterable<LogLine>;
  /** Platform events of a task's objects. */
  events(ref: AttemptRef): Promise<ObjectEvent[]>;
  /** Stops watching and releases connections. */
  close(): Promise<void>;
  /**
   * The cluster's nodes with GPU capacity, from the backend's informers (no API call); absent on
   * a backend without GPUs (local processes).
   */
  gpuNodes?(options: { allNodes: boolean }): Promise<GpuNode[]>;
}

/** One node's GPUs (`nvidia.com/gpu`). */
export interface GpuNode {
  name: string;
  capacity: number;
  allocatable: number;
  /** Requested by the node's pods that have not ended. */
  allocated: number;
  /** `allocatable - allocated`, never below 0. */
  free: number;
  /** From the `nvidia.com/gpu.product` label; "" when unknown. */
  gpuType: string;
  ready: boolean;
  unschedulable: boolean;
  /** Odin task pods holding GPUs on the node. */
  tasks: { runId: string; task: string; attempt: number; pod: string; gpus: number }[];
}
