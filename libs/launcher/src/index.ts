export {
  eventId,
  type AttemptRef,
  type GpuNode,
  type LaunchResult,
  type LaunchSpec,
  type LogLine,
  type LogOptions,
  type ObjectEvent,
  type ReportedState,
  type TaskBackend,
  type TaskPaths,
  type TaskStateEvent,
} from "./backend.js";
export {
  LocalBackend,
  launcherRestartedReason,
  type LocalBackendOptions,
} from "./local/local-backend.js";
export { Launcher } from "./launcher.js";
export {
  defaultMaxDownloadBytes,
  RunData,
  type RunDataOptions,
  type RunFile,
  type RunFileChunk,
} from "./run-data.js";
export {
  k8sLauncherService,
  launchSpecFromRequest,
  publishStateEvents,
  taskEventOf,
} from "./service.js";
export {
  defaultPendingTimeoutMs,
  KubernetesBackend,
  type KubernetesBackendOptions,
} from "./kubernetes/backend.js";
export { cancelledAnnotation, pendingTimeoutAnnotation } from "./kubernetes/classify.js";
export { defaultRetryPolicy, type RetryPolicy } from "./kubernetes/http.js";
