export { loadPipeline, parseDuration, type LoadOptions, type LoadResult } from "./load.js";
export { TaskGraph, type Cycle } from "./graph.js";
export {
  defaultRetryBackoffMs,
  multiWorkerTypes,
  notifyStates,
  resourceTypes,
  webhookSecretNamePattern,
  type ConfigMapMount,
  type EphemeralVolume,
  type Mount,
  type NotifyState,
  type NotifyTarget,
  type Pipeline,
  type ResourceAmounts,
  type ResourceType,
  type SecretMount,
  type SecurityContext,
  type Task,
  type Toleration,
} from "./model.js";
export {
  defaultPipelineName,
  isDnsLabel,
  isDnsSubdomain,
  isLabelValue,
  maxNameLength,
  maxPipelineNameLength,
  nameHash,
  newRunId,
  objectName,
  pipelineNamePattern,
  taskId,
  toDnsLabel,
} from "./names.js";
export {
  attemptLabel,
  cancelledAnnotation,
  commitAnnotation,
  managedByLabel,
  managedByValue,
  odinKeyPrefix,
  legacyPendingTimeoutAnnotation,
  pendingTimeoutAnnotation,
  pipelineAnnotation,
  runLabel,
  shardLabel,
  taskIdAnnotation,
  taskLabel,
} from "./labels.js";
export {
  checkAttempt,
  checkLaunch,
  checkRunId,
  checkTaskName,
  InvalidIdError,
  maxAttempt,
  type LaunchSpec,
  type TaskPaths,
} from "./launch.js";
export {
  findReferences,
  MissingOutputError,
  parseReference,
  resolveReferences,
  unresolvableReason,
  type TaskReference,
} from "./references.js";
export {
  isFinishedRun,
  isTerminalState,
  reportedStates,
  runStates,
  taskStates,
  type ReportedState,
  type RunState,
  type TaskState,
} from "./states.js";
export {
  coerceParameter,
  parameterNamePattern,
  parameterText,
  parameterTypes,
  sortedParameters,
  typeOfValue,
  type ParameterSpec,
  type ParameterType,
  type ParameterValue,
} from "./parameters.js";
export {
  catchupPolicies,
  checkCron,
  checkTimezone,
  concurrencyPolicies,
  CronTicks,
  scheduleNamePattern,
  tickGraceMs,
  type CatchupPolicy,
  type ConcurrencyPolicy,
  type ScheduleSpec,
} from "./schedules.js";
export {
  mergeNotifyTargets,
  notifyTarget,
  parseNotifyTarget,
  webhookSecretProblem,
} from "./notify.js";
export {
  commitMatches,
  pathMatches,
  resolveTriggerPath,
  triggeredCommits,
  triggerNamePattern,
  triggerPolicies,
  type ChangedCommit,
  type TriggerPolicy,
  type TriggerSpec,
} from "./triggers.js";
export { formatProblem, type Problem, type Severity } from "./problems.js";
export { defaultSourceLimits, type Position, type SourceLimits } from "./source.js";
export {
  processingVariables,
  scanVariables,
  substituteVariables,
  taskVariables,
  type ProcessingVariable,
  type RunContext,
  type VariableProblem,
  type VariableUse,
} from "./variables.js";
