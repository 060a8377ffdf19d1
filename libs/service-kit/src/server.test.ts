// The kit's server over real gRPC on 127.0.0.1 with the generated Odin services: health,
// reflection, auth, error mapping, one log line per call, metrics, and graceful shutdown.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { DagSchedulerServiceClient, PipelineRegistryServiceClient } from "@odin/proto";
import { createClient, serverStream, unary } from "./client.js";
import { describeGrpcError, problemsOf, requestIdOfError } from "./errors.js";
import {
  captureLogger,
  decodeHealthStatus,
  encodeHealthRequest,
  HealthClient,
  healthCheck,
  nextSlowCall,
  reflect,
  registryFake,
  schedulerFake,
  stubServices,
  testTokenStore,
  TOKENS,
} from "./fixtures.js";
import { type OdinServer, startServer } from "./server.js";

/** Opens a health Watch and collects the statuses it streams. */
function healthWatch(address: string): {
  statuses: string[];
  next: () => Promise<string>;
  cancel: () => void;
} {
  const client = new HealthClient(address, credentials.createInsecure());
  const statuses: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  const call = client.makeServerStreamRequest(
    "/grpc.health.v1.Health/Watch",
    (value: { service: string }) => Buffer.from(encodeHealthRequest(value.service)),
    (buffer: Buffer) => decodeHealthStatus(buffer),
    { service: "" },
  );
  call.on("data", (s: string) => {
    statuses.push(s);
    waiters.shift()?.(s);
  });
  call.on("error", () => {});
  return {
    statuses,
    next: () => new Promise((resolve) => waiters.push(resolve)),
    cancel: () => {
      call.cancel();
      client.close();
    },
  };
}

function registryClient(address: string, token?: string): PipelineRegistryServiceClient {
  return createClient(PipelineRegistryServiceClient, {
    address,
    ...(token !== undefined ? { token } : {}),
    retries: 0,
  });
}

async function rejected(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  assert.fail("expected the call to fail");
}

const listRequest = (pathPrefix = "") => ({ commit: "", pathPrefix });

let server: OdinServer;
const logs = captureLogger();
const clients: Client[] = [];
function track<C extends Client>(client: C): C {
  clients.push(client);
  return client;
}

before(async () => {
  server = await startServer({
    name: "kit-test",
    host: "127.0.0.1",
    port: 0,
    services: [registryFake(), schedulerFake(), ...stubServices()],
    auth: testTokenStore(),
    metrics: { port: 0, host: "127.0.0.1" },
    logger: logs.logger,
  });
});

after(async () => {
  for (const client of clients) client.close();
  await server.close(1000);
});

test("health reports SERVING for the server and each service, without a token", async () => {
  assert.equal(await healthCheck(server.address, ""), "SERVING");
  assert.equal(
    await healthCheck(server.address, "odin.pipelineregistry.v1.PipelineRegistryService"),
    "SERVING",
  );
  const err = await rejected(healthCheck(server.address, "no.such.Service"));
  assert.equal(err.code, status.NOT_FOUND);
});

test("reflection lists the four Odin services and serves their descriptors, without a token", async () => {
  const listed = (await reflect(server.address, { listServices: "*" })) as {
    listServicesResponse?: { service: { name: string }[] };
  };
  const names = (listed.listServicesResponse?.service ?? []).map((s) => s.name).sort();
  for (const name of [
    "odin.dagscheduler.v1.DagSchedulerService",
    "odin.k8slauncher.v1.K8sLauncherService",
    "odin.pipelineregistry.v1.PipelineRegistryService",
    "odin.reposync.v1.RepoSyncService",
  ]) {
    assert.ok(names.includes(name), `${name} missing from ${names.join(", ")}`);
  }
  const file = (await reflect(server.address, {
    fileContainingSymbol: "odin.pipelineregistry.v1.PipelineRegistryService",
  })) as { fileDescriptorResponse?: { fileDescriptorProto: Uint8Array[] } };
  const protos = file.fileDescriptorResponse?.fileDescriptorProto ?? [];
  assert.ok(protos.length > 0, "no file descriptors returned");
  assert.ok(
    protos.some((p) => Buffer.from(p).toString("latin1").includes("ListPipelines")),
    "descriptor does not describe ListPipelines",
  );
});

test("a call without a token is UNAUTHENTICATED and says how to pass one", async () => {
  const err = await rejected(
    unary(track(registryClient(server.address)), "listPipelines", listRequest()),
  );
  assert.equal(err.code, status.UNAUTHENTICATED);
  assert.match(err.details, /--token/);
  assert.match(err.details, /ODIN_TOKEN/);
  assert.ok(requestIdOfError(err), "UNAUTHENTICATED carries the request id trailer");
});

test("an unknown token and a malformed header are UNAUTHENTICATED, without echoing the token", async () => {
  const bad = "not-a-real-token-5521";
  const err = await rejected(
    unary(track(registryClient(server.address, bad)), "listPipelines", listRequest()),
  );
  assert.equal(err.code, status.UNAUTHENTICATED);
  assert.match(err.details, /unknown or revoked token/);
  assert.ok(!err.details.includes(bad));

  const metadata = new Metadata();
  metadata.set("authorization", `Basic ${TOKENS.viewer}`);
  const malformed = await rejected(
    unary(track(registryClient(server.address)), "listPipelines", listRequest(), { metadata }),
  );
  assert.equal(malformed.code, status.UNAUTHENTICATED);
  assert.match(malformed.details, /Bearer <token>/);
  assert.ok(!malformed.details.includes(TOKENS.viewer));
});

test("a viewer may list but not call an operator RPC; the operator's sha256 entry works", async () => {
  const viewer = track(registryClient(server.address, TOKENS.viewer));
  const listed = await unary(viewer, "listPipelines", listRequest());
  assert.equal(listed.commit, "vera/viewer", "the handler sees the caller's subject and role");
  assert.equal(listed.pipelines[0]?.name, "sst2");

  const denied = await rejected(unary(viewer, "validatePipeline", { path: "sst2", files: [] }));
  assert.equal(denied.code, status.PERMISSION_DENIED);
  assert.match(denied.details, /needs role operator/);
  assert.match(denied.details, /vera has role viewer/);

  const operator = track(registryClient(server.address, TOKENS.operator));
  const validated = await unary(operator, "validatePipeline", { path: "sst2", files: [] });
  assert.equal(validated.valid, true);
  assert.equal((await unary(operator, "listPipelines", listRequest())).commit, "otto/operator");
});

test("a handler never sees the token in its metadata, but can forward the caller's authorization to a peer", async () => {
  const viewer = track(registryClient(server.address, TOKENS.viewer));
  const seen = await unary(viewer, "listPipelines", listRequest("credentials"));
  assert.equal(seen.commit, `metadata:0 forwardable:Bearer ${TOKENS.viewer}`);
});

test("an RPC missing from the roles needs admin", async () => {
  const operator = track(registryClient(server.address, TOKENS.operator));
  const denied = await rejected(
    unary(operator, "getPipeline", { path: "sst2", commit: "", tasks: [] }),
  );
  assert.equal(denied.code, status.PERMISSION_DENIED);
  assert.match(denied.details, /needs role admin/);
  const admin = track(registryClient(server.address, TOKENS.admin));
  assert.equal(
    (await unary(admin, "getPipeline", { path: "sst2", commit: "", tasks: [] })).commit,
    "abc123",
  );
});

test("a NotFoundError thrown by a handler arrives as NOT_FOUND with its message", async () => {
  const client = track(registryClient(server.address, TOKENS.viewer));
  const err = await rejected(unary(client, "listPipelines", listRequest("notfound")));
  assert.equal(err.code, status.NOT_FOUND);
  assert.equal(err.details, "pipeline nope not found at commit abc123");
  assert.equal(describeGrpcError(err), "pipeline nope not found at commit abc123");
});

test("an InvalidArgumentError's problems reach the client with file, line and column", async () => {
  const client = track(registryClient(server.address, TOKENS.viewer));
  const err = await rejected(unary(client, "listPipelines", listRequest("invalid")));
  assert.equal(err.code, status.INVALID_ARGUMENT);
  assert.equal(err.details, "pipeline sst2 is invalid: 2 problems");
  assert.deepEqual(problemsOf(err), [
    {
      file: "sst2/main.yml",
      line: 3,
      column: 5,
      task: "train",
      field: "image",
      message: "image is required",
    },
    {
      file: "sst2/main.yml",
      line: 9,
      column: 1,
      message: "unknown key 'tasks2'",
      severity: "warning",
    },
  ]);
});

test("an unexpected error is INTERNAL with a request id; its stack is logged, never sent", async () => {
  const client = track(registryClient(server.address, TOKENS.viewer));
  for (const prefix of ["boom", "reject"]) {
    const err = await rejected(unary(client, "listPipelines", listRequest(prefix)));
    assert.equal(err.code, status.INTERNAL);
    const requestId = requestIdOfError(err);
    assert.ok(requestId);
    assert.equal(err.details, `internal error (see server log, request id ${requestId})`);
    assert.doesNotMatch(err.details, /hunter2|undefined|at /);
    const logged = logs
      .records()
      .find((r) => r["requestId"] === requestId && r["msg"] === "unexpected error in handler");
    assert.ok(logged, "the server logs the error under the request id");
    assert.match(JSON.stringify(logged["err"]), /"stack":".*at /);
  }
});

test("server-streaming calls stream, and their errors map like unary ones", async () => {
  const scheduler = track(
    createClient(DagSchedulerServiceClient, { address: server.address, token: TOKENS.viewer }),
  );
  const tasks: string[] = [];
  for await (const event of serverStream(scheduler, "watchRun", {
    runId: "count:3",
    taskStatesFirst: false,
    maxSnapshotTaskRuns: 0,
  })) {
    if (event.event?.$case === "taskRun") tasks.push(event.event.value.task);
  }
  assert.deepEqual(tasks, ["task-0", "task-1", "task-2"]);
  for await (const event of serverStream(scheduler, "watchRun", {
    runId: "whoami",
    taskStatesFirst: false,
    maxSnapshotTaskRuns: 0,
  })) {
    assert.equal(event.event?.$case === "taskRun" && event.event.value.task, "vera/viewer");
  }

  const received: unknown[] = [];
  const err = await rejected(
    (async () => {
      for await (const event of serverStream(scheduler, "watchRun", {
        runId: "fail",
        taskStatesFirst: false,
        maxSnapshotTaskRuns: 0,
      })) {
        received.push(event);
      }
    })(),
  );
  assert.equal(received.length, 1);
  assert.equal(err.code, status.NOT_FOUND);
  assert.equal(err.details, "run fail-123 not found");

  const anonymous = track(createClient(DagSchedulerServiceClient, { address: server.address }));
  const denied = await rejected(
    (async () => {
      for await (const _ of serverStream(anonymous, "watchRun", {
        runId: "count:1",
        taskStatesFirst: false,
        maxSnapshotTaskRuns: 0,
      })) {
        /* nothing arrives */
      }
    })(),
  );
  assert.equal(denied.code, status.UNAUTHENTICATED);
});

test("each call is logged once with method, code, duration and subject; no token is ever logged", async () => {
  const client = track(registryClient(server.address, TOKENS.operator));
  await unary(client, "listPipelines", listRequest(), { metadata: requestIdMetadata("trace-42") });
  const lines = logs.records().filter((r) => r["msg"] === "rpc" && r["requestId"] === "trace-42");
  assert.equal(lines.length, 1);
  const [line] = lines;
  assert.equal(line?.["method"], "odin.pipelineregistry.v1.PipelineRegistryService/ListPipelines");
  assert.equal(line?.["code"], "OK");
  assert.equal(line?.["subject"], "otto");
  assert.equal(typeof line?.["durationMs"], "number");

  const all = logs.lines.join("\n");
  for (const token of Object.values(TOKENS)) assert.ok(!all.includes(token), "a token was logged");
  assert.ok(!all.includes("not-a-real-token-5521"), "a rejected token was logged");
});

test("a quiet RPC's successful calls are logged at debug, its failures at info", async () => {
  const viewer = track(registryClient(server.address, TOKENS.viewer));
  const operator = track(registryClient(server.address, TOKENS.operator));
  const request = { path: "sst2", files: [] };
  await unary(operator, "validatePipeline", request, { metadata: requestIdMetadata("quiet-ok") });
  await rejected(
    unary(viewer, "validatePipeline", request, { metadata: requestIdMetadata("quiet-denied") }),
  );
  await unary(operator, "listPipelines", listRequest(), {
    metadata: requestIdMetadata("loud-ok"),
  });
  const levelOf = (id: string) =>
    logs
      .records()
      .filter((r) => r["msg"] === "rpc" && r["requestId"] === id)
      .map((r) => r["level"]);
  assert.deepEqual(levelOf("quiet-ok"), ["debug"]);
  assert.deepEqual(levelOf("quiet-denied"), ["info"]);
  assert.deepEqual(levelOf("loud-ok"), ["info"]);
});

function requestIdMetadata(id: string): Metadata {
  const metadata = new Metadata();
  metadata.set("x-request-id", id);
  return metadata;
}

test("/metrics counts calls by service, method and code; /healthz answers", async () => {
  const client = track(registryClient(server.address, TOKENS.viewer));
  const before = await callsCounted("ListPipelines", "OK");
  await unary(client, "listPipelines", listRequest());
  await unary(client, "listPipelines", listRequest());
  assert.equal(await callsCounted("ListPipelines", "OK"), before + 2);
  const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
  assert.match(
    text,
    /odin_grpc_server_requests_total\{[^}]*method="ListPipelines",code="UNAUTHENTICATED"\} [1-9]/,
  );
  assert.match(
    text,
    /odin_grpc_server_request_duration_seconds_bucket\{[^}]*method="ListPipelines"/,
  );
  assert.match(text, /process_cpu_user_seconds_total/);
  const healthz = await fetch(`http://127.0.0.1:${server.metricsPort}/healthz`);
  assert.equal(healthz.status, 200);
});

async function callsCounted(method: string, code: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
  const line = text
    .split("\n")
    .find(
      (l) =>
        l.startsWith("odin_grpc_server_requests_total{") &&
        l.includes(`method="${method}"`) &&
        l.includes(`code="${code}"`) &&
        l.includes('service="odin.pipelineregistry.v1.PipelineRegistryService"'),
    );
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

test("close() reports NOT_SERVING, lets an in-flight call finish, then refuses new calls", async () => {
  const { logger } = captureLogger();
  const own = await startServer({
    name: "shutdown-test",
    host: "127.0.0.1",
    port: 0,
    services: [registryFake()],
    auth: testTokenStore(),
    metrics: { port: 0, host: "127.0.0.1" },
    logger,
  });
  const watch = healthWatch(own.address);
  assert.equal(await watch.next(), "SERVING");
  const client = track(registryClient(own.address, TOKENS.viewer));
  const started = nextSlowCall();
  const slow = unary(client, "listPipelines", listRequest("slow:600"));
  await started;

  const closed = own.close(5000);
  assert.equal(await watch.next(), "NOT_SERVING");
  const healthz = await fetch(`http://127.0.0.1:${own.metricsPort}/healthz`);
  assert.equal(healthz.status, 503);
  watch.cancel();

  const response = await slow;
  assert.equal(response.commit, "vera/viewer", "the in-flight call completed");
  await closed;
  const after = await rejected(unary(client, "listPipelines", listRequest()));
  assert.equal(after.code, status.UNAVAILABLE);
});

test(
  "close() cancels calls still running when the grace period ends",
  { timeout: 120_000 },
  async () => {
    const { logger, records } = captureLogger();
    const own = await startServer({
      name: "force-test",
      host: "127.0.0.1",
      port: 0,
      services: [registryFake()],
      auth: testTokenStore(),
      logger,
    });
    const client = track(registryClient(own.address, TOKENS.viewer));
    const started = nextSlowCall();
    // The call would run ten minutes: close() returning at all shows the grace period cut it.
    const slow = rejected(unary(client, "listPipelines", listRequest("slow:600000")));
    await started;
    await own.close(200);
    const err = await slow;
    assert.ok(
      [status.UNAVAILABLE, status.CANCELLED, status.INTERNAL].includes(err.code),
      err.message,
    );
    assert.ok(records().some((r) => r["msg"] === "grace period over; cancelling in-flight calls"));
  },
);

test("messages above maxMessageBytes are refused with RESOURCE_EXHAUSTED", async () => {
  const { logger } = captureLogger();
  const own = await startServer({
    name: "limits-test",
    host: "127.0.0.1",
    port: 0,
    services: [registryFake()],
    auth: testTokenStore(),
    logger,
    maxMessageBytes: 2048,
  });
  try {
    const client = track(registryClient(own.address, TOKENS.operator));
    const small = [{ path: "sst2/main.yml", content: Buffer.alloc(100, 97) }];
    assert.equal(
      (await unary(client, "validatePipeline", { path: "sst2", files: small })).valid,
      true,
    );
    const big = [{ path: "sst2/main.yml", content: Buffer.alloc(4096, 97) }];
    const err = await rejected(unary(client, "validatePipeline", { path: "sst2", files: big }));
    assert.equal(err.code, status.RESOURCE_EXHAUSTED);
    assert.match(describeGrpcError(err), /^too large or over a limit: /);
  } finally {
    await own.close(500);
  }
});

test("a port already in use fails startServer with a clear message", async () => {
  const { logger } = captureLogger();
  await assert.rejects(
    startServer({
      name: "clash",
      host: "127.0.0.1",
      port: server.port,
      services: [],
      auth: "off",
      logger,
    }),
    /cannot listen on 127\.0\.0\.1:\d+: .*another process using the port/,
  );
});
