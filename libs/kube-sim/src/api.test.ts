// CRUD of every served type through the real @kubernetes/client-node client.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { type KubeSim, startKubeSim } from "./server.js";
import { codeOf, eventually, podBody, statusOf, template } from "./client-helpers.js";
import type { KubeObject } from "./types.js";

let sim: KubeSim;
let kc: KubeConfig;
let core: CoreV1Api;
let batch: BatchV1Api;
let custom: CustomObjectsApi;

before(async () => {
  sim = await startKubeSim({ defaultRunMs: 5 });
  kc = sim.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
});
after(() => sim.close());

async function rejects(
  promise: Promise<unknown>,
): Promise<{ code: number | undefined; reason: string | undefined; message: string }> {
  try {
    await promise;
  } catch (error) {
    const status = statusOf(error);
    return { code: codeOf(error), reason: status?.reason, message: status?.message ?? "" };
  }
  assert.fail("expected the call to be refused");
}

test("pods: create, get, list by label, delete; server-set metadata", async () => {
  const ns = "crud-pods";
  const created = await core.createNamespacedPod({
    namespace: ns,
    body: podBody("web-1", { labels: { app: "web", tier: "front" } }),
  });
  assert.equal(created.metadata?.name, "web-1");
  assert.equal(created.metadata?.namespace, ns);
  assert.match(created.metadata?.uid ?? "", /^[0-9a-f-]{36}$/);
  assert.ok(created.metadata?.creationTimestamp instanceof Date);
  assert.equal(created.status?.phase, "Pending");
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("web-2", { labels: { app: "web", tier: "back" } }),
  });
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("db-1", { labels: { app: "db" } }),
  });
  const rv2 = Number(
    (await core.readNamespacedPod({ namespace: ns, name: "web-2" })).metadata?.resourceVersion,
  );
  assert.ok(rv2 > Number(created.metadata?.resourceVersion), "resourceVersion increases");

  const names = async (labelSelector: string): Promise<string[]> =>
    (await core.listNamespacedPod({ namespace: ns, labelSelector })).items
      .map((p) => p.metadata?.name ?? "")
      .sort();
  assert.deepEqual(await names("app=web"), ["web-1", "web-2"]);
  assert.deepEqual(await names("app==web,tier!=front"), ["web-2"]);
  assert.deepEqual(await names("app in (db, cache)"), ["db-1"]);
  assert.deepEqual(await names("app notin (web)"), ["db-1"]);
  assert.deepEqual(await names("tier"), ["web-1", "web-2"]);
  assert.deepEqual(await names("!tier"), ["db-1"]);

  const list = await core.listNamespacedPod({ namespace: ns });
  assert.ok(
    Number(list.metadata?.resourceVersion) >= rv2,
    "list carries the current resourceVersion",
  );
  const all = await core.listPodForAllNamespaces({ labelSelector: "app=db" });
  assert.deepEqual(
    all.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`),
    [`${ns}/db-1`],
  );

  await core.deleteNamespacedPod({ namespace: ns, name: "db-1" });
  const gone = await rejects(core.readNamespacedPod({ namespace: ns, name: "db-1" }));
  assert.equal(gone.code, 404);
});

test("409 AlreadyExists, 404 NotFound and 422 Invalid are ApiExceptions with a Status body", async () => {
  const ns = "crud-errors";
  await core.createNamespacedPod({ namespace: ns, body: podBody("dup") });
  const dup = await rejects(core.createNamespacedPod({ namespace: ns, body: podBody("dup") }));
  assert.deepEqual(
    [dup.code, dup.reason, dup.message],
    [409, "AlreadyExists", 'pods "dup" already exists'],
  );

  const missing = await rejects(core.readNamespacedPod({ namespace: ns, name: "nope" }));
  assert.deepEqual(
    [missing.code, missing.reason, missing.message],
    [404, "NotFound", 'pods "nope" not found'],
  );
  const missingJob = await rejects(batch.readNamespacedJob({ namespace: ns, name: "nope" }));
  assert.equal(missingJob.message, 'jobs.batch "nope" not found');

  for (const bad of ["Upper", "under_score", "-dash", "a".repeat(254)]) {
    const invalid = await rejects(core.createNamespacedPod({ namespace: ns, body: podBody(bad) }));
    assert.equal(invalid.code, 422, bad);
    assert.equal(invalid.reason, "Invalid");
    assert.match(invalid.message, /metadata\.name: Invalid value/);
  }
  // Dots are fine in a pod name (DNS-1123 subdomain) but not in a TFJob name (DNS-1035 label).
  await core.createNamespacedPod({ namespace: ns, body: podBody("with.dots") });
  const tf = await rejects(
    custom.createNamespacedCustomObject({
      group: "kubeflow.org",
      version: "v1",
      namespace: ns,
      plural: "tfjobs",
      body: {
        apiVersion: "kubeflow.org/v1",
        kind: "TFJob",
        metadata: { name: "1-starts-with-digit" },
        spec: { tfReplicaSpecs: { Worker: { template: template() } } },
      },
    }),
  );
  assert.equal(tf.code, 422);
  // A Job name must fit in the job-name label.
  const longJob = await rejects(
    batch.createNamespacedJob({
      namespace: ns,
      body: { metadata: { name: "j".repeat(64) }, spec: { template: template() } },
    }),
  );
  assert.equal(longJob.code, 422);

  const noImage = await rejects(
    core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: "no-image" }, spec: { containers: [{ name: "main" }] } },
    }),
  );
  assert.equal(noImage.code, 422);
  assert.match(noImage.message, /spec\.containers\[0\]\.image: Required value/);
  const badLabel = await rejects(
    core.createNamespacedPod({
      namespace: ns,
      body: podBody("bad-label", { labels: { app: "has space" } }),
    }),
  );
  assert.equal(badLabel.code, 422);
  const jobAlways = await rejects(
    batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: "always" },
        spec: {
          template: { spec: { restartPolicy: "Always", containers: [{ name: "m", image: "x" }] } },
        },
      },
    }),
  );
  assert.equal(jobAlways.code, 422);
  assert.match(jobAlways.message, /restartPolicy: Unsupported value: "Always"/);
  const badScript = await rejects(
    core.createNamespacedPod({
      namespace: ns,
      body: {
        ...podBody("bad-script"),
        metadata: { name: "bad-script", annotations: { "kube-sim/script": '{"exitcode":1}' } },
      },
    }),
  );
  assert.equal(badScript.code, 422);
  assert.match(badScript.message, /unknown key "exitcode"/);
});

test("generateName gets a random suffix; create counts and the created list see every call", async () => {
  const ns = "crud-generate";
  const a = await core.createNamespacedPod({
    namespace: ns,
    body: { ...podBody(""), metadata: { generateName: "gen-" } },
  });
  const b = await core.createNamespacedPod({
    namespace: ns,
    body: { ...podBody(""), metadata: { generateName: "gen-" } },
  });
  assert.match(a.metadata?.name ?? "", /^gen-[a-z0-9]{5}$/);
  assert.notEqual(a.metadata?.name, b.metadata?.name);
  const missing = await rejects(
    core.createNamespacedPod({ namespace: ns, body: { ...podBody(""), metadata: {} } }),
  );
  assert.equal(missing.code, 422);

  await core.createNamespacedPod({ namespace: ns, body: podBody("counted") });
  await rejects(core.createNamespacedPod({ namespace: ns, body: podBody("counted") }));
  assert.equal(
    sim.createCount("pods", "counted", ns),
    2,
    "both calls counted, refused one included",
  );
  assert.equal(
    sim.created("pods").filter((p) => p.metadata.name === "counted").length,
    1,
    "one object created",
  );
  assert.ok(
    sim.requests.some(
      (r) => r.method === "POST" && r.path === `/api/v1/namespaces/${ns}/pods` && r.status === 409,
    ),
  );
});

test("batch/v1 jobs: create, get, list by label, delete with Background propagation removes the pod", async () => {
  const ns = "crud-jobs";
  await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: { name: "train", labels: { run: "r1" } },
      spec: { backoffLimit: 0, template: template({ script: { runForever: true } }) },
    },
  });
  const job = await batch.readNamespacedJob({ namespace: ns, name: "train" });
  assert.equal(job.metadata?.labels?.["run"], "r1");
  const listed = await batch.listNamespacedJob({ namespace: ns, labelSelector: "run=r1" });
  assert.deepEqual(
    listed.items.map((j) => j.metadata?.name),
    ["train"],
  );
  const pod = await eventually(
    async () =>
      (await core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=train" })).items[0],
  );
  assert.equal(pod.metadata?.labels?.["batch.kubernetes.io/job-name"], "train");
  assert.equal(pod.metadata?.ownerReferences?.[0]?.kind, "Job");
  assert.equal(pod.metadata?.ownerReferences?.[0]?.uid, job.metadata?.uid);

  await batch.deleteNamespacedJob({
    namespace: ns,
    name: "train",
    propagationPolicy: "Background",
  });
  assert.equal(
    (await rejects(batch.readNamespacedJob({ namespace: ns, name: "train" }))).code,
    404,
  );
  await eventually(async () =>
    (await core.listNamespacedPod({ namespace: ns })).items.length === 0 ? true : undefined,
  );
});

test("deleting a Job without a policy orphans its pod (batch/v1 default); Foreground removes it", async () => {
  const ns = "crud-orphan";
  for (const name of ["orphaner", "foreground"]) {
    await batch.createNamespacedJob({
      namespace: ns,
      body: { metadata: { name }, spec: { template: template({ script: { runForever: true } }) } },
    });
  }
  const podOf = (job: string) =>
    eventually(
      async () =>
        (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${job}` }))
          .items[0],
    );
  const orphan = await podOf("orphaner");
  const fg = await podOf("foreground");
  await batch.deleteNamespacedJob({ namespace: ns, name: "orphaner" });
  const after = await core.readNamespacedPod({ namespace: ns, name: orphan.metadata?.name ?? "" });
  assert.equal(after.metadata?.ownerReferences, undefined, "owner reference removed, pod kept");
  await batch.deleteNamespacedJob({
    namespace: ns,
    name: "foreground",
    propagationPolicy: "Foreground",
  });
  assert.equal(
    (await rejects(core.readNamespacedPod({ namespace: ns, name: fg.metadata?.name ?? "" }))).code,
    404,
  );
});

const TRAINING = [
  { plural: "tfjobs", group: "kubeflow.org", version: "v1", kind: "TFJob", key: "tfReplicaSpecs" },
  {
    plural: "pytorchjobs",
    group: "kubeflow.org",
    version: "v1",
    kind: "PyTorchJob",
    key: "pytorchReplicaSpecs",
  },
  {
    plural: "mpijobs",
    group: "kubeflow.org",
    version: "v2beta1",
    kind: "MPIJob",
    key: "mpiReplicaSpecs",
  },
  {
    plural: "elasticjobs",
    group: "elastic.pytorch.org",
    version: "v1alpha1",
    kind: "ElasticJob",
    key: "replicaSpecs",
  },
] as const;

for (const t of TRAINING) {
  test(`${t.kind}: create, get, list by label, 409, delete removes its pods`, async () => {
    const namespace = `crud-${t.plural}`;
    const ref = { group: t.group, version: t.version, namespace, plural: t.plural };
    const body = {
      apiVersion: `${t.group}/${t.version}`,
      kind: t.kind,
      metadata: { name: "train", labels: { run: "r9" } },
      spec: {
        [t.key]: { Worker: { replicas: 2, template: template({ script: { runForever: true } }) } },
        // ElasticJob's CRD requires the rendezvous endpoint.
        ...(t.kind === "ElasticJob" ? { rdzvEndpoint: "etcd:2379" } : {}),
      },
    };
    const created = (await custom.createNamespacedCustomObject({ ...ref, body })) as KubeObject;
    assert.equal(created.kind, t.kind);
    assert.equal(created.apiVersion, `${t.group}/${t.version}`);
    const got = (await custom.getNamespacedCustomObject({ ...ref, name: "train" })) as KubeObject;
    assert.equal(got.metadata.uid, created.metadata.uid);
    const list = (await custom.listNamespacedCustomObject({ ...ref, labelSelector: "run=r9" })) as {
      kind: string;
      items: KubeObject[];
    };
    assert.equal(list.kind, `${t.kind}List`);
    assert.deepEqual(
      list.items.map((o) => o.metadata.name),
      ["train"],
    );
    assert.equal(
      (
        (await custom.listNamespacedCustomObject({ ...ref, labelSelector: "run=other" })) as {
          items: unknown[];
        }
      ).items.length,
      0,
    );
    assert.equal((await rejects(custom.createNamespacedCustomObject({ ...ref, body }))).code, 409);
    // Custom resources must name their kind and apiVersion (unlike built-in types).
    const { kind: _kind, ...kindless } = body;
    const missingKind = await rejects(
      custom.createNamespacedCustomObject({
        ...ref,
        body: { ...kindless, metadata: { name: "kindless" } },
      }),
    );
    assert.equal(missingKind.code, 400);
    assert.match(missingKind.message, /Object 'Kind' is missing/);
    await eventually(async () =>
      (
        await core.listNamespacedPod({
          namespace,
          labelSelector: "training.kubeflow.org/job-name=train",
        })
      ).items.length === 2
        ? true
        : undefined,
    );
    await custom.deleteNamespacedCustomObject({ ...ref, name: "train" });
    assert.equal(
      (await rejects(custom.getNamespacedCustomObject({ ...ref, name: "train" }))).code,
      404,
    );
    await eventually(async () =>
      (await core.listNamespacedPod({ namespace })).items.length === 0 ? true : undefined,
    );
  });
}

test("patch (merge and JSON patch), replace with a stale resourceVersion is a 409", async () => {
  const ns = "crud-patch";
  await core.createNamespacedPod({
    namespace: ns,
    body: podBody("p", { labels: { a: "1" }, script: { runForever: true } }),
  });
  const merged = await core.patchNamespacedPod(
    { namespace: ns, name: "p", body: { metadata: { labels: { b: "2" } } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  assert.deepEqual(merged.metadata?.labels, { a: "1", b: "2" });
  const patched = await core.patchNamespacedPod({
    namespace: ns,
    name: "p",
    body: [{ op: "replace", path: "/metadata/labels/a", value: "3" }],
  });
  assert.equal(patched.metadata?.labels?.["a"], "3");
  const current = await core.readNamespacedPod({ namespace: ns, name: "p" });
  current.metadata!.resourceVersion = "1";
  assert.equal(
    (await rejects(core.replaceNamespacedPod({ namespace: ns, name: "p", body: current }))).code,
    409,
  );
});

test("discovery endpoints answer like an API server", async () => {
  const res = await fetch(`${sim.url}/apis`);
  const groups = (await res.json()) as { groups: { name: string }[] };
  assert.deepEqual(groups.groups.map((g) => g.name).sort(), [
    "batch",
    "elastic.pytorch.org",
    "kubeflow.org",
  ]);
  const v1 = (await (await fetch(`${sim.url}/api/v1`)).json()) as { resources: { name: string }[] };
  assert.ok(v1.resources.some((r) => r.name === "pods/log"));
  const version = (await (await fetch(`${sim.url}/version`)).json()) as { major: string };
  assert.equal(version.major, "1");
  const unknown = await fetch(`${sim.url}/apis/apps/v1/namespaces/default/deployments`);
  assert.equal(unknown.status, 404);
  const ns = await core.readNamespace({ name: "crud-pods" });
  assert.equal(ns.status?.phase, "Active");
});

test("a configured token is required", async () => {
  const guarded = await startKubeSim({ token: "s3cret" });
  try {
    const ok = guarded.kubeConfig().makeApiClient(CoreV1Api);
    await ok.listNamespacedPod({ namespace: "default" });
    const res = await fetch(`${guarded.url}/api/v1/namespaces/default/pods`, {
      headers: { Authorization: "Bearer wrong" },
    });
    assert.equal(res.status, 401);
  } finally {
    await guarded.close();
  }
});
