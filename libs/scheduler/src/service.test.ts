// WatchRun's opening snapshot over real gRPC: one part for a small run, and with
// task_states_first the run, then every task's state, then the task runs.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryEventBus } from "@odin/events";
import { loadPipeline, type Pipeline } from "@odin/pipeline-spec";
import { common, DagSchedulerServiceClient, type dagscheduler } from "@odin/proto";
import { MemoryKeyValueStore } from "@odin/run-store";
import { createClient, serverStream, silentLogger, startServer, unary } from "@odin/service-kit";
import { Scheduler } from "./scheduler.js";
import { dagSchedulerService } from "./service.js";
import { SchedulerStore } from "./store.js";

const text = `tasks:
- {name: first, image: i, command: c}
- {name: second, image: i, command: c, depends: first}
- {name: third, image: i, command: c, depends: first}
`;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function setUp() {
  const bus = new MemoryEventBus();
  cleanups.push(() => bus.close());
  const pipeline = loadPipeline(text, { file: "p/main.yml", path: "p" }).pipeline as Pipeline;
  const scheduler = new Scheduler({
    store: new SchedulerStore(new MemoryKeyValueStore()),
    bus,
    pipelines: {
      getPipeline: (_path, commit) =>
        Promise.resolve({
          commit: commit ?? "c".repeat(40),
          pipeline,
          problems: [],
          parameters: {},
        }),
    },
    checkouts: {
      acquire: (commit) => Promise.resolve({ commit, path: "/checkouts/c" }),
      release: () => Promise.resolve(),
    },
    // Launched tasks stay LAUNCHING: nothing reports on them.
    launcher: {
      launch: () => Promise.resolve({ objectName: "o" }),
      cancel: () => Promise.resolve(),
      deleteRun: () => Promise.resolve({ deleted: 0, dataPurged: false }),
    },
    dataPath: "/data/odin",
    logger: silentLogger,
  });
  await scheduler.start();
  cleanups.push(() => scheduler.close());
  const server = await startServer({
    name: "dag-scheduler",
    host: "127.0.0.1",
    port: 0,
    services: [dagSchedulerService(scheduler)],
    auth: "off",
    logger: silentLogger,
  });
  cleanups.push(() => server.close(100));
  const client = createClient(DagSchedulerServiceClient, { address: server.address, retries: 0 });
  cleanups.push(() => Promise.resolve(client.close()));
  const run = await scheduler.submit({ pipeline: "p", submittedBy: "t" });
  for (let i = 0; (await scheduler.get(run.id)).tasks[0]!.record.state !== "LAUNCHING"; i++) {
    if (i > 1000) throw new Error("the first task was never launched");
    await new Promise((r) => setTimeout(r, 10));
  }
  return { client, runId: run.id, scheduler };
}

/** The snapshot's parts, then the stream is cancelled. */
async function snapshot(
  client: DagSchedulerServiceClient,
  request: dagscheduler.WatchRunRequest,
): Promise<dagscheduler.RunSnapshot[]> {
  const parts: dagscheduler.RunSnapshot[] = [];
  for await (const m of serverStream(client, "watchRun", request)) {
    if (m.event?.$case !== "snapshot") break;
    parts.push(m.event.value);
    if (m.event.value.last) break;
  }
  return parts;
}

test("WatchRun's snapshot of a small run is one part: the run and every task run", async () => {
  const { client, runId } = await setUp();
  const parts = await snapshot(client, { runId, taskStatesFirst: false, maxSnapshotTaskRuns: 0 });
  assert.equal(parts.length, 1);
  assert.equal(parts[0]!.run?.id, runId);
  assert.deepEqual(
    parts[0]!.taskRuns.map((t) => t.task),
    ["first", "second", "third"],
  );
  assert.deepEqual(parts[0]!.taskStates, []);
  assert.equal(parts[0]!.last, true);
});

test("with task_states_first: the run, then every task's state in pipeline order, then the task runs", async () => {
  const { client, runId } = await setUp();
  const parts = await snapshot(client, { runId, taskStatesFirst: true, maxSnapshotTaskRuns: 0 });
  assert.equal(parts.length, 3);
  assert.equal(parts[0]!.run?.id, runId);
  assert.deepEqual(parts[0]!.taskRuns, []);
  assert.deepEqual(parts[1]!.taskStates, [
    common.TaskState.TASK_STATE_LAUNCHING,
    common.TaskState.TASK_STATE_PENDING,
    common.TaskState.TASK_STATE_PENDING,
  ]);
  assert.deepEqual(parts[1]!.taskRuns, []);
  assert.equal(parts[1]!.run, undefined);
  assert.deepEqual(
    parts[2]!.taskRuns.map((t) => t.task),
    ["first", "second", "third"],
  );
  assert.equal(parts[2]!.last, true);
});

test("with max_snapshot_task_runs below the run's size: the run, then every state as the last part; changes still carry task runs", async () => {
  const { client, runId, scheduler } = await setUp();
  const stream = serverStream(client, "watchRun", {
    runId,
    taskStatesFirst: true,
    maxSnapshotTaskRuns: 2,
  })[Symbol.asyncIterator]();
  const next = async (): Promise<dagscheduler.WatchRunResponse["event"]> =>
    ((await stream.next()).value as dagscheduler.WatchRunResponse).event;
  const first = await next();
  assert.equal(first?.$case === "snapshot" && first.value.run?.id, runId);
  const states = await next();
  assert.ok(states?.$case === "snapshot");
  assert.deepEqual(states.value.taskStates, [
    common.TaskState.TASK_STATE_LAUNCHING,
    common.TaskState.TASK_STATE_PENDING,
    common.TaskState.TASK_STATE_PENDING,
  ]);
  assert.deepEqual(states.value.taskRuns, []);
  assert.equal(states.value.last, true);
  // After the snapshot a change is a whole task run, as without the limit.
  await scheduler.cancel(runId);
  let change = await next();
  while (change?.$case !== "taskRun") change = await next();
  assert.equal(change.value.runId, runId);
  assert.ok(["first", "second", "third"].includes(change.value.task));
  await stream.return?.(undefined);

  // A run no larger than the limit is sent whole.
  const whole = await snapshot(client, { runId, taskStatesFirst: true, maxSnapshotTaskRuns: 3 });
  assert.deepEqual(
    whole.at(-1)!.taskRuns.map((t) => t.task),
    ["first", "second", "third"],
  );
});

test("GetRun naming tasks: just those task runs, in pipeline order, while the run runs and after it ended", async () => {
  const { client, runId, scheduler } = await setUp();
  const named = (tasks: string[]) =>
    unary(client, "getRun", { runId, taskPageSize: 0, taskPageToken: "", tasks });
  const running = await named(["third", "first"]);
  assert.equal(running.run?.id, runId);
  assert.deepEqual(
    running.taskRuns.map((t) => [t.task, t.state]),
    [
      ["first", common.TaskState.TASK_STATE_LAUNCHING],
      ["third", common.TaskState.TASK_STATE_PENDING],
    ],
  );
  assert.equal(running.taskRuns[0]!.taskId, `${runId}--first`);

  await scheduler.cancel(runId);
  for (let i = 0; (await scheduler.getRun(runId)).state !== "CANCELLED"; i++) {
    if (i > 1000) throw new Error("the run was never cancelled");
    await new Promise((r) => setTimeout(r, 10));
  }
  const ended = await named(["second"]);
  assert.deepEqual(
    ended.taskRuns.map((t) => [t.task, t.state]),
    [["second", common.TaskState.TASK_STATE_CANCELLED]],
  );

  await assert.rejects(named(["first", "fourth"]), /INVALID_ARGUMENT.*no task "fourth"/);
  await assert.rejects(
    named(Array.from({ length: 1001 }, (_, i) => `t${i}`)),
    /INVALID_ARGUMENT.*at most 1000/,
  );
});

test("WatchRuns: the newest page with each run's task counts, then runs as they are created and change", async () => {
  const { client, runId, scheduler } = await setUp();
  const stream = serverStream(client, "watchRuns", {
    pipeline: "",
    states: [],
    labelSelector: "",
    pageSize: 10,
    pageToken: "",
  })[Symbol.asyncIterator]();
  const first = (await stream.next()).value as dagscheduler.WatchRunsResponse;
  assert.equal(first.event?.$case, "page");
  const page = first.event.$case === "page" ? first.event.value : undefined;
  assert.deepEqual(
    page?.runs.map((r) => r.id),
    [runId],
  );
  assert.equal(page?.runs[0]?.taskCounts?.launching, 1);
  assert.equal(page?.runs[0]?.taskCounts?.pending, 2);

  const second = await scheduler.submit({ pipeline: "p", submittedBy: "t" });
  for (;;) {
    const m = (await stream.next()).value as dagscheduler.WatchRunsResponse;
    if (m.event?.$case === "run" && m.event.value.id === second.id) break;
  }
  await scheduler.cancel(runId);
  for (;;) {
    const m = (await stream.next()).value as dagscheduler.WatchRunsResponse;
    if (
      m.event?.$case === "run" &&
      m.event.value.id === runId &&
      m.event.value.state === common.RunState.RUN_STATE_CANCELLED
    ) {
      // Kept on the run when it ends.
      assert.equal(m.event.value.taskCounts?.cancelled, 3);
      break;
    }
  }
  await stream.return?.();
});

test("ListRuns pages with tokens that stay put while runs are created; a bad token is refused", async () => {
  const { client, scheduler } = await setUp();
  for (let i = 0; i < 3; i++) await scheduler.submit({ pipeline: "p", submittedBy: "t" });
  const list = (pageToken: string) =>
    unary(client, "listRuns", {
      pipeline: "",
      states: [],
      labelSelector: "",
      pageSize: 2,
      pageToken,
    });
  let first = await list("");
  for (let i = 0; first.runs.length < 2 || first.nextPageToken === ""; i++) {
    assert.ok(i < 100, "the runs never showed in the list");
    await new Promise((r) => setTimeout(r, 20));
    first = await list("");
  }
  await scheduler.submit({ pipeline: "p", submittedBy: "t" });
  const second = await list(first.nextPageToken);
  const ids = [...first.runs, ...second.runs].map((r) => r.id);
  assert.equal(new Set(ids).size, 4, "no run twice across pages");
  await assert.rejects(list("not-a-token"), /page_token is not one this server gave out/);
});
