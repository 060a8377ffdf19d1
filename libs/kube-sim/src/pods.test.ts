// The simulated kubelet as a client sees it: phases, container states, informers, logs, events.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import {
  ADD,
  CoreV1Api,
  type KubeConfig,
  Log,
  UPDATE,
  type V1Pod,
  makeInformer,
} from "@kubernetes/client-node";
import { type KubeSim, startKubeSim } from "./server.js";
import { codeOf, eventually, phase, podBody, recordWatch } from "./client-helpers.js";

let sim: KubeSim;
let kc: KubeConfig;
let core: CoreV1Api;

before(async () => {
  sim = await startKubeSim({ defaultRunMs: 5 });
  kc = sim.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
});
after(() => sim.close());

const readPod = (namespace: string, name: string): Promise<V1Pod> =>
  core.readNamespacedPod({ namespace, name });

test("a pod scripted to succeed and one to fail with exit code 3: a Watch sees every transition", async () => {
  const ns = "lifecycle";
  const watch = await recordWatch(kc, `/api/v1/namespaces/${ns}/pods`);
  try {
    sim.script({
      image: "*/failer:*",
      exitCode: 3,
      runMs: 20,
      terminationMessage: "loss diverged",
    });
    await core.createNamespacedPod({
      namespace: ns,
      body: podBody("ok", { image: "registry/worker:1" }),
    });
    await core.createNamespacedPod({
      namespace: ns,
      body: podBody("bad", { image: "registry/failer:2" }),
    });

    const succeeded = await watch.next(
      (e) => e.object.metadata.name === "ok" && phase(e.object) === "Succeeded",
    );
    const failed = await watch.next(
      (e) => e.object.metadata.name === "bad" && phase(e.object) === "Failed",
    );
    const phases = (name: string) =>
      watch.events
        .filter((e) => e.object.metadata.name === name)
        .map((e) => `${e.type}:${phase(e.object)}`);
    assert.deepEqual(phases("ok"), [
      "ADDED:Pending",
      "MODIFIED:Pending",
      "MODIFIED:Running",
      "MODIFIED:Succeeded",
    ]);
    assert.deepEqual(phases("bad"), [
      "ADDED:Pending",
      "MODIFIED:Pending",
      "MODIFIED:Running",
      "MODIFIED:Failed",
    ]);
    assert.equal(succeeded.type, "MODIFIED");
    assert.equal(failed.type, "MODIFIED");

    const bad = await readPod(ns, "bad");
    const terminated = bad.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(terminated?.exitCode, 3);
    assert.equal(terminated?.reason, "Error");
    assert.equal(terminated?.message, "loss diverged");
    assert.equal(bad.spec?.nodeName, "kube-sim-node");
    const ok = await readPod(ns, "ok");
    assert.equal(ok.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
    assert.equal(ok.status?.containerStatuses?.[0]?.state?.terminated?.reason, "Completed");
    const running = watch.events.find(
      (e) => e.object.metadata.name === "ok" && phase(e.object) === "Running",
    );
    const runningPod = running?.object as V1Pod | undefined;
    assert.ok(runningPod?.status?.containerStatuses?.[0]?.state?.running?.startedAt !== undefined);
    assert.equal(runningPod?.status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
  } finally {
    watch.stop();
    sim.clearScripts();
  }
});

test("an informer sees ADDED then UPDATE for a pod that runs", async () => {
  const ns = "informer";
  const path = `/api/v1/namespaces/${ns}/pods`;
  const informer = makeInformer(kc, path, () => core.listNamespacedPod({ namespace: ns }));
  const seen: string[] = [];
  informer.on(ADD, (pod: V1Pod) => seen.push(`add:${pod.metadata?.name}:${pod.status?.phase}`));
  informer.on(UPDATE, (pod: V1Pod) =>
    seen.push(`update:${pod.metadata?.name}:${pod.status?.phase}`),
  );
  await core.createNamespacedPod({ namespace: ns, body: podBody("before-start") });
  await informer.start();
  try {
    await core.createNamespacedPod({ namespace: ns, body: podBody("after-start") });
    await eventually(() => (seen.includes("update:after-start:Succeeded") ? true : undefined));
    assert.ok(
      seen.some((s) => s.startsWith("add:before-start")),
      "listed pod arrives as add",
    );
    assert.ok(seen.includes("add:after-start:Pending"), "watched pod arrives as add");
    assert.ok(seen.includes("update:after-start:Running"));
  } finally {
    await informer.stop();
  }
});

test("image pull error: ErrImagePull then ImagePullBackOff, pod stays Pending, events say why", async () => {
  const ns = "pull";
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("p", { image: "nope/missing:1", script: { imagePullError: true } }),
  });
  const pod = await eventually(async () => {
    const p = await readPod(ns, "p");
    return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === "ImagePullBackOff"
      ? p
      : undefined;
  });
  assert.equal(pod.status?.phase, "Pending");
  const events = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: "involvedObject.name=p",
  });
  const reasons = events.items.map((e) => e.reason);
  assert.ok(reasons.includes("Failed") && reasons.includes("BackOff"), reasons.join(","));
  assert.ok(events.items.some((e) => e.message === "Error: ErrImagePull" && e.type === "Warning"));
  // Logs of a container waiting for its image are refused, as on a cluster.
  await assert.rejects(
    core.readNamespacedPodLog({ namespace: ns, name: "p" }),
    (e) => codeOf(e) === 400,
  );
});

test("unschedulable: PodScheduled=False/Unschedulable and a FailedScheduling event", async () => {
  const ns = "unschedulable";
  sim.script({
    name: "gpu-*",
    unschedulable: "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
  });
  try {
    await core.createNamespacedPod({ namespace: ns, body: podBody("gpu-hungry") });
    const pod = await eventually(async () => {
      const p = await readPod(ns, "gpu-hungry");
      return p.status?.conditions?.some((c) => c.type === "PodScheduled") ? p : undefined;
    });
    const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
    assert.equal(scheduled?.status, "False");
    assert.equal(scheduled?.reason, "Unschedulable");
    assert.equal(pod.status?.phase, "Pending");
    assert.equal(pod.spec?.nodeName, undefined);
    const events = await core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: "involvedObject.kind=Pod,reason=FailedScheduling",
    });
    assert.equal(events.items.length, 1);
    assert.equal(events.items[0]?.involvedObject.name, "gpu-hungry");
    assert.match(events.items[0]?.message ?? "", /Insufficient nvidia.com\/gpu/);
  } finally {
    sim.clearScripts();
  }
});

test("events: lifecycle reasons recorded with involvedObject; fieldSelector filters them", async () => {
  const ns = "events";
  await core.createNamespacedPod({ namespace: ns, body: podBody("a", { image: "events/app:1" }) });
  await eventually(async () =>
    (await readPod(ns, "a")).status?.phase === "Succeeded" ? true : undefined,
  );
  await core.createNamespacedPod({ namespace: ns, body: podBody("b", { image: "events/app:1" }) });
  await eventually(async () =>
    (await readPod(ns, "b")).status?.phase === "Succeeded" ? true : undefined,
  );
  const reasons = async (pod: string): Promise<(string | undefined)[]> =>
    (
      await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${pod}` })
    ).items.map((e) => e.reason);
  assert.deepEqual(await reasons("a"), ["Scheduled", "Pulling", "Pulled", "Created", "Started"]);
  // The image is on the node now: no pull for the second pod.
  assert.deepEqual(await reasons("b"), ["Scheduled", "Pulled", "Created", "Started"]);
  const forA = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=a,involvedObject.namespace=${ns}`,
  });
  for (const e of forA.items) {
    assert.equal(e.involvedObject.kind, "Pod");
    assert.equal(e.involvedObject.name, "a");
    assert.ok(e.involvedObject.uid);
  }
  const started = await core.listEventForAllNamespaces({
    fieldSelector: `reason=Started,involvedObject.namespace=${ns}`,
  });
  assert.equal(started.items.length, 2);
  await assert.rejects(
    core.listNamespacedEvent({ namespace: ns, fieldSelector: "spec.bogus=x" }),
    (e) => codeOf(e) === 400,
  );
});

function collector(): { stream: Writable; text: () => string; finished: Promise<void> } {
  let text = "";
  let resolve: () => void = () => undefined;
  const finished = new Promise<void>((r) => (resolve = r));
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString("utf8");
      callback();
    },
    final(callback) {
      resolve();
      callback();
    },
  });
  return { stream, text: () => text, finished };
}

test("logs: tailLines, timestamps, container, follow until the container exits; 404 for an unknown pod", async () => {
  const ns = "logs";
  const lines = ["epoch 1", "epoch 2", "epoch 3", "epoch 4"];
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("done", { script: { logs: lines, runMs: 0 } }),
  });
  await eventually(async () =>
    (await readPod(ns, "done")).status?.phase === "Succeeded" ? true : undefined,
  );
  assert.equal(
    await core.readNamespacedPodLog({ namespace: ns, name: "done" }),
    lines.map((l) => `${l}\n`).join(""),
  );
  assert.equal(
    await core.readNamespacedPodLog({ namespace: ns, name: "done", tailLines: 2 }),
    "epoch 3\nepoch 4\n",
  );
  const stamped = await core.readNamespacedPodLog({
    namespace: ns,
    name: "done",
    timestamps: true,
    tailLines: 1,
  });
  assert.match(stamped, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z epoch 4\n$/);
  assert.equal(
    await new Promise<number | undefined>((resolve) => {
      core.readNamespacedPodLog({ namespace: ns, name: "missing" }).then(
        () => resolve(200),
        (e: unknown) => resolve(codeOf(e)),
      );
    }),
    404,
  );
  await assert.rejects(
    core.readNamespacedPodLog({ namespace: ns, name: "done", previous: true }),
    (e) => codeOf(e) === 400,
  );

  // Two containers: the container parameter is required and selects the stream.
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("pair", { containers: ["main", "side"], script: { logs: ["hello"], runMs: 0 } }),
  });
  await eventually(async () =>
    (await readPod(ns, "pair")).status?.phase === "Succeeded" ? true : undefined,
  );
  await assert.rejects(
    core.readNamespacedPodLog({ namespace: ns, name: "pair" }),
    (e) => codeOf(e) === 400,
  );
  assert.equal(
    await core.readNamespacedPodLog({ namespace: ns, name: "pair", container: "side" }),
    "hello\n",
  );

  // follow: lines arrive as the container prints them; the stream ends when it exits.
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("live", { script: { logs: ["first", "second", "third"], runMs: 600 } }),
  });
  await eventually(async () =>
    (await readPod(ns, "live")).status?.phase === "Running" ? true : undefined,
  );
  const out = collector();
  await new Log(kc).log(ns, "live", "main", out.stream, { follow: true });
  await eventually(() => (out.text().startsWith("first\n") ? true : undefined));
  assert.ok(!out.text().includes("third"), "later lines are not there yet");
  await out.finished;
  assert.equal(out.text(), "first\nsecond\nthird\n");
  assert.equal((await readPod(ns, "live")).status?.phase, "Succeeded");

  // follow with tailLines on a running pod, plus a line appended from outside.
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("forever", { script: { logs: ["a", "b", "c"], runForever: true } }),
  });
  await eventually(async () =>
    (await readPod(ns, "forever")).status?.phase === "Running" ? true : undefined,
  );
  const tail = collector();
  await new Log(kc).log(ns, "forever", "main", tail.stream, { follow: true, tailLines: 1 });
  await eventually(() => (tail.text() === "c\n" ? true : undefined));
  assert.ok(sim.appendLog(ns, "forever", "d"));
  await eventually(() => (tail.text() === "c\nd\n" ? true : undefined));
  assert.ok(sim.failPod(ns, "forever", { exitCode: 137, reason: "OOMKilled" }));
  await tail.finished;
  assert.equal(sim.appendLog(ns, "forever", "e"), false, "an exited container prints nothing more");
  const killed = await readPod(ns, "forever");
  assert.equal(killed.status?.phase, "Failed");
  assert.equal(killed.status?.containerStatuses?.[0]?.state?.terminated?.reason, "OOMKilled");
});

test("termination message falls back to the log tail with FallbackToLogsOnError", async () => {
  const ns = "termination";
  const body = podBody("fallback", {
    script: { exitCode: 2, logs: ["Traceback", "ValueError: bad config"], runMs: 0 },
  });
  body.spec!.containers[0]!.terminationMessagePolicy = "FallbackToLogsOnError";
  await core.createNamespacedPod({ namespace: ns, body });
  const pod = await eventually(async () => {
    const p = await readPod(ns, "fallback");
    return p.status?.phase === "Failed" ? p : undefined;
  });
  assert.equal(
    pod.status?.containerStatuses?.[0]?.state?.terminated?.message,
    "Traceback\nValueError: bad config",
  );
});

test("external actions: a pod deleted from outside is MODIFIED with deletionTimestamp then DELETED", async () => {
  const ns = "external";
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("victim", { script: { runForever: true } }),
  });
  await eventually(async () =>
    (await readPod(ns, "victim")).status?.phase === "Running" ? true : undefined,
  );
  const watch = await recordWatch(kc, `/api/v1/namespaces/${ns}/pods`, {
    resourceVersion: (await readPod(ns, "victim")).metadata?.resourceVersion ?? "",
  });
  try {
    assert.ok(sim.deletePod(ns, "victim"));
    const deleted = await watch.next((e) => e.type === "DELETED");
    assert.equal(watch.events[0]?.type, "MODIFIED");
    assert.ok(watch.events[0]?.object.metadata.deletionTimestamp);
    assert.equal(deleted.object.metadata.name, "victim");
    const killing = await core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: "reason=Killing",
    });
    assert.equal(killing.items.length, 1);
    assert.equal(sim.deletePod(ns, "victim"), false);
  } finally {
    watch.stop();
  }
  // Evicted from outside: Failed with a pod-level reason.
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("evicted", { script: { runForever: true } }),
  });
  await eventually(async () =>
    (await readPod(ns, "evicted")).status?.phase === "Running" ? true : undefined,
  );
  assert.ok(
    sim.failPod(ns, "evicted", {
      podReason: "Evicted",
      podMessage: "The node was low on resource: memory.",
    }),
  );
  const evicted = await readPod(ns, "evicted");
  assert.equal(evicted.status?.phase, "Failed");
  assert.equal(evicted.status?.reason, "Evicted");
});

test("startMs keeps a pod in ContainerCreating; activeDeadlineSeconds fails it", async () => {
  const ns = "timing";
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("slow", { script: { startMs: 500, runMs: 0 } }),
  });
  const creating = await eventually(async () => {
    const p = await readPod(ns, "slow");
    return p.spec?.nodeName !== undefined ? p : undefined;
  });
  assert.equal(creating.status?.phase, "Pending");
  assert.equal(
    creating.status?.containerStatuses?.[0]?.state?.waiting?.reason,
    "ContainerCreating",
  );
  await eventually(async () =>
    (await readPod(ns, "slow")).status?.phase === "Succeeded" ? true : undefined,
  );

  const body = podBody("deadline", { script: { runForever: true } });
  body.spec!.activeDeadlineSeconds = 1;
  await core.createNamespacedPod({ namespace: ns, body });
  const pod = await eventually(async () => {
    const p = await readPod(ns, "deadline");
    return p.status?.phase === "Failed" ? p : undefined;
  }, 3000);
  assert.equal(pod.status?.reason, "DeadlineExceeded");
  assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 137);
  const fractional = podBody("fractional");
  fractional.spec!.activeDeadlineSeconds = 0.5;
  await assert.rejects(
    core.createNamespacedPod({ namespace: ns, body: fractional }),
    (e) => codeOf(e) === 422,
  );
});

test("imageID: the digest a tag resolved to when the pod was created; a pushed tag moves for new pods only", async () => {
  const ns = "images";
  const digest = (pod: V1Pod) => pod.status?.containerStatuses?.[0]?.imageID ?? "";
  const done = async (name: string) =>
    eventually(async () => {
      const pod = await readPod(ns, name);
      return pod.status?.phase === "Succeeded" ? pod : undefined;
    });
  sim.script({ image: "registry/train:*", runMs: 50 });
  try {
    await core.createNamespacedPod({
      namespace: ns,
      body: podBody("before", { image: "registry/train:latest" }),
    });
    const pushed = `sha256:${"c".repeat(64)}`;
    sim.pushImage("registry/train:latest", pushed);
    await core.createNamespacedPod({
      namespace: ns,
      body: podBody("after", { image: "registry/train:latest" }),
    });
    const pinned = `sha256:${"d".repeat(64)}`;
    await core.createNamespacedPod({
      namespace: ns,
      body: podBody("pinned", { image: `registry/train@${pinned}` }),
    });
    const before = digest(await done("before"));
    assert.match(before, /^registry\/train@sha256:[0-9a-f]{64}$/);
    assert.notEqual(before, `registry/train@${pushed}`);
    assert.equal(digest(await done("after")), `registry/train@${pushed}`);
    assert.equal(digest(await done("pinned")), `registry/train@${pinned}`);
    assert.throws(() => sim.pushImage("x", "latest"), /sha256:<64 hex digits>/);
  } finally {
    sim.clearScripts();
  }
});
