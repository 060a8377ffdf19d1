// The K8sLauncherService over a TaskBackend (Kubernetes or local processes): handlers validate
// the request, call the backend and map the result; errors are domain errors the kit maps to
// gRPC statuses. `publishStateEvents` is how a backend's state reports reach the event bus.
import { isAbsolute } from "node:path";
import { subjects, type EventBus } from "@odin/events";
import { isDnsLabel, taskId as taskIdOf } from "@odin/pipeline-spec";
import {
  common,
  events,
  K8sLauncherServiceService,
  taskFromProto,
  type k8slauncher,
} from "@odin/proto";
import {
  InvalidArgumentError,
  serverStreamHandler,
  service,
  unaryHandler,
  type ServiceRegistration,
} from "@odin/service-kit";
import {
  eventId,
  type LaunchSpec,
  type LogLine,
  type ReportedState,
  type TaskBackend,
  type TaskStateEvent,
} from "./backend.js";

/** Highest attempt number accepted (far above any retry policy; a guard against nonsense). */
export const maxAttemptNumber = 1_000_000;

/** Lines per StreamLogs message when not following (following sends each line as it comes). */
export const logBatchLines = 500;

function checkRunId(runId: string): void {
  if (!isDnsLabel(runId)) {
    throw new InvalidArgumentError(
      `run_id ${JSON.stringify(runId)} is not a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)`,
    );
  }
}

function checkTaskName(task: string, field = "task"): void {
  if (!isDnsLabel(task)) {
    throw new InvalidArgumentError(
      `${field} ${JSON.stringify(task)} is not a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)`,
    );
  }
}

function checkAttempt(attempt: number, allowZero: boolean): void {
  if (
    !Number.isSafeInteger(attempt) ||
    attempt < (allowZero ? 0 : 1) ||
    attempt > maxAttemptNumber
  ) {
    throw new InvalidArgumentError(
      `attempt ${attempt} must be a whole number from ${allowZero ? 0 : 1} to ${maxAttemptNumber}${allowZero ? " (0 = every attempt / the latest)" : ""}`,
    );
  }
}

/** Validates a LaunchTask request and turns it into the backend's LaunchSpec. */
export function launchSpecFromRequest(req: k8slauncher.LaunchTaskRequest): LaunchSpec {
  checkRunId(req.runId);
  if (req.task === undefined) throw new InvalidArgumentError("task is required");
  const task = taskFromProto(req.task);
  checkTaskName(task.name, "task.name");
  checkAttempt(req.attempt, false);
  if (task.image.trim() === "") {
    throw new InvalidArgumentError(`task ${task.name}: image is required`);
  }
  const expectedTaskId = taskIdOf(req.runId, task.name);
  if (req.taskId !== "" && req.taskId !== expectedTaskId) {
    throw new InvalidArgumentError(
      `task_id ${JSON.stringify(req.taskId)} does not match run ${req.runId} and task ${task.name} (expected ${expectedTaskId})`,
    );
  }
  const paths = req.paths;
  if (paths === undefined || !isAbsolute(paths.taskPath)) {
    throw new InvalidArgumentError(
      `paths.task_path must be an absolute path (the task's TASK_PATH), got ${JSON.stringify(paths?.taskPath ?? "")}`,
    );
  }
  for (const field of ["rootPath", "workPath", "dataPath", "runPath"] as const) {
    const value = paths[field];
    if (value !== "" && !isAbsolute(value)) {
      throw new InvalidArgumentError(
        `paths.${field} must be absolute, got ${JSON.stringify(value)}`,
      );
    }
  }
  return {
    runId: req.runId,
    pipeline: req.pipeline,
    commit: req.commit,
    task,
    taskId: expectedTaskId,
    attempt: req.attempt,
    paths: { ...paths },
  };
}

function logLineToProto(l: LogLine): k8slauncher.LogLine {
  return { pod: l.pod, container: l.container, line: l.line, time: l.time };
}

/**
 * K8sLauncherService over a backend. LaunchTask, CancelTask and DeleteRunObjects need the
 * `operator` role; StreamLogs and ListTaskEvents `viewer`.
 */
export function k8sLauncherService(backend: TaskBackend): ServiceRegistration {
  return service(
    K8sLauncherServiceService,
    {
      launchTask: unaryHandler(async (req): Promise<k8slauncher.LaunchTaskResponse> => {
        const result = await backend.launch(launchSpecFromRequest(req));
        return { objectName: result.objectName, alreadyExisted: result.alreadyExisted };
      }),
      cancelTask: unaryHandler(async (req): Promise<k8slauncher.CancelTaskResponse> => {
        checkRunId(req.runId);
        checkTaskName(req.task);
        checkAttempt(req.attempt, true);
        const deleted = await backend.cancel({
          runId: req.runId,
          task: req.task,
          ...(req.attempt > 0 ? { attempt: req.attempt } : {}),
        });
        return { deletedObjects: deleted };
      }),
      deleteRunObjects: unaryHandler(async (req): Promise<k8slauncher.DeleteRunObjectsResponse> => {
        checkRunId(req.runId);
        // The data directory is always the launcher's own `<DATA_PATH>/<run>`, never a caller's path.
        const { deleted, dataPurged } = await backend.deleteRun(req.runId, {
          purgeData: req.purgeData,
        });
        return { deletedObjects: deleted, dataPurged };
      }),
      streamLogs: serverStreamHandler(
        async function* (req, _call, signal): AsyncGenerator<k8slauncher.StreamLogsResponse> {
          checkRunId(req.runId);
          checkTaskName(req.task);
          checkAttempt(req.attempt, true);
          const lines = backend.logs(
            {
              runId: req.runId,
              task: req.task,
              ...(req.attempt > 0 ? { attempt: req.attempt } : {}),
            },
            {
              follow: req.follow,
              ...(req.tailLines !== undefined ? { tailLines: req.tailLines } : {}),
              ...(req.pod ? { pod: req.pod } : {}),
              ...(req.container ? { container: req.container } : {}),
              signal,
            },
          );
          let batch: k8slauncher.LogLine[] = [];
          for await (const line of lines) {
            batch.push(logLineToProto(line));
            if (req.follow || batch.length >= logBatchLines) {
              yield { lines: batch };
              batch = [];
            }
          }
          if (batch.length > 0) yield { lines: batch };
        },
      ),
      listTaskEvents: unaryHandler(async (req): Promise<k8slauncher.ListTaskEventsResponse> => {
        checkRunId(req.runId);
        checkTaskName(req.task);
        checkAttempt(req.attempt, true);
        const list = await backend.events({
          runId: req.runId,
          task: req.task,
          ...(req.attempt > 0 ? { attempt: req.attempt } : {}),
        });
        return {
          events: list.map((e) => ({
            time: e.time,
            type: e.type,
            reason: e.reason,
            message: e.message,
            objectKind: e.objectKind,
            objectName: e.objectName,
            source: e.source,
            count: e.count,
            attempt: e.attempt,
          })),
        };
      }),
    },
    {
      launchTask: "operator",
      cancelTask: "operator",
      deleteRunObjects: "operator",
      streamLogs: "viewer",
      listTaskEvents: "viewer",
    },
  );
}

const protoStates: Readonly<Record<ReportedState, common.TaskState>> = {
  RUNNING: common.TaskState.TASK_STATE_RUNNING,
  SUCCEEDED: common.TaskState.TASK_STATE_SUCCEEDED,
  FAILED: common.TaskState.TASK_STATE_FAILED,
  ERROR: common.TaskState.TASK_STATE_ERROR,
};

/**
 * The `sequence` of a task event: `attempt × 10 + 1` for RUNNING and `attempt × 10 + 2` for a
 * terminal state. It is derived from the observation alone, so a restarted launcher or a second
 * replica gives the same number for the same fact, and it grows across attempts as well as within
 * one (a scheduler applying only higher sequences never goes back from SUCCEEDED to RUNNING).
 */
export function eventSequence(e: Pick<TaskStateEvent, "attempt" | "state">): bigint {
  return BigInt(e.attempt) * 10n + (e.state === "RUNNING" ? 1n : 2n);
}

/** A backend state report as the `odin.events.v1.TaskEvent` published on NATS. */
export function taskEventOf(e: TaskStateEvent): events.TaskEvent {
  return {
    runId: e.runId,
    task: e.task,
    attempt: e.attempt,
    sequence: eventSequence(e),
    state: protoStates[e.state],
    exitCode: e.exitCode,
    reason: e.reason ?? "",
    message: e.message ?? "",
    objectName: e.objectName,
    time: e.time,
    outputsJson: e.outputsJson ?? "",
  };
}

/**
 * The `report` function to give a backend's `start`: publishes each state as a TaskEvent on
 * `odin.events.task.<run>` with the message id `eventId(e)` (`<run>.<task>.<attempt>.<state>`),
 * so the server drops a repeated report of the same fact within its duplicate window. A publish
 * that fails throws; the backend retries it.
 */
export function publishStateEvents(bus: EventBus): (e: TaskStateEvent) => Promise<void> {
  return async (e) => {
    await bus.publish(subjects.task(e.runId), events.TaskEvent.encode(taskEventOf(e)).finish(), {
      msgId: eventId(e),
    });
  };
}
