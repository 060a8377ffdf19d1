export { runToProto, taskRunToProto } from "./convert.js";
export {
  type CheckoutSource,
  type DeclaredScheduleSource,
  type LauncherPort,
  type PipelineSource,
} from "./ports.js";
export {
  requestKey,
  runKey,
  runTasksFilter,
  taskKey,
  type RunRecord,
  type TaskRecord,
} from "./records.js";
export { defaultPublicUrl, dueNotifications, runEndMessage } from "./notifications.js";
export { resolveTask } from "./resolve.js";
export { Scheduler, type RunChange, type RunView, type SchedulerOptions } from "./scheduler.js";
export { dagSchedulerService } from "./service.js";
export { SchedulerStore, type RecordChange } from "./store.js";
export { GrpcLauncher, RegistryPipelineSource, RepoSyncCheckouts } from "./grpc-ports.js";
export {
  scheduleKey,
  scheduleLabel,
  ScheduleRunner,
  scheduleSubmitter,
  ticksKey,
  type RunStarter,
  type ScheduleRecord,
  type ScheduleRunnerOptions,
  type ScheduleView,
  type TickRecord,
} from "./schedules.js";
