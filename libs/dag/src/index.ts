// The state table is pipeline-spec's; re-exported for the engine's users.
export { isTerminalState, type RunState, type TaskState } from "@odin/pipeline-spec";
export {
  maxRetryBackoffMs,
  requestsEarlyExit,
  retryDelay,
  RunEngine,
  type Decision,
  type TaskStatus,
} from "./engine.js";
