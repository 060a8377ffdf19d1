// Logs (live, followed, saved once pods are gone), Kubernetes events, and run deletion with its
// data, against kube-sim.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { manifestName } from "@odin/k8s-manifests";
import type { KubernetesBackend } from "./backend.js";
import { collect, LauncherHarness, simTask, testNamespace, waitUntil } from "../testing/harness.js";

describe("logs, events and run deletion", () => {
  let h: LauncherHarness;
  let backend: KubernetesBackend;
  before(async () => {
    h = await LauncherHarness.start();
    backend = await h.backend();
  });
  after(async () => {
    await h.close();
  });

  test("logs of a finished pod are saved and served after the pod is deleted", async () => {
    const runId = h.runId("saved");
    const task = simTask("talk", { runMs: 100, logs: ["epoch 1", "epoch 2", "done"] });
    const { objectName } = await h.launch(backend, runId, task);
    await h.reported(runId, "talk", "SUCCEEDED");
    // Saved when the pod reached its terminal phase, not when something asked for it.
    const id = { runId, task: "talk", attempt: 1 };
    await waitUntil(
      () => existsSync(backend.savedLogs.file(id, objectName, "talk")),
      () => "the log file saved",
    );
    assert.ok(h.sim.deletePod(testNamespace, objectName));
    await waitUntil(
      () => h.sim.get("pods", testNamespace, objectName) === undefined,
      () => "pod gone",
    );
    const lines = await collect(backend.logs(id, { follow: false }));
    assert.deepEqual(
      lines.map((l) => [l.pod, l.container, l.line]),
      [
        [objectName, "talk", "epoch 1"],
        [objectName, "talk", "epoch 2"],
        [objectName, "talk", "done"],
      ],
    );
    assert.ok(lines.every((l) => l.time instanceof Date));
    const tail = await collect(
      backend.logs({ runId, task: "talk" }, { follow: true, tailLines: 1 }),
    );
    assert.deepEqual(
      tail.map((l) => l.line),
      ["done"],
    );
    // Deleted after it finished: no ERROR.
    assert.deepEqual(
      h.of(runId, "talk").map((e) => e.stateName),
      ["RUNNING", "SUCCEEDED"],
    );
  });

  test("cancel saves a running pod's logs before deleting it", async () => {
    const runId = h.runId("cancel");
    const task = simTask("forever", { runForever: true, logs: ["warming up", "step 1"] });
    const { objectName } = await h.launch(backend, runId, task);
    await h.reported(runId, "forever", "RUNNING");
    assert.equal(await backend.cancel({ runId, task: "forever" }), 1);
    await waitUntil(
      () => h.sim.get("pods", testNamespace, objectName) === undefined,
      () => "pod gone",
    );
    const lines = await collect(backend.logs({ runId, task: "forever" }, { follow: false }));
    assert.deepEqual(
      lines.map((l) => l.line),
      ["warming up", "step 1"],
    );
  });

  test("a multi-worker task's logs come from every pod, each line naming its pod", async () => {
    const runId = h.runId("multi");
    const task = simTask(
      "dist",
      { runMs: 600, logs: ["rank up", "loss 0.5", "loss 0.2"] },
      { resourceType: "PyTorchJob", numWorkers: 2 },
    );
    const { objectName } = await h.launch(backend, runId, task);
    await h.reported(runId, "dist", "RUNNING");
    const followed = await collect(
      backend.logs({ runId, task: "dist", attempt: 1 }, { follow: true }),
    );
    await h.reported(runId, "dist", "SUCCEEDED");
    const pods = [`${objectName}-master-0`, `${objectName}-worker-0`, `${objectName}-worker-1`];
    for (const lines of [
      followed,
      await collect(backend.logs({ runId, task: "dist" }, { follow: false })),
    ]) {
      assert.deepEqual([...new Set(lines.map((l) => l.pod))].sort(), pods);
      for (const pod of pods) {
        assert.deepEqual(
          lines.filter((l) => l.pod === pod).map((l) => l.line),
          ["rank up", "loss 0.5", "loss 0.2"],
          pod,
        );
      }
      assert.ok(lines.every((l) => l.container === "pytorch"));
    }
    const one = await collect(
      backend.logs({ runId, task: "dist" }, { follow: false, pod: `${objectName}-worker-1` }),
    );
    assert.equal(one.length, 3);
  });

  test("events of an attempt cover its object and its pods", async () => {
    const runId = h.runId("events");
    const task = simTask("job", { runMs: 50 }, { resourceType: "Job" });
    const { objectName } = await h.launch(backend, runId, task);
    await h.reported(runId, "job", "SUCCEEDED");
    const list = await backend.events({ runId, task: "job", attempt: 1 });
    const kinds = new Set(list.map((e) => e.objectKind));
    assert.ok(kinds.has("Job") && kinds.has("Pod"), `kinds ${[...kinds].join(",")}`);
    assert.ok(list.some((e) => e.objectName === objectName && e.reason === "SuccessfulCreate"));
    assert.ok(list.some((e) => e.objectKind === "Pod" && e.reason === "Started"));
    assert.ok(list.every((e) => e.attempt === 1 && e.time instanceof Date));
    for (let i = 1; i < list.length; i++) {
      assert.ok(list[i - 1]!.time.getTime() <= list[i]!.time.getTime(), "oldest first");
    }
    // Every attempt when none is given.
    const task2 = simTask("job", { imagePullError: true }, { resourceType: "Job" });
    await h.launch(backend, runId, task2, 2);
    await waitUntil(
      () =>
        h.sim
          .objects("events", testNamespace)
          .some(
            (e) =>
              (e as { reason?: string }).reason === "Failed" &&
              JSON.stringify(e).includes(manifestName(runId, task2, 2)),
          ),
      () => "a pull failure event",
    );
    const all = await backend.events({ runId, task: "job" });
    assert.deepEqual([...new Set(all.map((e) => e.attempt))].sort(), [1, 2]);
    assert.ok(all.some((e) => e.type === "Warning"));
    await backend.cancel({ runId, task: "job", attempt: 2 });
  });

  test("deleteRun removes every object of the run and, asked to, its data — only under the data root", async () => {
    const runId = h.runId("del");
    await Promise.all([
      h.launch(backend, runId, simTask("a", { runForever: true })),
      h.launch(backend, runId, simTask("b", { runForever: true }, { resourceType: "Job" })),
      h.launch(backend, runId, simTask("c", { runMs: 10 })),
    ]);
    await Promise.all(["a", "b"].map((t) => h.reported(runId, t, "RUNNING")));
    await h.reported(runId, "c", "SUCCEEDED");
    mkdirSync(join(h.dataRoot, runId, "a"), { recursive: true });
    writeFileSync(join(h.dataRoot, runId, "a", "model.bin"), "weights");
    const result = await backend.deleteRun(runId, { purgeData: true });
    assert.deepEqual(result, { deleted: 3, dataPurged: true });
    assert.equal(existsSync(join(h.dataRoot, runId)), false);
    await waitUntil(
      () =>
        h.sim
          .objects("pods", testNamespace)
          .every((p) => p.metadata.labels?.["odin.dev/run"] !== runId),
      () => "all pods of the run gone",
    );
    assert.deepEqual(await backend.deleteRun(runId, { purgeData: false }), {
      deleted: 0,
      dataPurged: false,
    });
    for (const t of ["a", "b"]) {
      assert.deepEqual(
        h.of(runId, t).map((e) => e.stateName),
        ["RUNNING"],
        "deleting a run reports no ERROR",
      );
    }

    // Never outside the data root: a caller's path elsewhere is refused, a symbolic link named
    // like the run is removed without touching what it points to.
    const outside = mkdtempSync(join(h.dir, "outside-"));
    writeFileSync(join(outside, "keep"), "precious");
    await assert.rejects(backend.deleteRun("other", { purgeData: true, runPath: outside }), {
      name: "InvalidArgumentError",
    });
    await assert.rejects(
      backend.deleteRun("other", { purgeData: true, runPath: join(h.dataRoot, "..", "other") }),
      { name: "InvalidArgumentError" },
    );
    symlinkSync(outside, join(h.dataRoot, "linked"));
    assert.deepEqual(await backend.deleteRun("linked", { purgeData: true }), {
      deleted: 0,
      dataPurged: true,
    });
    assert.equal(existsSync(join(h.dataRoot, "linked")), false);
    assert.equal(existsSync(join(outside, "keep")), true);
  });
});
