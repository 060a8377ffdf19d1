export {
  eventId,
  type AttemptRef,
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
  backendContract,
  taskWithDefaults,
  type BackendContractFixture,
  type ContractTaskBehaviour,
} from "./contract.js";
export {
  LocalBackend,
  launcherRestartedReason,
  type LocalBackendOptions,
} from "./local/local-backend.js";
export { k8sLauncherService, publishStateEvents, taskEventOf } from "./service.js";
