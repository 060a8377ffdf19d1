// Every resource type of SPEC.md launched against kube-sim, succeeding and failing, with the events
// read back from the JetStream stream on a real nats-server.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { apiResources, manifestName } from "@odin/k8s-manifests";
import type { ResourceType } from "@odin/pipeline-spec";
import type { KubernetesBackend } from "./backend.js";
import { LauncherHarness, simTask, testNamespace } from "../testing/harness.js";

const kinds: readonly ResourceType[] = [
  "Pod",
  "Job",
  "TFJob",
  "PyTorchJob",
  "MPIJob",
  "ElasticJob",
];

describe("resource types", () => {
  let h: LauncherHarness;
  let backend: KubernetesBackend;
  before(async () => {
    h = await LauncherHarness.start();
    backend = await h.backend();
  });
  after(async () => {
    await h.close();
  });

  for (const kind of kinds) {
    test(`${kind}: success is RUNNING then SUCCEEDED; failure is FAILED with exit code and reason`, async () => {
      const runId = h.runId(kind.toLowerCase());
      const fields = { resourceType: kind, numWorkers: 2 };
      const ok = simTask("ok", { runMs: 150, terminationMessage: '{"f1": 0.91}' }, fields);
      const bad = simTask("bad", { runMs: 150, exitCode: 3 }, fields);
      const [launchedOk, launchedBad] = await Promise.all([
        h.launch(backend, runId, ok),
        h.launch(backend, runId, bad),
      ]);
      assert.equal(launchedOk.objectName, manifestName(runId, ok, 1));
      assert.equal(launchedOk.alreadyExisted, false);
      const plural = apiResources[kind].plural;
      assert.ok(h.sim.get(plural, testNamespace, launchedOk.objectName), "the object exists");

      const succeeded = await h.reported(runId, "ok", "SUCCEEDED");
      const failed = await h.reported(runId, "bad", "FAILED");
      assert.deepEqual(
        h.of(runId, "ok").map((e) => e.stateName),
        ["RUNNING", "SUCCEEDED"],
      );
      assert.deepEqual(
        h.of(runId, "bad").map((e) => e.stateName),
        ["RUNNING", "FAILED"],
      );
      assert.equal(succeeded.exitCode, 0);
      assert.equal(succeeded.outputsJson, '{"f1":0.91}');
      assert.equal(succeeded.objectName, launchedOk.objectName);
      assert.equal(failed.exitCode, 3);
      assert.equal(failed.reason, "Error");
      assert.equal(failed.objectName, launchedBad.objectName);
      assert.match(failed.message, /failed/);
      assert.deepEqual(
        h.of(runId, "ok").map((e) => e.stateName),
        ["RUNNING", "SUCCEEDED"],
      );
    });
  }

  for (const kind of ["TFJob", "PyTorchJob", "ElasticJob"] as const) {
    test(`${kind}: a failing worker that is not the first fails the task (the original looked at the first pod only)`, async () => {
      const runId = h.runId("worker");
      const task = simTask("train", { runMs: 100 }, { resourceType: kind, numWorkers: 3 });
      const name = manifestName(runId, task, 1);
      const remove = h.sim.script({
        name: `${name}-worker-2`,
        runMs: 150,
        exitCode: 137,
        reason: "OOMKilled",
      });
      try {
        await h.launch(backend, runId, task);
        const failed = await h.reported(runId, "train", "FAILED");
        assert.equal(failed.exitCode, 137);
        assert.equal(failed.reason, "OOMKilled");
        assert.match(failed.message, new RegExp(`${name}-worker-2`));
      } finally {
        remove();
      }
    });
  }
});
