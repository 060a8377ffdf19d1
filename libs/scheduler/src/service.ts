import { checkRunId as checkRunIdValue, isFinishedRun } from "@odin/pipeline-spec";
import {
  DagSchedulerServiceService,
  runStateFromProto,
  taskStateToProto,
  type dagscheduler,
} from "@odin/proto";
import {
  callerOf,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  service,
  serverStreamHandler,
  unaryHandler,
  type ServiceRegistration,
} from "@odin/service-kit";
import {
  catchupFromProto,
  concurrencyFromProto,
  runToProto,
  scheduleToProto,
  taskRunToProto,
} from "./convert.js";
import type { ScheduleRunner } from "./schedules.js";
import { triggerToProto, type TriggerRunner } from "./triggers.js";
import type { RunChange, Scheduler } from "./scheduler.js";
import {
  cursorToken,
  type LabelRequirement,
  matches,
  parseCursor,
  parseLabelSelector,
  type RunFilter,
} from "./run-index.js";

function checkRunId(id: string): string {
  checkRunIdValue(id);
  return id;
}

function parseSelector(selector: string): LabelRequirement[] {
  try {
    return parseLabelSelector(selector);
  } catch (err) {
    throw new InvalidArgumentError(
      `label selector "${selector}": ${(err as Error).message}; use key=value, key!=value, key in (a,b), key notin (a,b), key or !key, joined by commas`,
    );
  }
}

/** The most tasks one GetRun may name. */
const maxTasksNamed = 1000;

/** Task runs per part of a WatchRun snapshot (so no message grows with the run). */
const snapshotPartSize = 1000;

const pageOf = (token: string): number => {
  if (token === "") return 0;
  const n = Number(token);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError("page_token is not one this server gave out");
  return n;
};

/** How often WatchRuns looks for changed task counts of the runs being run. */
const runsTickMs = 1000;

/** ListRuns' (and WatchRuns' opening) page: the filter asked for and the page, from memory. */
function listPage(
  scheduler: Scheduler,
  req: Pick<
    dagscheduler.ListRunsRequest,
    "pipeline" | "states" | "labelSelector" | "pageSize" | "pageToken"
  >,
): { filter: RunFilter; response: dagscheduler.ListRunsResponse } {
  const filter: RunFilter = {
    pipeline: req.pipeline || undefined,
    states: req.states.map((s) => runStateFromProto(s)).filter((s) => s !== undefined),
    labels: parseSelector(req.labelSelector),
  };
  const after = req.pageToken === "" ? undefined : parseCursor(req.pageToken);
  if (req.pageToken !== "" && after === undefined)
    throw new InvalidArgumentError(
      "page_token is not one this server gave out; leave it empty for the first page",
    );
  const { runs, next } = scheduler.list(filter, req.pageSize || 100, after);
  return {
    filter,
    response: {
      runs: runs.map((r) => runToProto(scheduler.explain(r))),
      nextPageToken: next ? cursorToken(next) : "",
    },
  };
}

/**
 * DagSchedulerService over a scheduler and its schedules: handlers validate, call the scheduler,
 * map to the wire. Without `schedules` the schedule calls answer FAILED_PRECONDITION, and without
 * `triggers` ListTriggers does.
 */
export function dagSchedulerService(
  scheduler: Scheduler,
  schedules?: ScheduleRunner,
  triggers?: TriggerRunner,
): ServiceRegistration {
  const runner = (): ScheduleRunner => {
    if (!schedules) throw new FailedPreconditionError("this dag-scheduler does not run schedules");
    return schedules;
  };
  const named = (name: string): string => {
    if (!name)
      throw new InvalidArgumentError('name is required ("odin schedule ls" lists the schedules)');
    return name;
  };
  return service(
    DagSchedulerServiceService,
    {
      submitRun: unaryHandler(async (req, call): Promise<dagscheduler.SubmitRunResponse> => {
        if (!req.pipeline)
          throw new InvalidArgumentError(
            "pipeline is required (its directory in the repository, e.g. alice/sst2)",
          );
        const run = await scheduler.submit({
          pipeline: req.pipeline,
          commit: req.commit,
          labels: req.labels,
          requestId: req.requestId,
          submittedBy: callerOf(call).subject,
          parameters: req.parameters,
          noCache: req.noCache,
        });
        return { run: runToProto(scheduler.explain(run)) };
      }),
      getRun: unaryHandler(async (req): Promise<dagscheduler.GetRunResponse> => {
        const runId = checkRunId(req.runId);
        if (req.tasks.length > 0) {
          if (req.tasks.length > maxTasksNamed)
            throw new InvalidArgumentError(
              `${req.tasks.length} tasks named; name at most ${maxTasksNamed} at once`,
            );
          const view = await scheduler.tasksNamed(runId, req.tasks);
          if (view.unknown.length > 0)
            throw new InvalidArgumentError(
              `run ${runId} has no task ${view.unknown
                .slice(0, 3)
                .map((n) => JSON.stringify(n.slice(0, 80)))
                .join(
                  ", ",
                )}${view.unknown.length > 3 ? ` (and ${view.unknown.length - 3} more)` : ""} — its pipeline ${view.run.pipeline} does not declare it`,
            );
          return {
            run: runToProto(scheduler.explain(view.run)),
            taskRuns: view.tasks.map((t) => taskRunToProto(runId, t.name, t.record)),
            nextTaskPageToken: "",
          };
        }
        const size = req.taskPageSize || 10_000;
        const start = pageOf(req.taskPageToken);
        const view = await scheduler.getPage(runId, start, size);
        return {
          run: runToProto(scheduler.explain(view.run)),
          taskRuns: view.tasks.map((t) => taskRunToProto(view.run.id, t.name, t.record)),
          nextTaskPageToken: start + size < view.taskCount ? String(start + size) : "",
        };
      }),
      listRuns: unaryHandler(
        (req): dagscheduler.ListRunsResponse => listPage(scheduler, req).response,
      ),
      watchRuns: serverStreamHandler(
        async function* (req, _call, signal): AsyncGenerator<dagscheduler.WatchRunsResponse> {
          const { filter, response } = listPage(scheduler, req);
          // Changes after the page: a run that matches is sent whole; one that stopped matching
          // (or was removed) by its id. Runs being run are also sent when their counts changed,
          // at most once a second.
          const queue: dagscheduler.WatchRunsResponse[] = [];
          let wake: (() => void) | undefined;
          const push = (event: dagscheduler.WatchRunsResponse["event"]): void => {
            queue.push({ event });
            wake?.();
          };
          const shown = new Set(response.runs.map((r) => r.id));
          const stop = scheduler.followRuns((id, record) => {
            if (record && matches(record, filter)) {
              shown.add(id);
              push({ $case: "run", value: runToProto(scheduler.explain(record)) });
            } else if (shown.delete(id)) push({ $case: "removedRunId", value: id });
          });
          const sent = new Map<string, string>();
          const tick = setInterval(() => {
            for (const run of scheduler.activeRuns()) {
              if (!matches(run, filter)) continue;
              const explained = scheduler.explain(run);
              const counts = JSON.stringify(explained.taskCounts);
              if (sent.get(run.id) === counts) continue;
              sent.set(run.id, counts);
              shown.add(run.id);
              push({ $case: "run", value: runToProto(explained) });
            }
          }, runsTickMs);
          try {
            yield { event: { $case: "page", value: response } };
            while (!signal.aborted) {
              if (queue.length === 0) {
                await new Promise<void>((resolve) => {
                  wake = resolve;
                  signal.addEventListener("abort", () => resolve(), { once: true });
                });
                wake = undefined;
                continue;
              }
              yield queue.shift()!;
            }
          } finally {
            clearInterval(tick);
            stop();
          }
        },
      ),
      watchRun: serverStreamHandler(
        async function* (req, _call, signal): AsyncGenerator<dagscheduler.WatchRunResponse> {
          const runId = checkRunId(req.runId);
          const queue: RunChange[] = [];
          let wake: (() => void) | undefined;
          const stop = scheduler.follow(runId, (change) => {
            queue.push(change);
            wake?.();
          });
          try {
            const view = await scheduler.watchView(runId);
            const run = view.run;
            // A large run's record goes out alone first, so a client can fetch what it needs
            // (the pipeline's graph) while the task runs are still being listed and sent.
            const alone = run.taskCount > snapshotPartSize || req.taskStatesFirst;
            if (alone)
              yield {
                event: {
                  $case: "snapshot",
                  value: {
                    run: runToProto(scheduler.explain(run)),
                    taskRuns: [],
                    last: false,
                    taskStates: [],
                  },
                },
              };
            const tasks = await view.tasks();
            // A client that reads task runs as it shows them gets a large run's states alone.
            const statesOnly =
              req.taskStatesFirst &&
              req.maxSnapshotTaskRuns > 0 &&
              tasks.length > req.maxSnapshotTaskRuns;
            if (req.taskStatesFirst)
              yield {
                event: {
                  $case: "snapshot",
                  value: {
                    run: undefined,
                    taskRuns: [],
                    last: statesOnly,
                    taskStates: tasks.map((t) => taskStateToProto(t.record.state)),
                  },
                },
              };
            const parts = statesOnly ? 0 : Math.max(1, Math.ceil(tasks.length / snapshotPartSize));
            for (let p = 0; p < parts; p++) {
              // Other calls (the client's request for the graph it will draw) are served between
              // the parts of a large snapshot, not after all of them.
              if (p > 0) await new Promise((resolve) => setImmediate(resolve));
              yield {
                event: {
                  $case: "snapshot",
                  value: {
                    run: p === 0 && !alone ? runToProto(scheduler.explain(run)) : undefined,
                    taskRuns: tasks
                      .slice(p * snapshotPartSize, (p + 1) * snapshotPartSize)
                      .map((t) => taskRunToProto(runId, t.name, t.record)),
                    last: p === parts - 1,
                    taskStates: [],
                  },
                },
              };
            }
            let finished = isFinishedRun(run.state);
            while (!finished && !signal.aborted) {
              if (queue.length === 0) {
                await new Promise<void>((resolve) => {
                  wake = resolve;
                  signal.addEventListener("abort", () => resolve(), { once: true });
                });
                wake = undefined;
                continue;
              }
              const change = queue.shift()!;
              if (change.kind === "lost") {
                throw new NotFoundError(
                  `run ${runId} is gone: NATS lost its storage while it ran; submit it again`,
                );
              } else if (change.kind === "run") {
                yield { event: { $case: "run", value: runToProto(change.record) } };
                finished = isFinishedRun(change.record.state);
              } else {
                yield {
                  event: {
                    $case: "taskRun",
                    value: taskRunToProto(runId, change.task, change.record),
                  },
                };
              }
            }
          } finally {
            stop();
          }
        },
      ),
      cancelRun: unaryHandler(async (req): Promise<dagscheduler.CancelRunResponse> => ({
        run: runToProto(await scheduler.cancel(checkRunId(req.runId), req.reason)),
      })),
      retryRun: unaryHandler(async (req): Promise<dagscheduler.RetryRunResponse> => ({
        run: runToProto(await scheduler.retry(checkRunId(req.runId), req.requestId || undefined)),
      })),
      listCacheEntries: unaryHandler(
        async (req): Promise<dagscheduler.ListCacheEntriesResponse> => {
          const entries = await scheduler.listCache(
            { pipeline: req.pipeline || undefined, task: req.task || undefined },
            Math.min(req.limit || 1000, 10_000),
          );
          return {
            entries: entries.map((e) => ({
              key: e.key,
              pipeline: e.pipeline,
              task: e.task,
              runId: e.runId,
              attempt: e.attempt,
              createTime: new Date(e.createTime),
              image: e.image,
              outputs: e.outputs.map((o) => ({ ...o })),
              hits: e.hits ?? 0,
            })),
          };
        },
      ),
      deleteCacheEntries: unaryHandler(
        async (req): Promise<dagscheduler.DeleteCacheEntriesResponse> => {
          if (!req.all && req.keys.length === 0 && !req.pipeline)
            throw new InvalidArgumentError(
              "say which cache entries to remove: keys, a pipeline (and task), or all",
            );
          if (req.task && !req.pipeline)
            throw new InvalidArgumentError(
              "task needs pipeline (task names repeat across pipelines)",
            );
          const deleted = await scheduler.deleteCache(
            req.all
              ? {}
              : {
                  keys: req.keys,
                  pipeline: req.pipeline || undefined,
                  task: req.task || undefined,
                },
          );
          return { deleted };
        },
      ),
      deleteRun: unaryHandler(async (req): Promise<dagscheduler.DeleteRunResponse> => {
        const r = await scheduler.delete(checkRunId(req.runId), {
          purgeRecords: req.purgeRecords,
          purgeData: req.purgeData,
        });
        return {
          deletedObjects: r.deleted,
          recordsPurged: req.purgeRecords,
          dataPurged: r.dataPurged,
        };
      }),
      createSchedule: unaryHandler(
        async (req, call): Promise<dagscheduler.CreateScheduleResponse> => {
          if (!req.pipeline)
            throw new InvalidArgumentError(
              "pipeline is required (its directory in the repository, e.g. alice/sst2)",
            );
          if (!req.cron)
            throw new InvalidArgumentError('cron is required, e.g. "0 2 * * *" (02:00 every day)');
          const s = runner();
          const record = await s.create({
            name: named(req.name),
            pipeline: req.pipeline,
            cron: req.cron,
            timezone: req.timezone,
            parameters: req.parameters ?? {},
            catchup: catchupFromProto(req.catchup),
            concurrency: concurrencyFromProto(req.concurrency),
            paused: req.paused,
            notify: req.notify,
            createdBy: callerOf(call).subject,
            requestId: req.requestId || undefined,
          });
          return { schedule: scheduleToProto(await s.viewOf(record)) };
        },
      ),
      listSchedules: unaryHandler(async (req): Promise<dagscheduler.ListSchedulesResponse> => ({
        schedules: (await runner().list(req.pipeline)).map(scheduleToProto),
      })),
      pauseSchedule: unaryHandler(async (req): Promise<dagscheduler.PauseScheduleResponse> => ({
        schedule: scheduleToProto(await runner().setPaused(named(req.name), true)),
      })),
      resumeSchedule: unaryHandler(async (req): Promise<dagscheduler.ResumeScheduleResponse> => ({
        schedule: scheduleToProto(await runner().setPaused(named(req.name), false)),
      })),
      deleteSchedule: unaryHandler(async (req): Promise<dagscheduler.DeleteScheduleResponse> => {
        await runner().remove(named(req.name));
        return {};
      }),
      listTriggers: unaryHandler(async (req): Promise<dagscheduler.ListTriggersResponse> => {
        if (!triggers)
          throw new FailedPreconditionError("this dag-scheduler does not run commit triggers");
        const { triggers: views, checkedCommit } = await triggers.list(req.pipeline);
        return { triggers: views.map(triggerToProto), checkedCommit };
      }),
    },
    {
      listSchedules: "viewer",
      createSchedule: "operator",
      pauseSchedule: "operator",
      resumeSchedule: "operator",
      deleteSchedule: "operator",
      getRun: "viewer",
      listRuns: "viewer",
      watchRun: "viewer",
      watchRuns: "viewer",
      submitRun: "operator",
      cancelRun: "operator",
      retryRun: "operator",
      deleteRun: "operator",
      listCacheEntries: "viewer",
      deleteCacheEntries: "operator",
      listTriggers: "viewer",
    },
  );
}
