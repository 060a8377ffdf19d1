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
