// Store and bus failures reach gRPC callers as codes they can act on: a NATS outage is UNAVAILABLE
// (clients retry), a lost compare-and-set is ABORTED — with the real error classes of the run
// store and the event bus, and end to end with a real nats-server that goes away.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { status, type ServiceError } from "@grpc/grpc-js";
import { EventBusUnavailableError, MemoryEventBus } from "@odin/events";
import { DagSchedulerServiceClient } from "@odin/proto";
import {
  KeyExistsError,
  NatsKeyValueStore,
  RevisionMismatchError,
  StoreUnavailableError,
} from "@odin/run-store";
import {
  createClient,
  isRetryable,
  silentLogger,
  startServer,
  toGrpcStatus,
  unary,
} from "@odin/service-kit";
import { startNats } from "@odin/testing";
import { Scheduler } from "./scheduler.js";
import { dagSchedulerService } from "./service.js";
import { SchedulerStore } from "./store.js";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test("the run store's and event bus's errors map to UNAVAILABLE and ABORTED, and are retryable", () => {
  const cases: [Error, status][] = [
    [new StoreUnavailableError("NATS did not answer within 5000 ms"), status.UNAVAILABLE],
    [new EventBusUnavailableError("cannot reach NATS at nats://x:4222"), status.UNAVAILABLE],
    [new RevisionMismatchError("run.r1", 7), status.ABORTED],
    [new KeyExistsError("run.r1"), status.ABORTED],
  ];
  for (const [err, code] of cases) {
    const mapped = toGrpcStatus(err, "req-1");
    assert.equal(mapped.code, code, err.name);
    assert.equal(mapped.details, err.message);
    assert.equal(mapped.unexpected, false);
    assert.equal(isRetryable(err), true, err.name);
  }
});

test("with NATS gone, GetRun fails with UNAVAILABLE (not INTERNAL), a code clients retry", async () => {
  const nats = await startNats({ runtime: "binary" });
  cleanups.push(() => nats.stop());
  const kv = await NatsKeyValueStore.connect({ servers: nats.url, timeoutMs: 500 });
  cleanups.push(() => kv.close());
  const bus = new MemoryEventBus();
  cleanups.push(() => bus.close());
  const unused = () => Promise.reject(new Error("not used by this test"));
  const scheduler = new Scheduler({
    store: new SchedulerStore(kv),
    bus,
    pipelines: { getPipeline: unused },
    checkouts: { acquire: unused, release: unused },
    launcher: { launch: unused, cancel: unused, deleteRun: unused },
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
  const client = createClient(DagSchedulerServiceClient, {
    address: server.address,
    retries: 0,
    deadlineMs: 20_000,
  });
  cleanups.push(() => Promise.resolve(client.close()));

  const missing = await rejected(unary(client, "getRun", getRunRequest("nope-k3x9q2ab")));
  assert.equal(missing.code, status.NOT_FOUND, missing.details);

  await nats.stop();
  const err = await rejected(unary(client, "getRun", getRunRequest("gone-k3x9q2ab")));
  assert.equal(err.code, status.UNAVAILABLE, `${status[err.code]}: ${err.details}`);
  assert.equal(isRetryable(err), true);
});

async function rejected(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  assert.fail("expected the call to fail");
}

function getRunRequest(runId: string) {
  return { runId, taskPageSize: 0, taskPageToken: "", tasks: [] };
}
