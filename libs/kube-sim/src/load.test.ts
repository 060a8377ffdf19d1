// Many pods through the real client: everything reaches its phase, watch fan-out keeps up, and
// the simulator releases what it tracked.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CoreV1Api } from "@kubernetes/client-node";
import { startKubeSim } from "./server.js";
import { phase, podBody, recordWatch } from "./client-helpers.js";

test("1,000 pods created by 32 concurrent clients all succeed and each watch sees every one", async () => {
  const sim = await startKubeSim({ defaultRunMs: [0, 20] });
  try {
    const kc = sim.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    let succeededAt = 0;
    const unsubscribe = sim.onChange("pods", (type, object) => {
      if (type === "MODIFIED" && phase(object) === "Succeeded") succeededAt++;
    });
    const watches = await Promise.all(
      [1, 2, 3].map(() => recordWatch(kc, "/api/v1/namespaces/load/pods")),
    );
    const total = 1000;
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < total) {
          const i = next++;
          await core.createNamespacedPod({ namespace: "load", body: podBody(`pod-${i}`) });
        }
      }),
    );
    const createdIn = Date.now() - started;
    await Promise.all(
      watches.map((w) => {
        let succeeded = 0; // the predicate sees each event once: count as they arrive
        return w.next((e) => phase(e.object) === "Succeeded" && ++succeeded === total, 120_000);
      }),
    );
    const elapsed = Date.now() - started;
    const succeeded = sim.objects("pods", "load").filter((p) => phase(p) === "Succeeded").length;
    assert.equal(succeeded, total);
    for (const w of watches) w.stop();
    unsubscribe();
    assert.equal(succeededAt, total, "onChange saw every pod turn Succeeded");
    console.log(
      `kube-sim load: ${total} pods created in ${createdIn} ms, all Succeeded after ${elapsed} ms`,
    );
  } finally {
    await sim.close();
  }
});
