// The launcher against kube-sim's faults and outside interference, with events read back from the
// JetStream stream of a real nats-server: duplicate launches, restarts, dropped watches, API
// errors, stuck pods, deletions by others, cancels.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BatchV1Api } from "@kubernetes/client-node";
import {
  legacyPendingTimeoutAnnotation,
  manifestName,
  pendingTimeoutAnnotation,
} from "@odin/k8s-manifests";
import { Membership } from "@odin/events";
import type { TaskStateEvent } from "../backend.js";
import { publishStateEvents } from "../service.js";
import type { KubernetesBackend } from "./backend.js";
import { shardCount, shardKey, shardOf } from "./shards.js";
import { LauncherHarness, simTask, sleep, testNamespace, waitUntil } from "../testing/harness.js";

describe("reliability", () => {
  let h: LauncherHarness;
  let backend: KubernetesBackend;
  before(async () => {
    h = await LauncherHarness.start();
    backend = await h.backend();
  });
  after(async () => {
    await h.close();
  });

  test("concurrent duplicate launches create exactly one object", async () => {
    for (const resourceType of ["Pod", "TFJob"] as const) {
      const runId = h.runId("dup");
      const task = simTask("once", { runMs: 200 }, { resourceType, numWorkers: 2 });
      const name = manifestName(runId, task, 1);
      const plural = resourceType === "Pod" ? "pods" : "tfjobs";
      const results = await Promise.all(
        Array.from({ length: 8 }, () => h.launch(backend, runId, task)),
      );
      assert.equal(results.filter((r) => !r.alreadyExisted).length, 1, resourceType);
      assert.ok(results.every((r) => r.objectName === name));
      assert.equal(h.sim.createCount(plural, name, testNamespace), 8, "eight create requests …");
      assert.equal(
        h.sim.created(plural).filter((o) => o.metadata.name === name).length,
        1,
        "… one object",
      );
      await h.reported(runId, "once", "SUCCEEDED");
      assert.deepEqual(
        h.of(runId, "once").map((e) => e.stateName),
        ["RUNNING", "SUCCEEDED"],
      );
    }
  });

  test("a launcher restarted while a task runs reports its end exactly once", async () => {
    const runId = h.runId("restart");
    const first = await h.backend();
    const task = simTask("long", { runMs: 1200 });
    await h.launch(first, runId, task);
    await h.reported(runId, "long", "RUNNING");
    await first.close(); // the task finishes while no launcher runs
    await h.sim.waitFor(
      "pods",
      (p) =>
        p.metadata.name === manifestName(runId, task, 1) &&
        (p.status as { phase?: string } | undefined)?.phase === "Succeeded",
      5000,
    );
    const second = await h.backend();
    await h.reported(runId, "long", "SUCCEEDED");
    // Two more launchers (a restart and a replica) see the same finished pod and report it again;
    // the deterministic message id makes the server drop those publishes.
    const third = await h.backend();
    const fourth = await h.backend();
    await sleep(500);
    assert.deepEqual(
      h.of(runId, "long").map((e) => e.stateName),
      ["RUNNING", "SUCCEEDED"],
    );
    await Promise.all([second.close(), third.close(), fourth.close()]);
  });

  test("a watch dropped mid-run loses no transition (resume from resourceVersion, and re-list after 410)", async () => {
    for (const compact of [false, true]) {
      const runId = h.runId(compact ? "gone" : "drop");
      const task = simTask("w", { runForever: true });
      const name = manifestName(runId, task, 1);
      await h.launch(backend, runId, task);
      await h.reported(runId, "w", "RUNNING");
      // Reconnects fail for a while, and the pod finishes while no watch is open.
      const faultsBefore = h.sim.stats().injectedFaults;
      const requestsBefore = h.sim.requests.length;
      h.sim.faults.failNext(3, 500, { match: { watch: true } });
      h.sim.faults.dropWatches();
      assert.ok(h.sim.succeedPod(testNamespace, name));
      if (compact) h.sim.compactHistory(); // the resumed watch gets 410 Gone: re-list
      await h.reported(runId, "w", "SUCCEEDED");
      assert.equal(h.sim.stats().injectedFaults - faultsBefore, 3, "three reconnects refused");
      const relisted = h.sim.requests
        .slice(requestsBefore)
        .some(
          (r) =>
            !r.watch &&
            r.method === "GET" &&
            r.path.endsWith("/pods") &&
            /managed-by/.test(decodeURIComponent(r.query)),
        );
      assert.equal(relisted, compact, compact ? "re-listed after 410" : "resumed without a list");
      assert.deepEqual(
        h.of(runId, "w").map((e) => e.stateName),
        ["RUNNING", "SUCCEEDED"],
      );
    }
    await waitUntil(
      () => h.sim.stats().openWatches >= 6,
      () => `watches reopened (open: ${h.sim.stats().openWatches})`,
    );
  });

  test("API 500s and 429s are retried (honouring Retry-After); a refusal is the caller's error", async () => {
    const runId = h.runId("faults");
    const before500 = backend.http.stats.retries;
    h.sim.faults.failNext(3, 500, { match: { method: "POST" } });
    const r = await h.launch(backend, runId, simTask("a", { runMs: 50 }));
    assert.equal(r.alreadyExisted, false);
    assert.ok(backend.http.stats.retries - before500 >= 3);

    h.sim.faults.failNext(1, 429, { match: { method: "POST" }, retryAfterSeconds: 1 });
    const t0 = Date.now();
    await h.launch(backend, runId, simTask("b", { runMs: 50 }));
    assert.ok(Date.now() - t0 >= 900, `waited ${Date.now() - t0} ms, Retry-After said 1 s`);
    // A refusal (422: a label key Kubernetes rejects) is INVALID_ARGUMENT with the API's message;
    // the caller (the scheduler) records it, so the backend reports no event of its own (checked
    // once the events of a and b, launched before, have arrived).
    await assert.rejects(
      h.launch(backend, runId, simTask("d", {}, { labels: { "not a key!": "x" } })),
      (err: Error) => err.name === "InvalidArgumentError" && /not a key!/.test(err.message),
    );
    await h.reported(runId, "a", "SUCCEEDED");
    await h.reported(runId, "b", "SUCCEEDED");

    // Past the retries: UNAVAILABLE for the caller to retry, and no event.
    const impatient = await h.backend({ retry: { retries: 1, baseDelayMs: 10, maxDelayMs: 20 } });
    h.sim.faults.failNext(5, 503, { match: { method: "POST" } });
    await assert.rejects(h.launch(impatient, runId, simTask("c", { runMs: 50 })), {
      name: "UnavailableError",
    });
    h.sim.faults.reset();

    assert.equal(h.of(runId, "d").length, 0, "a refused launch reports no event of its own");
    assert.equal(h.of(runId, "c").length, 0);
  });

  test("starting retries a failing list", async () => {
    h.sim.faults.failNext(2, 503, { match: { method: "GET", watch: false } });
    const b = await h.backend();
    assert.ok(b.http.stats.retries >= 2);
    await b.close();
  });

  test("image pull errors and unschedulable pods are ERROR after pending_timeout, then removed", async () => {
    const runId = h.runId("stuck");
    const t0 = Date.now();
    const pull = simTask("pull", { imagePullError: "manifest unknown" }, { pendingTimeoutMs: 500 });
    const nowhere = simTask(
      "nowhere",
      { unschedulable: "0/1 nodes have 8 free GPUs" },
      { resourceType: "Job" },
    );
    const quick = await h.backend({ defaultPendingTimeoutMs: 300 });
    await h.launch(backend, runId, pull); // its own pending_timeout: 500 ms
    await h.launch(quick, runId, nowhere); // none: the launcher's default, 300 ms
    const e1 = await h.reported(runId, "pull", "ERROR");
    assert.ok(Date.now() - t0 >= 500, "not before pending_timeout");
    assert.match(e1.reason, /^(ErrImagePull|ImagePullBackOff)$/);
    assert.match(e1.message, /manifest unknown/);
    const e2 = await h.reported(runId, "nowhere", "ERROR");
    assert.equal(e2.reason, "Unschedulable");
    assert.match(e2.message, /8 free GPUs/);
    // The stuck objects are deleted so they cannot start beside a retry; that is no "Deleted".
    await waitUntil(
      () => !h.sim.get("pods", testNamespace, manifestName(runId, pull, 1)),
      () => "the stuck pod deleted",
    );
    await waitUntil(
      () => !h.sim.get("jobs", testNamespace, manifestName(runId, nowhere, 1)),
      () => "the stuck job deleted",
    );
    await sleep(300);
    assert.deepEqual(
      [...h.of(runId, "pull"), ...h.of(runId, "nowhere")].map((e) => e.stateName),
      ["ERROR", "ERROR"],
    );
  });

  test("a launcher that did not launch a stuck attempt reads its pending_timeout from the objects, also as earlier launchers wrote it", async () => {
    // A launcher whose own default would wait ten minutes: only the annotation can end these soon.
    const patient = await h.backend({ defaultPendingTimeoutMs: 600_000 });
    const runId = h.runId("annotated");
    const stuck = { imagePullError: "manifest unknown" };
    const current = simTask("current", stuck, {
      annotations: { [pendingTimeoutAnnotation]: "300" },
    });
    const legacy = simTask("legacy", stuck, {
      annotations: { [legacyPendingTimeoutAnnotation]: "300" },
    });
    await h.launch(patient, runId, current);
    await h.launch(patient, runId, legacy);
    for (const task of ["current", "legacy"]) {
      const e = await h.reported(runId, task, "ERROR", 1, 120_000);
      assert.match(e.reason, /^(ErrImagePull|ImagePullBackOff)$/, task);
    }
    await patient.close();
  });

  test("objects deleted by someone else are ERROR Deleted", async () => {
    const runId = h.runId("deleted");
    const pod = simTask("pod", { runForever: true });
    const job = simTask("job", { runForever: true }, { resourceType: "Job" });
    await Promise.all([h.launch(backend, runId, pod), h.launch(backend, runId, job)]);
    await Promise.all([h.reported(runId, "pod", "RUNNING"), h.reported(runId, "job", "RUNNING")]);
    assert.ok(h.sim.deletePod(testNamespace, manifestName(runId, pod, 1)));
    await h.sim
      .kubeConfig()
      .makeApiClient(BatchV1Api)
      .deleteNamespacedJob({
        name: manifestName(runId, job, 1),
        namespace: testNamespace,
        propagationPolicy: "Background",
      });
    const e1 = await h.reported(runId, "pod", "ERROR");
    const e2 = await h.reported(runId, "job", "ERROR");
    assert.equal(e1.reason, "Deleted");
    assert.equal(e2.reason, "Deleted");
    assert.match(e2.message, /not by Odin/);
  });

  test("cancel deletes with background propagation and reports nothing more", async () => {
    const runId = h.runId("cancel");
    const job = simTask("job", { runForever: true }, { resourceType: "Job" });
    const pt = simTask("pt", { runForever: true }, { resourceType: "PyTorchJob", numWorkers: 2 });
    await Promise.all([h.launch(backend, runId, job), h.launch(backend, runId, pt)]);
    await Promise.all([h.reported(runId, "job", "RUNNING"), h.reported(runId, "pt", "RUNNING")]);
    assert.equal(await backend.cancel({ runId, task: "job", attempt: 1 }), 1);
    assert.equal(await backend.cancel({ runId, task: "pt" }), 1);
    // The Job's pod goes too (a Job deleted without a propagation policy orphans its pod).
    await waitUntil(
      () =>
        h.sim
          .objects("pods", testNamespace)
          .every((p) => p.metadata.labels?.["odin.dev/run"] !== runId),
      () => "every pod of the run deleted",
    );
    await sleep(300);
    assert.deepEqual(
      [...h.of(runId, "job"), ...h.of(runId, "pt")].map((e) => e.stateName),
      ["RUNNING", "RUNNING"],
    );
    assert.equal(await backend.cancel({ runId, task: "job", attempt: 1 }), 0);
  });

  test("a cancel the API refuses leaves the task reported as it ends", async () => {
    const runId = h.runId("nocancel");
    const task = simTask("t", { runMs: 800 });
    const states: string[] = [];
    const impatient = await h.backend({ retry: { retries: 0 } }, (e) => {
      if (e.runId === runId) states.push(e.state);
      return Promise.resolve();
    });
    await h.launch(impatient, runId, task);
    await waitUntil(
      () => states.includes("RUNNING"),
      () => "RUNNING",
    );
    h.sim.faults.failNext(1, 503, { match: { method: "PATCH" } });
    await assert.rejects(impatient.cancel({ runId, task: "t" }), { name: "UnavailableError" });
    await waitUntil(
      () => states.includes("SUCCEEDED"),
      () => `SUCCEEDED reported by the launcher whose cancel failed (${states.join(",")})`,
    );
  });
});

describe("launchers sharing the attempts", () => {
  let h: LauncherHarness;
  before(async () => {
    h = await LauncherHarness.start();
  });
  after(async () => {
    await h.close();
  });

  test("two launchers split the attempts by shard: each watches its shards' objects alone, each attempt reported and its log read by one; the other takes over when one goes", async () => {
    const group = `share-${Date.now()}`;
    const shares = await Promise.all([
      Membership.join(h.bus, { group, heartbeatMs: 50 }),
      Membership.join(h.bus, { group, heartbeatMs: 50 }),
    ]);
    await waitUntil(
      () => shares.every((m) => m.members().length === 2),
      () => "both launchers see each other",
    );
    const reportedBy = [new Map<string, string[]>(), new Map<string, string[]>()];
    const reporter = (i: number) => {
      const publish = publishStateEvents(h.bus);
      return (e: TaskStateEvent): Promise<void> => {
        const key = `${e.runId}/${e.task}/${e.attempt}`;
        reportedBy[i]!.set(key, [...(reportedBy[i]!.get(key) ?? []), e.state]);
        return publish(e);
      };
    };
    const launchers = [
      await h.backend({ share: shares[0] }, reporter(0)),
      await h.backend({ share: shares[1] }, reporter(1)),
    ];
    // Which launcher an attempt belongs to: its shard's.
    const owner = (key: string) => {
      const [run, task, attempt] = key.split("/");
      const shard = shardKey(shardOf({ runId: run!, task: task!, attempt: Number(attempt) }));
      return shares[0].owns(shard) ? 0 : 1;
    };
    // Each launcher's pod watch selects its own shards: together every shard, none twice.
    const podWatches = () =>
      h.sim.requests.filter(
        (r) =>
          r.watch &&
          r.path.endsWith("/pods") &&
          r.status === 0 &&
          / in \(/.test(new URLSearchParams(r.query).get("labelSelector") ?? ""),
      );
    await waitUntil(
      () => podWatches().length === 2,
      () => `two sharded pod watches open, found ${podWatches().length}`,
    );
    const selected = podWatches().map((r) =>
      /shard in \(([\d,]+)\)/
        .exec(new URLSearchParams(r.query).get("labelSelector") ?? "")?.[1]
        ?.split(","),
    );
    assert.ok(
      selected.every((s) => s !== undefined && s.length > 0),
      JSON.stringify(selected),
    );
    const all = selected.flatMap((s) => s!.map(Number)).sort((a, b) => a - b);
    assert.deepEqual(
      all,
      Array.from({ length: shardCount }, (_, i) => i),
    );
    const runId = h.runId("share");
    const tasks = Array.from({ length: 20 }, (_, i) => simTask(`t${i}`, { runMs: 50 }));
    // Every launch goes to the first launcher, as when one scheduler drives the run.
    await Promise.all(tasks.map((t) => h.launch(launchers[0]!, runId, t)));
    for (const t of tasks) await h.reported(runId, t.name, "SUCCEEDED");
    const keys = tasks.map((t) => `${runId}/${t.name}/1`);
    for (const key of keys) {
      const by = reportedBy.map((m) => m.has(key));
      assert.equal(
        by.filter(Boolean).length,
        1,
        `${key} reported by one launcher: ${by.join(",")}`,
      );
      assert.equal(by[0], owner(key) === 0);
    }
    assert.ok(
      reportedBy.every((m) => m.size > 0),
      "both launchers report a share",
    );
    // Each finished pod's log is read once, by the launcher that reports it.
    const pods = new Set(tasks.map((t) => manifestName(runId, t, 1)));
    await waitUntil(
      () => [...pods].every((p) => h.sim.requests.some((r) => r.path.includes(`/pods/${p}/log`))),
      () => "every pod's log saved",
    );
    await sleep(300);
    for (const p of pods) {
      const reads = h.sim.requests.filter((r) => r.path.includes(`/pods/${p}/log`)).length;
      assert.equal(reads, 1, `log of ${p} read ${reads} times`);
    }

    // The second launcher stops while an attempt it reports runs: the first takes it over.
    let long = simTask("long0", { runMs: 1500 });
    for (let i = 1; owner(`${runId}/${long.name}/1`) !== 1; i++)
      long = simTask(`long${i}`, { runMs: 1500 });
    await h.launch(launchers[0]!, runId, long);
    await h.reported(runId, long.name, "RUNNING");
    const key = `${runId}/${long.name}/1`;
    assert.deepEqual(reportedBy[1]!.get(key), ["RUNNING"]);
    await launchers[1]!.close();
    await shares[1].close();
    await h.reported(runId, long.name, "SUCCEEDED");
    assert.equal(reportedBy[0]!.get(key)?.at(-1), "SUCCEEDED");
    assert.deepEqual(
      h.of(runId, long.name).map((e) => e.stateName),
      ["RUNNING", "SUCCEEDED"],
    );
    await shares[0].close();
  });
});
