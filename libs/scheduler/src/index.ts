export { runToProto, taskRunToProto } from "./convert.js";
export {
  type CheckoutRequest,
  type CheckoutSource,
  type CommitSource,
  type DeclaredScheduleSource,
  type DeclaredTriggerSource,
  type LauncherPort,
  type PipelineSource,
  type RepoCommit,
  type RunCheckout,
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
export { partitionKey } from "./placement.js";
export { Scheduler, type RunChange, type RunView, type SchedulerOptions } from "./scheduler.js";
export { dagSchedulerService } from "./service.js";
export { SchedulerStore, type RecordChange } from "./store.js";
export {
  GrpcLauncher,
  RegistryPipelineSource,
  RepoSyncCheckouts,
  RepoSyncCommits,
} from "./grpc-ports.js";
export {
  scheduleKey,
  ScheduleRunner,
  scheduleSubmitter,
  ticksKey,
  type RunStarter,
  type ScheduleRecord,
  type ScheduleRunnerOptions,
  type ScheduleView,
  type TickRecord,
} from "./schedules.js";
export {
  triggerClaimKey,
  triggerCursorKey,
  TriggerRunner,
  triggerStateKey,
  triggerSubmitter,
  type TriggerClaim,
  type TriggerCursor,
  type TriggerRunnerOptions,
  type TriggerRunStarter,
  type TriggerState,
  type TriggerView,
} from "./triggers.js";
export {
  commitLabel,
  pipelineLabelValue,
  scheduleLabel,
  scheduleLabelValue,
  scheduleRunSelector,
  triggerLabel,
  triggerLabelValue,
  triggerRunSelector,
  upgradeRunLabels,
} from "./run-labels.js";
