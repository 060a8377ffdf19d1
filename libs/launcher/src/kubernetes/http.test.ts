// The rate limit and backoff of API requests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startKubeSim } from "@odin/testing";
import { backoffDelay, KubernetesHttp, kubernetesApis, retryAfterMs, TokenBucket } from "./http.js";

test("the token bucket allows a burst, then qps", async (t) => {
  // A mocked clock decides when tokens come back, so a busy machine cannot change the counts.
  t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
  const bucket = new TokenBucket(100, 10, () => Date.now());
  let granted = 0;
  const take = (n: number) => Array.from({ length: n }, () => bucket.take().then(() => granted++));
  const burst = take(10);
  await Promise.all(burst);
  assert.equal(granted, 10, "the burst goes at once");
  const more = take(20);
  await Promise.resolve();
  assert.equal(granted, 10, "nothing more before time passes");
  for (let ms = 0; ms < 100; ms += 10) t.mock.timers.tick(10);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(granted, 20, "100 ms at 100/s gives 10 more");
  for (let ms = 0; ms < 100; ms += 10) t.mock.timers.tick(10);
  await Promise.all(more);
  assert.equal(granted, 30);
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
