// The generated contracts work end to end: every service served and called over a real loopback
// socket with grpc-js, and messages survive the wire with their bigints, timestamps, enums, optional
// zeros and oneofs intact.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  credentials,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from "@grpc/grpc-js";
import {
  common,
  type dagscheduler,
  DagSchedulerServiceClient,
  DagSchedulerServiceService,
  type DagSchedulerServiceServer,
  Duration,
  events,
  type k8slauncher,
  K8sLauncherServiceClient,
  K8sLauncherServiceService,
  type K8sLauncherServiceServer,
  type pipelineregistry,
  PipelineRegistryServiceClient,
  PipelineRegistryServiceService,
  type PipelineRegistryServiceServer,
  type reposync,
  RepoSyncServiceClient,
  RepoSyncServiceService,
  type RepoSyncServiceServer,
} from "./index.js";

/** A task with every field set to a non-default value (zeros only where presence is the point). */
function fullTask(): common.Task {
  return {
    name: "train-sst2-2",
    image: "mead-ml/mead-gpu:1.3.0",
    command: ["mead-train"],
    args: ["--config", "/data/pipelines/sst2/sst2.json", "--label", "sst2-k3x9q--train"],
    depends: ["hello-python", "train-sst2-1"],
    mounts: [
      { name: "data", path: "/data", claim: "myclaim" },
      { name: "dshm", path: "/dev/shm", claim: "" },
    ],
    ephemeralVolumes: [{ name: "dshm", type: "emptyDir", medium: "Memory", sizeLimit: "1Gi" }],
    secrets: [{ name: "ssh-key", path: "/etc/odind/identity", subPath: "identity", mode: 0o400 }],
    configMaps: [{ name: "ssh-config", path: "/etc/ssh/ssh_config", subPath: "config" }],
    numGpus: 2,
    cpu: { limits: "4.5", requests: "1.0" },
    memory: { limits: "16Gi", requests: "8Gi" },
    // run_as_user 0 (root) must survive as "set to 0", not collapse into "unset".
    securityContext: { fsGroup: 1152n, runAsUser: 0n, runAsGroup: 1000n },
    pullPolicy: common.PullPolicy.PULL_POLICY_ALWAYS,
    nodeSelector: { "nvidia.com/gpu.product": "A100" },
    resourceType: common.ResourceType.RESOURCE_TYPE_PYTORCH_JOB,
    numWorkers: 4,
    inputs: ["/data/sst2/train.txt", "select.outputs.selected"],
    outputs: { model: "/data/models/sst2" },
    env: { PYTHONUNBUFFERED: "1" },
    tolerations: [
      {
        key: "nvidia.com/gpu",
        operator: common.TolerationOperator.TOLERATION_OPERATOR_EXISTS,
        value: "",
        effect: common.TolerationEffect.TOLERATION_EFFECT_NO_EXECUTE,
        tolerationSeconds: 300n,
      },
    ],
    labels: { team: "nlp" },
    annotations: { "odin.example/owner": "alice" },
    serviceAccount: "trainer",
    retries: 3,
    retryBackoff: { seconds: 10n, nanos: 0 },
    timeout: { seconds: 7200n, nanos: 0 },
    // Above 2^53: proves int64 seconds stay exact bigints rather than lossy numbers.
    pendingTimeout: { seconds: 9_007_199_254_740_993n, nanos: 500_000_000 },
    extraJson: '{"owner":"alice"}',
    cacheDisabled: true,
    cacheTtl: { seconds: 86400n, nanos: 0 },
    cacheImageTag: true,
  };
}

test("a fully populated Task survives binary and JSON encoding unchanged", () => {
  const task = fullTask();
  const defaults = common.Task.create();
  for (const key of Object.keys(defaults) as (keyof common.Task)[]) {
    assert.notDeepEqual(task[key], defaults[key], `fullTask() leaves Task.${key} at its default`);
  }

  const bytes = common.Task.encode(task).finish();
  assert.deepEqual(common.Task.decode(bytes), task);

  const json = JSON.parse(JSON.stringify(common.Task.toJSON(task))) as unknown;
  assert.deepEqual(common.Task.fromJSON(json), task);
  // Enums travel as their proto names in JSON, as other languages expect.
  assert.equal((json as { resourceType: unknown }).resourceType, "RESOURCE_TYPE_PYTORCH_JOB");
});

test("events keep presence of a zero exit code and the oneof case", () => {
  const time = new Date("2024-05-01T12:00:00.123Z");
  const succeeded: events.TaskEvent = {
    runId: "sst2-k3x9q",
    task: "train",
    attempt: 2,
    state: common.TaskState.TASK_STATE_SUCCEEDED,
    exitCode: 0,
    reason: "Completed",
    message: "",
    objectName: "sst2-k3x9q--train-2",
    time,
    outputsJson: '{"selected":"model-3"}',
    imageDigest: "sha256:" + "ab".repeat(32),
  };
  const decoded = events.TaskEvent.decode(events.TaskEvent.encode(succeeded).finish());
  assert.deepEqual(decoded, succeeded);
  assert.equal(decoded.exitCode, 0);

  const running = events.TaskEvent.decode(
    events.TaskEvent.encode({ ...succeeded, exitCode: undefined }).finish(),
  );
  assert.equal(running.exitCode, undefined);

  const change: events.RunEvent = {
    runId: "sst2-k3x9q",
    revision: 18_446_744_073_709_551_615n, // the largest uint64
    time,
    change: {
      $case: "taskRun",
      value: common.TaskRun.fromPartial({
        runId: "sst2-k3x9q",
        task: "train",
        state: common.TaskState.TASK_STATE_RETRYING,
        nextAttemptTime: time,
      }),
    },
  };
  const back = events.RunEvent.decode(events.RunEvent.encode(change).finish());
  assert.deepEqual(back, change);
  assert.equal(back.change?.$case, "taskRun");
});

// One server on one port carrying all four services, as embedded mode will.
const server = new Server();
let address = "";
const seen: { launch?: k8slauncher.LaunchTaskRequest } = {};

const commit = "3f2c1a9e0b7d4c6e8f1a2b3c4d5e6f708192a3b4";
const created = new Date("2024-05-01T12:00:00.250Z");

const repoSync: Pick<RepoSyncServiceServer, "readFiles"> = {
  readFiles(
    call: ServerUnaryCall<reposync.ReadFilesRequest, reposync.ReadFilesResponse>,
    callback: sendUnaryData<reposync.ReadFilesResponse>,
  ) {
    callback(null, {
      commit: call.request.commit,
      files: call.request.paths.map((path) => ({
        path,
        content: Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x00, 0xff]),
      })),
    });
  },
};

const registry: Pick<PipelineRegistryServiceServer, "getPipeline"> = {
  getPipeline(
    call: ServerUnaryCall<
      pipelineregistry.GetPipelineRequest,
      pipelineregistry.GetPipelineResponse
    >,
    callback: sendUnaryData<pipelineregistry.GetPipelineResponse>,
  ) {
    callback(null, {
      commit,
      pipeline: {
        path: call.request.path,
        name: "sst2",
        commit,
        failFast: false,
        parallelism: 3,
        tasks: [fullTask()],
        parameters: [
          { name: "lr", type: "number", defaultValue: 0.01, description: "learning rate" },
          { name: "model", type: "string", defaultValue: undefined, description: "" },
        ],
        notify: [],
      },
      parameters: call.request.parameters,
      problems: [
        {
          file: `${call.request.path}/main.yml`,
          line: 7,
          column: 3,
          task: "train-sst2-2",
          field: "gpus",
          message: "unknown task key `gpus`; did you mean `num_gpus`?",
          severity: common.Severity.SEVERITY_WARNING,
        },
      ],
    });
  },
};

const scheduler: Pick<DagSchedulerServiceServer, "watchRun"> = {
  watchRun(
    call: ServerWritableStream<dagscheduler.WatchRunRequest, dagscheduler.WatchRunResponse>,
  ) {
    const run = common.Run.fromPartial({
      id: call.request.runId,
      pipeline: "sst2",
      commit,
      state: common.RunState.RUN_STATE_RUNNING,
      attempt: 1,
      taskCount: 1,
      createTime: created,
    });
    const taskRun = common.TaskRun.fromPartial({
      runId: call.request.runId,
      task: "train",
      state: common.TaskState.TASK_STATE_RUNNING,
      attempt: 1,
      launchTime: created,
    });
    call.write({
      event: { $case: "snapshot", value: { run, taskRuns: [taskRun], last: true, taskStates: [] } },
    });
    call.write({
      event: {
        $case: "taskRun",
        value: {
          ...taskRun,
          state: common.TaskState.TASK_STATE_FAILED,
          exitCode: 137,
          reason: "OOMKilled",
          endTime: created,
        },
      },
    });
    call.write({
      event: { $case: "run", value: { ...run, state: common.RunState.RUN_STATE_FAILED } },
    });
    call.end();
  },
};

const launcher: Pick<K8sLauncherServiceServer, "launchTask"> = {
  launchTask(
    call: ServerUnaryCall<k8slauncher.LaunchTaskRequest, k8slauncher.LaunchTaskResponse>,
    callback: sendUnaryData<k8slauncher.LaunchTaskResponse>,
  ) {
    seen.launch = call.request;
    callback(null, {
      objectName: `${call.request.taskId}-a${call.request.attempt}`,
      alreadyExisted: true,
    });
  },
};

before(async () => {
  server.addService(RepoSyncServiceService, repoSync);
  server.addService(PipelineRegistryServiceService, registry);
  server.addService(DagSchedulerServiceService, scheduler);
  server.addService(K8sLauncherServiceService, launcher);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  address = `127.0.0.1:${port}`;
});

after(() => {
  server.forceShutdown();
});

test("RepoSyncService.ReadFiles returns bytes unchanged over the socket", async () => {
  const client = new RepoSyncServiceClient(address, credentials.createInsecure());
  try {
    const res = await new Promise<reposync.ReadFilesResponse>((resolve, reject) => {
      client.readFiles({ commit, paths: ["sst2/main.yml", "logging.json"] }, (err, r) =>
        err ? reject(err) : resolve(r),
      );
    });
    assert.equal(res.commit, commit);
    assert.deepEqual(
      res.files.map((f) => f.path),
      ["sst2/main.yml", "logging.json"],
    );
    assert.deepEqual([...(res.files[0]?.content ?? [])], [0x6e, 0x61, 0x6d, 0x65, 0x00, 0xff]);
  } finally {
    client.close();
  }
});

test("PipelineRegistryService.GetPipeline returns the normalized pipeline and its problems", async () => {
  const client = new PipelineRegistryServiceClient(address, credentials.createInsecure());
  try {
    const res = await new Promise<pipelineregistry.GetPipelineResponse>((resolve, reject) => {
      client.getPipeline(
        {
          path: "alice/sst2",
          commit: "",
          tasks: [],
          parameters: { lr: 0.1, layers: [1, 2], fast: true },
        },
        (err, r) => (err ? reject(err) : resolve(r)),
      );
    });
    assert.equal(res.pipeline?.path, "alice/sst2");
    assert.equal(res.pipeline?.failFast, false);
    assert.equal(res.pipeline?.parallelism, 3);
    assert.deepEqual(res.pipeline?.tasks, [fullTask()]);
    // Typed values cross the wire as themselves; an unset default stays unset.
    assert.deepEqual(res.parameters, { lr: 0.1, layers: [1, 2], fast: true });
    assert.deepEqual(
      res.pipeline?.parameters.map((p): unknown[] => [p.name, p.defaultValue as unknown]),
      [
        ["lr", 0.01],
        ["model", undefined],
      ],
    );
    assert.equal(res.problems[0]?.severity, common.Severity.SEVERITY_WARNING);
    assert.equal(res.problems[0]?.file, "alice/sst2/main.yml");
    assert.equal(res.problems[0]?.line, 7);
  } finally {
    client.close();
  }
});

test("DagSchedulerService.WatchRun streams a snapshot, then changes, then ends", async () => {
  const client = new DagSchedulerServiceClient(address, credentials.createInsecure());
  try {
    const received: dagscheduler.WatchRunResponse[] = [];
    const stream = client.watchRun({
      runId: "sst2-k3x9q",
      taskStatesFirst: false,
      maxSnapshotTaskRuns: 0,
    });
    for await (const message of stream as AsyncIterable<dagscheduler.WatchRunResponse>) {
      received.push(message);
    }
    assert.deepEqual(
      received.map((m) => m.event?.$case),
      ["snapshot", "taskRun", "run"],
    );

    const snapshot = received[0]?.event;
    assert.equal(snapshot?.$case, "snapshot");
    if (snapshot?.$case !== "snapshot") return;
    assert.equal(snapshot.value.last, true);
    assert.equal(snapshot.value.run?.id, "sst2-k3x9q");
    assert.equal(snapshot.value.run?.state, common.RunState.RUN_STATE_RUNNING);
    // Timestamps arrive as Dates, to the millisecond.
    assert.ok(snapshot.value.run?.createTime instanceof Date);
    assert.equal(snapshot.value.run?.createTime.toISOString(), created.toISOString());
    assert.equal(snapshot.value.run?.startTime, undefined);

    const failed = received[1]?.event;
    assert.equal(failed?.$case, "taskRun");
    if (failed?.$case !== "taskRun") return;
    assert.equal(failed.value.state, common.TaskState.TASK_STATE_FAILED);
    assert.equal(failed.value.exitCode, 137);
    assert.equal(failed.value.reason, "OOMKilled");
    assert.equal(failed.value.endTime?.getTime(), created.getTime());

    const end = received[2]?.event;
    assert.equal(
      end?.$case === "run" ? end.value.state : undefined,
      common.RunState.RUN_STATE_FAILED,
    );
  } finally {
    client.close();
  }
});

test("K8sLauncherService.LaunchTask carries the whole task to the launcher", async () => {
  const client = new K8sLauncherServiceClient(address, credentials.createInsecure());
  try {
    const request: k8slauncher.LaunchTaskRequest = {
      runId: "sst2-k3x9q",
      pipeline: "alice/sst2",
      commit,
      task: fullTask(),
      taskId: "sst2-k3x9q--train-sst2-2",
      attempt: 2,
      paths: {
        rootPath: `/data/pipelines/.odin/checkouts/${commit}`,
        workPath: `/data/pipelines/.odin/checkouts/${commit}/alice/sst2`,
        dataPath: "/data/odin",
        runPath: "/data/odin/sst2-k3x9q",
        taskPath: "/data/odin/sst2-k3x9q/train-sst2-2",
      },
    };
    const res = await new Promise<k8slauncher.LaunchTaskResponse>((resolve, reject) => {
      client.launchTask(request, (err, r) => (err ? reject(err) : resolve(r)));
    });
    assert.deepEqual(res, { objectName: "sst2-k3x9q--train-sst2-2-a2", alreadyExisted: true });
    assert.deepEqual(seen.launch, request);
    assert.equal(seen.launch?.task?.securityContext?.fsGroup, 1152n);
    assert.equal(seen.launch?.task?.securityContext?.runAsUser, 0n);
    assert.deepEqual(
      seen.launch?.task?.pendingTimeout,
      Duration.fromPartial(fullTask().pendingTimeout ?? {}),
    );
    assert.equal(seen.launch?.task?.resourceType, common.ResourceType.RESOURCE_TYPE_PYTORCH_JOB);
  } finally {
    client.close();
  }
});
