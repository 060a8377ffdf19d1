// K8sLauncherService end to end over loopback gRPC: the Kubernetes backend on kube-sim, task events
// on a real nats-server, a grpc-js client as dag-scheduler or the CLI would use it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { manifestName } from "@odin/k8s-manifests";
import { K8sLauncherServiceClient, common, taskToProto, type k8slauncher } from "@odin/proto";
import {
  createClient,
  serverStream,
  silentLogger,
  startServer,
  unary,
  type OdinServer,
} from "@odin/service-kit";
import { LauncherHarness, launchSpecOf, simTask } from "./testing/harness.js";
import { k8sLauncherService, taskEventOf } from "./service.js";

// gRPC status codes (grpc-js is the kit's dependency, not this package's).
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;

describe("K8sLauncherService over gRPC", () => {
  let h: LauncherHarness;
  let server: OdinServer;
  let client: K8sLauncherServiceClient;
  before(async () => {
    h = await LauncherHarness.start();
    const backend = await h.backend();
    server = await startServer({
      name: "k8s-launcher",
      host: "127.0.0.1",
      port: 0,
      auth: "off",
      services: [k8sLauncherService(backend)],
      logger: silentLogger,
    });
    client = createClient(K8sLauncherServiceClient, { address: server.address, retries: 0 });
  });
  after(async () => {
    client.close();
    await server.close(0);
    await h.close();
  });

  function request(runId: string, name: string, script = {}, fields = {}, attempt = 1) {
    const spec = launchSpecOf(runId, simTask(name, script, fields), attempt);
    return {
      runId,
      pipeline: spec.pipeline,
      commit: spec.commit,
      task: taskToProto(spec.task),
      taskId: `${spec.runId}--${spec.task.name}`,
      attempt,
      paths: spec.paths,
    } satisfies k8slauncher.LaunchTaskRequest;
  }

  test("LaunchTask creates the object and its events arrive on NATS", async () => {
    const runId = h.runId("grpc");
    const req = request(runId, "train", { runMs: 100, exitCode: 2, logs: ["a", "b"] });
    const res = await unary(client, "launchTask", req);
    assert.equal(res.objectName, manifestName(runId, simTask("train"), 1));
    assert.equal(res.alreadyExisted, false);
    assert.equal((await unary(client, "launchTask", req)).alreadyExisted, true);
    const failed = await h.reported(runId, "train", "FAILED");
    assert.equal(failed.state, common.TaskState.TASK_STATE_FAILED);
    assert.equal(failed.exitCode, 2);
    assert.equal(failed.objectName, res.objectName);
    assert.ok(failed.time instanceof Date);

    const batches: k8slauncher.StreamLogsResponse[] = [];
    for await (const b of serverStream(client, "streamLogs", {
      runId,
      task: "train",
      attempt: 0,
      follow: false,
      tailLines: undefined,
      pod: "",
      container: "",
    })) {
      batches.push(b);
    }
    assert.deepEqual(
      batches.flatMap((b) => b.lines.map((l) => [l.pod, l.line])),
      [
        [res.objectName, "a"],
        [res.objectName, "b"],
      ],
    );
    const { events } = await unary(client, "listTaskEvents", { runId, task: "train", attempt: 1 });
    assert.ok(events.some((e) => e.reason === "Scheduled" && e.objectName === res.objectName));
  });

  test("CancelTask and DeleteRunObjects", async () => {
    const runId = h.runId("grpc");
    mkdirSync(join(h.dataRoot, runId), { recursive: true });
    await unary(client, "launchTask", request(runId, "a", { runForever: true }));
    await unary(
      client,
      "launchTask",
      request(runId, "b", { runForever: true }, { resourceType: "Job" }),
    );
    await h.reported(runId, "a", "RUNNING");
    assert.deepEqual(await unary(client, "cancelTask", { runId, task: "a", attempt: 0 }), {
      deletedObjects: 1,
    });
    assert.deepEqual(await unary(client, "deleteRunObjects", { runId, purgeData: true }), {
      deletedObjects: 1,
      dataPurged: true,
    });
    assert.equal(existsSync(join(h.dataRoot, runId)), false);
  });

  test("requests are validated before anything is created", async () => {
    const runId = h.runId("grpc");
    const cases: [string, k8slauncher.LaunchTaskRequest, RegExp][] = [
      ["run id", { ...request(runId, "x"), runId: "Not_A_Label" }, /run_id/],
      ["attempt 0", { ...request(runId, "x"), attempt: 0 }, /attempt 0/],
      ["task id", { ...request(runId, "x"), taskId: "other--x" }, /task_id/],
      [
        "relative task path",
        { ...request(runId, "x"), paths: { ...request(runId, "x").paths, taskPath: "rel/x" } },
        /task_path/,
      ],
      ["no task", { ...request(runId, "x"), task: undefined }, /task is required/],
    ];
    for (const [what, req, message] of cases) {
      await assert.rejects(
        unary(client, "launchTask", req),
        (err: { code?: number; details?: string }) => {
          assert.equal(err.code, INVALID_ARGUMENT, what);
          assert.match(err.details ?? "", message, what);
          return true;
        },
      );
    }
    await assert.rejects(unary(client, "cancelTask", { runId, task: "Bad.Name", attempt: 0 }), {
      code: INVALID_ARGUMENT,
    });
    assert.deepEqual(
      await unary(client, "listTaskEvents", { runId, task: "nothing", attempt: 0 }),
      { events: [] },
      "events of an unknown task: an empty list",
    );
    await assert.rejects(
      (async () => {
        for await (const _ of serverStream(client, "streamLogs", {
          runId,
          task: "nothing",
          attempt: 0,
          follow: false,
          tailLines: undefined,
          pod: "",
          container: "",
        }));
      })(),
      { code: NOT_FOUND },
    );
  });
});

test("a task event keeps exit code 0 and maps the state", () => {
  const e = taskEventOf({
    runId: "r",
    task: "t",
    attempt: 3,
    state: "SUCCEEDED",
    objectName: "o",
    time: new Date(0),
    exitCode: 0,
  });
  assert.equal(e.exitCode, 0, "exit code 0 is kept, not dropped as a default");
  assert.equal(e.state, common.TaskState.TASK_STATE_SUCCEEDED);
});
