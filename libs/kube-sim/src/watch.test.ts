// Watch semantics: resourceVersion resume, 410 Gone, bookmarks, selector transitions.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  ADD,
  CoreV1Api,
  ERROR,
  type KubeConfig,
  type V1Pod,
  makeInformer,
} from "@kubernetes/client-node";
import { type KubeSim, startKubeSim } from "./server.js";
import { eventually, podBody, recordWatch } from "./client-helpers.js";

let sim: KubeSim;
let kc: KubeConfig;
let core: CoreV1Api;

before(async () => {
  sim = await startKubeSim({ defaultRunMs: 5, bookmarkIntervalMs: 50, watchHistorySize: 50 });
  kc = sim.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
});
after(() => sim.close());

test("a watch from a resourceVersion gets exactly the changes after it, in order", async () => {
  const ns = "resume";
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("one", { script: { runForever: true } }),
  });
  const list = await core.listNamespacedPod({ namespace: ns });
  const rv = list.metadata?.resourceVersion ?? "";
  // Changes made while nobody watches...
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("two", { script: { runForever: true } }),
  });
  await core.deleteNamespacedPod({ namespace: ns, name: "one", gracePeriodSeconds: 0 });
  // ...are replayed to a watch that resumes from the list's version.
  const watch = await recordWatch(kc, `/api/v1/namespaces/${ns}/pods`, { resourceVersion: rv });
  try {
    await watch.next((e) => e.type === "DELETED" && e.object.metadata.name === "one");
    await watch.next((e) => e.type === "ADDED" && e.object.metadata.name === "two");
    const versions = watch.events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.ok(
      versions.every((v) => v > Number(rv)),
      "nothing at or before the requested version",
    );
    assert.deepEqual(
      versions,
      [...versions].sort((a, b) => a - b),
      "in resourceVersion order",
    );
    assert.ok(!watch.events.some((e) => e.type === "ADDED" && e.object.metadata.name === "one"));
  } finally {
    watch.stop();
  }
});

test("a watch from a version older than the retained history gets a 410 Expired ERROR event", async () => {
  const ns = "expired";
  const first = await core.createNamespacedPod({
    namespace: ns,
    body: podBody("old", { script: { runForever: true } }),
  });
  const oldRv = first.metadata?.resourceVersion ?? "";
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("newer", { script: { runForever: true } }),
  });
  // History now starts after "newer": the changes right after oldRv are gone.
  sim.compactHistory();
  const watch = await recordWatch(kc, `/api/v1/namespaces/${ns}/pods`, { resourceVersion: oldRv });
  const error = await watch.next((e) => e.type === "ERROR");
  const status = error.object as unknown as { code: number; reason: string; message: string };
  assert.equal(status.code, 410);
  assert.equal(status.reason, "Expired");
  assert.match(status.message, /too old resource version/);
  assert.equal(await watch.ended, null, "the server closes the watch after the error");

  // Overflowing the (50-entry) history has the same effect without compaction.
  const rv = (await core.listNamespacedPod({ namespace: ns })).metadata?.resourceVersion ?? "";
  for (let i = 0; i < 30; i++) {
    await core.createNamespacedPod({ namespace: ns, body: podBody(`churn-${i}`) });
  }
  await eventually(async () =>
    (await core.listNamespacedPod({ namespace: ns })).items.every(
      (p) =>
        p.status?.phase !== "Pending" || p.metadata?.name === "old" || p.metadata?.name === "newer",
    )
      ? true
      : undefined,
  );
  const late = await recordWatch(kc, `/api/v1/namespaces/${ns}/pods`, { resourceVersion: rv });
  const lateError = await late.next((e) => e.type === "ERROR");
  assert.equal((lateError.object as unknown as { code: number }).code, 410);
});

test("an informer recovers from 410 by listing again", async () => {
  const ns = "informer-410";
  const informer = makeInformer(kc, `/api/v1/namespaces/${ns}/pods`, () =>
    core.listNamespacedPod({ namespace: ns }),
  );
  const added: string[] = [];
  const errors: unknown[] = [];
  informer.on(ADD, (pod: V1Pod) => added.push(pod.metadata?.name ?? ""));
  informer.on(ERROR, (err: unknown) => errors.push(err));
  await informer.start();
  try {
    await core.createNamespacedPod({
      namespace: ns,
      body: podBody("a", { script: { runForever: true } }),
    });
    await eventually(() => (added.includes("a") ? true : undefined));
    sim.compactHistory();
    sim.faults.dropWatches({ graceful: true });
    await core.createNamespacedPod({
      namespace: ns,
      body: podBody("b", { script: { runForever: true } }),
    });
    await eventually(() => (added.includes("b") ? true : undefined));
    assert.deepEqual(errors, []);
    assert.deepEqual(
      informer
        .list(ns)
        .map((p) => p.metadata?.name)
        .sort(),
      ["a", "b"],
    );
  } finally {
    await informer.stop();
  }
});

test("bookmarks arrive on watches that allow them and carry the current resourceVersion", async () => {
  const ns = "bookmarks";
  const withBookmarks = await recordWatch(kc, `/api/v1/namespaces/${ns}/pods`, {
    allowWatchBookmarks: true,
  });
  const without = await recordWatch(kc, `/api/v1/namespaces/${ns}/pods`);
  try {
    await core.createNamespacedPod({ namespace: ns, body: podBody("p") });
    const bookmark = await withBookmarks.next((e) => e.type === "BOOKMARK", 2000);
    assert.equal(bookmark.object.kind, "Pod");
    assert.ok(Number(bookmark.object.metadata.resourceVersion) > 0);
    await withBookmarks.next((e) => e.type === "BOOKMARK" && e !== bookmark, 2000);
    assert.ok(!without.events.some((e) => e.type === "BOOKMARK"));
  } finally {
    withBookmarks.stop();
    without.stop();
  }
});

test("a label-selected watch sees an object leave and enter the selection as DELETED and ADDED", async () => {
  const ns = "selector";
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("p", { labels: { team: "a" }, script: { runForever: true } }),
  });
  const watch = await recordWatch(kc, `/api/v1/namespaces/${ns}/pods`, { labelSelector: "team=a" });
  try {
    await watch.next((e) => e.type === "ADDED");
    const patch = (team: string) =>
      core.patchNamespacedPod({
        namespace: ns,
        name: "p",
        body: [{ op: "replace", path: "/metadata/labels/team", value: team }],
      });
    await patch("b");
    await watch.next((e) => e.type === "DELETED");
    await patch("a");
    await eventually(() =>
      watch.events.filter((e) => e.type === "ADDED").length === 2 ? true : undefined,
    );
  } finally {
    watch.stop();
  }
});

test("all-namespaces watch and sendInitialEvents end with an initial-events-end bookmark", async () => {
  await core.createNamespacedPod({
    namespace: "all-a",
    body: podBody("x", { script: { runForever: true } }),
  });
  await core.createNamespacedPod({
    namespace: "all-b",
    body: podBody("y", { script: { runForever: true } }),
  });
  const watch = await recordWatch(kc, "/api/v1/pods", {
    sendInitialEvents: true,
    allowWatchBookmarks: true,
    resourceVersionMatch: "NotOlderThan",
    labelSelector: "!job-name",
  });
  try {
    const end = await watch.next((e) => e.type === "BOOKMARK");
    assert.equal(end.object.metadata.annotations?.["k8s.io/initial-events-end"], "true");
    const names = watch.events
      .filter((e) => e.type === "ADDED")
      .map((e) => `${e.object.metadata.namespace}/${e.object.metadata.name}`);
    assert.ok(names.includes("all-a/x") && names.includes("all-b/y"), names.join(","));
  } finally {
    watch.stop();
  }
});
