// The K8sLauncherService over a TaskBackend (Kubernetes or local processes): handlers validate
// the request, call the backend and map the result; errors are domain errors the kit maps to
// gRPC statuses. `publishStateEvents` is how a backend's state reports reach the event bus.
import { subjects, type EventBus } from "@odin/events";
import {
  checkRunId,
  checkTaskName,
  taskId as taskIdOf,
  type LaunchSpec,
} from "@odin/pipeline-spec";
import {
  events,
  K8sLauncherServiceService,
  taskFromProto,
  taskStateToProto,
  type k8slauncher,
} from "@odin/proto";
import {
  InvalidArgumentError,
  serverStreamHandler,
  service,
  unaryHandler,
  type ServiceRegistration,
} from "@odin/service-kit";
import { eventId, type LogLine, type TaskBackend, type TaskStateEvent } from "./backend.js";
import { Launcher } from "./launcher.js";
import { RunData, type RunFile, type RunDataOptions } from "./run-data.js";

const runFileTypes = {
  file: 1,
  directory: 2,
  symlink: 3,
  other: 4,
} as const satisfies Record<RunFile["type"], k8slauncher.RunFileType>;

function runFileToProto(f: RunFile): k8slauncher.RunFile {
  return {
    path: f.path,
    type: runFileTypes[f.type],
    size: BigInt(f.size),
    modifyTime: f.modifyTime,
  };
}

/** Lines per StreamLogs message when not following (following sends each line as it comes). */
export const logBatchLines = 500;

/** Turns a LaunchTask request into the launch it asks for (the Launcher checks ids and paths). */
export function launchSpecFromRequest(req: k8slauncher.LaunchTaskRequest): LaunchSpec {
  if (req.task === undefined) throw new InvalidArgumentError("task is required");
  const task = taskFromProto(req.task);
  checkRunId(req.runId);
  checkTaskName(task.name, "task.name");
  const expectedTaskId = taskIdOf(req.runId, task.name);
  if (req.taskId !== "" && req.taskId !== expectedTaskId) {
    throw new InvalidArgumentError(
      `task_id ${JSON.stringify(req.taskId)} does not match run ${req.runId} and task ${task.name} (expected ${expectedTaskId})`,
    );
  }
  if (req.paths === undefined) {
    throw new InvalidArgumentError("paths is required (the task's ROOT_PATH … TASK_PATH)");
  }
  return {
    runId: req.runId,
    pipeline: req.pipeline,
    commit: req.commit,
    task,
    attempt: req.attempt,
    paths: { ...req.paths },
  };
}

function logLineToProto(l: LogLine): k8slauncher.LogLine {
  return { pod: l.pod, container: l.container, line: l.line, time: l.time };
}

/**
 * K8sLauncherService over a backend, through the same {@link Launcher} embedded mode uses.
 * LaunchTask, CancelTask, HashFiles and DeleteRunObjects need the `operator` role; StreamLogs,
 * ListTaskEvents, ListRunFiles, DownloadRunFiles and ListGpuNodes `viewer`. Run data is read from
 * `options.dataRoot` (the launcher's DATA_PATH).
 */
export function k8sLauncherService(
  backend: TaskBackend | Launcher,
  options: RunDataOptions & { readRoots?: readonly string[] } = {},
): ServiceRegistration {
  const launcher = backend instanceof Launcher ? backend : new Launcher(backend, options);
  const runData = new RunData(options);
  return service(
    K8sLauncherServiceService,
    {
      launchTask: unaryHandler(async (req): Promise<k8slauncher.LaunchTaskResponse> => {
        const result = await launcher.launch(launchSpecFromRequest(req));
        return { objectName: result.objectName, alreadyExisted: result.alreadyExisted };
      }),
      cancelTask: unaryHandler(async (req): Promise<k8slauncher.CancelTaskResponse> => {
        const deleted = await launcher.cancel(req.runId, req.task, req.attempt);
        return { deletedObjects: deleted };
      }),
      deleteRunObjects: unaryHandler(async (req): Promise<k8slauncher.DeleteRunObjectsResponse> => {
        // The data directory is always the launcher's own `<DATA_PATH>/<run>`, never a caller's path.
        const { deleted, dataPurged } = await launcher.deleteRun(req.runId, req.purgeData);
        return { deletedObjects: deleted, dataPurged };
      }),
      streamLogs: serverStreamHandler(
        async function* (req, _call, signal): AsyncGenerator<k8slauncher.StreamLogsResponse> {
          const lines = launcher.logs(
            { runId: req.runId, task: req.task, attempt: req.attempt },
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
      hashFiles: unaryHandler(async (req): Promise<k8slauncher.HashFilesResponse> => {
        if (req.paths.length + req.links.length > 10_000)
          throw new InvalidArgumentError("HashFiles takes at most 10,000 paths and links at once");
        return { digests: await launcher.hashFiles(req.paths, req.links) };
      }),
      listTaskEvents: unaryHandler(async (req): Promise<k8slauncher.ListTaskEventsResponse> => {
        const list = await launcher.events({
          runId: req.runId,
          task: req.task,
          attempt: req.attempt,
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
      listRunFiles: unaryHandler(async (req): Promise<k8slauncher.ListRunFilesResponse> => {
        const listed = await runData.list(req.runId, req.path, req.recursive);
        return {
          files: listed.files.map(runFileToProto),
          truncated: listed.truncated,
          runPath: listed.runPath,
        };
      }),
      downloadRunFiles: serverStreamHandler(
        async function* (req): AsyncGenerator<k8slauncher.DownloadRunFilesResponse> {
          for await (const chunk of runData.download(req.runId, req.path, Number(req.maxBytes))) {
            yield {
              file: "file" in chunk ? runFileToProto(chunk.file) : undefined,
              data: Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength),
            };
          }
        },
      ),
      listGpuNodes: unaryHandler(async (req): Promise<k8slauncher.ListGpuNodesResponse> => {
        const backend = launcher.backend;
        if (!backend.gpuNodes)
          return {
            backend: "local",
            note: "the local backend runs tasks as processes on this machine and has no GPU inventory; GPUs are listed when tasks run on Kubernetes (odin server --kube, or the deployed services)",
            nodes: [],
          };
        const nodes = await backend.gpuNodes({ allNodes: req.allNodes });
        return { backend: "kubernetes", note: "", nodes };
      }),
    },
    {
      launchTask: "operator",
      hashFiles: "operator",
      cancelTask: "operator",
      deleteRunObjects: "operator",
      streamLogs: "viewer",
      listTaskEvents: "viewer",
      listRunFiles: "viewer",
      downloadRunFiles: "viewer",
      listGpuNodes: "viewer",
    },
    // Called by the schedulers for every task: logged at info only when they fail.
    ["launchTask", "hashFiles", "cancelTask"],
  );
}

/** A backend state report as the `odin.events.v1.TaskEvent` published on NATS. */
export function taskEventOf(e: TaskStateEvent): events.TaskEvent {
  return {
    runId: e.runId,
    task: e.task,
    attempt: e.attempt,
    state: taskStateToProto(e.state),
    exitCode: e.exitCode,
    reason: e.reason ?? "",
    message: e.message ?? "",
    objectName: e.objectName,
    time: e.time,
    outputsJson: e.outputsJson ?? "",
    imageDigest: e.imageDigest ?? "",
  };
}

/**
 * The `report` function to give a backend's `start`: publishes each state as a TaskEvent on
 * `odin.events.task.<partition>.<run>` (`subjects.task`) with the message id `eventId(e)` (`<run>.<task>.<attempt>.<state>`),
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
