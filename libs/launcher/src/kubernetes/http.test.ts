// The rate limit and backoff of API requests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startKubeSim } from "@odin/testing";
import { backoffDelay, KubernetesHttp, kubernetesApis, retryAfterMs, TokenBucket } from "./http.js";

test("the token bucket allows a burst, then qps", async () => {
  const bucket = new TokenBucket(100, 10);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 10 }, () => bucket.take()));
  assert.ok(performance.now() - t0 < 150, "the burst goes at once");
  await Promise.all(Array.from({ length: 20 }, () => bucket.take()));
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 180, `20 more at 100/s took ${elapsed} ms`);
  assert.throws(() => new TokenBucket(0, 1), RangeError);
});

test("backoff grows exponentially with jitter, capped; Retry-After is a floor", () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 5000 };
  assert.equal(
    backoffDelay(0, policy, undefined, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(0, policy, undefined, () => 1),
    100,
  );
  assert.equal(
    backoffDelay(3, policy, undefined, () => 1),
    800,
  );
  assert.equal(
    backoffDelay(10, policy, undefined, () => 1),
    1000,
  );
  assert.equal(
    backoffDelay(0, policy, 2000, () => 0),
    2000,
  );
  assert.equal(
    backoffDelay(0, policy, 60_000, () => 0),
    5000,
  );
  assert.equal(retryAfterMs("3"), 3000);
  assert.equal(
    retryAfterMs(new Date(Date.now() + 2000).toUTCString(), Date.now()) !== undefined,
    true,
  );
  assert.equal(retryAfterMs("soon"), undefined);
  assert.equal(retryAfterMs(undefined), undefined);
});

test("the API clients share one rate limit", async () => {
  const sim = await startKubeSim();
  try {
    const http = new KubernetesHttp(new TokenBucket(20, 5));
    const { core } = kubernetesApis(sim.kubeConfig(), http);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 15 }, () => core.listNamespacedPod({ namespace: "default" })),
    );
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 450, `15 requests at 20/s burst 5 took ${elapsed} ms`);
    assert.equal(http.stats.requests, 15);
    http.close();
  } finally {
    await sim.close();
  }
});
