// Fault injection as the client experiences it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { type KubeSim, startKubeSim } from "./server.js";
import { codeOf, podBody, recordWatch, statusOf } from "./client-helpers.js";

let sim: KubeSim;
let kc: KubeConfig;
let core: CoreV1Api;

before(async () => {
  sim = await startKubeSim({ defaultRunMs: 5 });
  kc = sim.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
});
after(() => sim.close());

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return assert.fail("expected a failure");
}

test("failNext(2, 500) fails exactly the next two requests with an InternalError Status", async () => {
  sim.faults.failNext(2, 500);
  for (let i = 0; i < 2; i++) {
    const error = await failureOf(core.listNamespacedPod({ namespace: "default" }));
    assert.equal(codeOf(error), 500);
    assert.equal(statusOf(error)?.reason, "InternalError");
  }
  await core.listNamespacedPod({ namespace: "default" });
});

test("failNext(1, 429) carries Retry-After; a match limits it to creates", async () => {
  sim.faults.failNext(1, 429, {
    match: { method: "POST", path: "/api/v1/namespaces/*/pods" },
    retryAfterSeconds: 2,
  });
  await core.listNamespacedPod({ namespace: "faults" }); // not matched: unaffected
  const error = await failureOf(
    core.createNamespacedPod({ namespace: "faults", body: podBody("throttled") }),
  );
  assert.equal(codeOf(error), 429);
  assert.equal(statusOf(error)?.reason, "TooManyRequests");
  assert.equal((error as { headers: Record<string, string> }).headers["retry-after"], "2");
  // Nothing was created by the refused call; the retry goes through.
  await assert.rejects(
    core.readNamespacedPod({ namespace: "faults", name: "throttled" }),
    (e) => codeOf(e) === 404,
  );
  await core.createNamespacedPod({ namespace: "faults", body: podBody("throttled") });
  assert.equal(
    sim.createCount("pods", "throttled", "faults"),
    1,
    "an injected failure is answered before the create is counted",
  );
});

test("a watch refused with 500 reports the status code to the client", async () => {
  sim.faults.failNext(1, 500, { match: { watch: true } });
  const watch = await recordWatch(kc, "/api/v1/namespaces/faults/pods");
  const err = (await watch.ended) as { statusCode?: number };
  assert.equal(err.statusCode, 500);
});

test("dropWatches closes open watches mid-stream, cleanly or abruptly; the client sees the end", async () => {
  const first = await recordWatch(kc, "/api/v1/namespaces/drop/pods");
  const second = await recordWatch(kc, "/api/v1/namespaces/drop/pods");
  await core.createNamespacedPod({ namespace: "drop", body: podBody("p") });
  await first.next((e) => e.type === "ADDED");
  await second.next((e) => e.type === "ADDED");
  assert.equal(sim.stats().openWatches, 2);
  assert.equal(sim.faults.dropWatches({ graceful: true }), 2);
  assert.equal(
    await first.ended,
    null,
    "a clean end of the response is a normal end for the client",
  );
  assert.equal(await second.ended, null);
  assert.equal(sim.stats().openWatches, 0);

  const abrupt = await recordWatch(kc, "/api/v1/namespaces/drop/pods");
  await abrupt.next((e) => e.type === "ADDED");
  assert.equal(sim.faults.dropWatches(), 1);
  const err = await abrupt.ended;
  assert.ok(
    err instanceof Error,
    `a cut connection is an error for the client, got ${String(err)}`,
  );
});

test("delay(ms) slows matching responses until removed", async () => {
  sim.faults.delay(300, { match: { method: "GET" } });
  const started = Date.now();
  await core.listNamespacedPod({ namespace: "default" });
  const delayed = Date.now() - started;
  assert.ok(delayed >= 290, `delayed (${delayed} ms)`);
  assert.equal(sim.faults.delayFor("GET", "/api/v1/namespaces/default/pods", false), 300);
  assert.equal(sim.faults.delayFor("POST", "/api/v1/namespaces/default/pods", false), 0);
  sim.faults.delay(0);
  // Removal is checked on the rule itself, not by timing a second request on a busy machine.
  assert.equal(sim.faults.delayFor("GET", "/api/v1/namespaces/default/pods", false), 0);
  await core.listNamespacedPod({ namespace: "default" });
  assert.ok(sim.stats().injectedFaults >= 4);
});
