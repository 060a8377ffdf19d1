export {
  isTerminalState,
  maxRetryBackoffMs,
  retryDelay,
  RunEngine,
  type Decision,
  type RunState,
  type TaskState,
  type TaskStatus,
} from "./engine.js";
