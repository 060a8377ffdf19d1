export { runStateFromProto, runToProto, taskRunToProto } from "./convert.js";
export {
  isTransient,
  type CheckoutSource,
  type LaunchPaths,
  type LauncherPort,
  type LaunchRequest,
  type PipelineSource,
} from "./ports.js";
export { requestKey, runKey, taskKey, type RunRecord, type TaskRecord } from "./records.js";
export { MissingOutputError, resolveReferences, resolveTask } from "./resolve.js";
export { Scheduler, type RunChange, type RunView, type SchedulerOptions } from "./scheduler.js";
export { dagSchedulerService } from "./service.js";
export { SchedulerStore, type RecordChange } from "./store.js";
export { GrpcLauncher, RegistryPipelineSource, RepoSyncCheckouts } from "./grpc-ports.js";
