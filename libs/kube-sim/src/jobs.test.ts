// The simulated Job controller and training operators, observed through the client.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Job,
} from "@kubernetes/client-node";
import { type KubeSim, startKubeSim } from "./server.js";
import { eventually, template } from "./client-helpers.js";
import type { ConditionJson, KubeObject } from "./types.js";

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

const condition = (job: V1Job, type: string) =>
  job.status?.conditions?.find((c) => c.type === type && c.status === "True");

async function jobWith(namespace: string, name: string, type: string): Promise<V1Job> {
  return eventually(async () => {
    const job = await batch.readNamespacedJob({ namespace, name });
    return condition(job, type) !== undefined ? job : undefined;
  });
}

test("a Job runs one pod from its template and becomes Complete", async () => {
  const ns = "job-ok";
  await batch.createNamespacedJob({
    namespace: ns,
    body: { metadata: { name: "etl" }, spec: { backoffLimit: 0, template: template() } },
  });
  const job = await jobWith(ns, "etl", "Complete");
  assert.equal(job.status?.succeeded, 1);
  assert.equal(job.status?.active, 0);
  assert.ok(job.status?.completionTime instanceof Date);
  const pods = await core.listNamespacedPod({
    namespace: ns,
    labelSelector: "batch.kubernetes.io/job-name=etl",
  });
  assert.equal(pods.items.length, 1);
  assert.equal(pods.items[0]?.status?.phase, "Succeeded");
  assert.match(pods.items[0]?.metadata?.name ?? "", /^etl-[a-z0-9]{5}$/);
  const events = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: "involvedObject.kind=Job,involvedObject.name=etl",
  });
  assert.deepEqual(
    events.items.map((e) => e.reason),
    ["SuccessfulCreate", "Completed"],
  );
});

test("a failing Job with backoffLimit 0 gets condition Failed after one pod; backoffLimit 1 retries once", async () => {
  const ns = "job-fail";
  await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: { name: "once" },
      spec: { backoffLimit: 0, template: template({ script: { exitCode: 1 } }) },
    },
  });
  const once = await jobWith(ns, "once", "Failed");
  assert.equal(condition(once, "Failed")?.reason, "BackoffLimitExceeded");
  assert.equal(once.status?.failed, 1);
  assert.equal(condition(once, "Complete"), undefined);

  await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: { name: "twice" },
      spec: { backoffLimit: 1, template: template({ script: { exitCode: 1 } }) },
    },
  });
  const twice = await jobWith(ns, "twice", "Failed");
  assert.equal(twice.status?.failed, 2);
  const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=twice" });
  assert.equal(pods.items.length, 2);
  assert.ok(pods.items.every((p) => p.status?.phase === "Failed"));
});

test("a Job whose pod is deleted from outside fails (backoffLimit 0)", async () => {
  const ns = "job-deleted";
  await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: { name: "victim" },
      spec: { backoffLimit: 0, template: template({ script: { runForever: true } }) },
    },
  });
  const pod = await eventually(
    async () =>
      (await core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=victim" })).items[0],
  );
  assert.ok(sim.deletePod(ns, pod.metadata?.name ?? ""));
  await jobWith(ns, "victim", "Failed");
});

interface TrainingCase {
  kind: string;
  plural: string;
  group: string;
  version: string;
  key: string;
  /** replica type → replicas */
  replicas: Record<string, number>;
  /** expected pod names for job "train" */
  pods: string[];
}

const CASES: TrainingCase[] = [
  {
    kind: "TFJob",
    plural: "tfjobs",
    group: "kubeflow.org",
    version: "v1",
    key: "tfReplicaSpecs",
    replicas: { Worker: 3 },
    pods: ["train-worker-0", "train-worker-1", "train-worker-2"],
  },
  {
    kind: "PyTorchJob",
    plural: "pytorchjobs",
    group: "kubeflow.org",
    version: "v1",
    key: "pytorchReplicaSpecs",
    replicas: { Master: 1, Worker: 2 },
    pods: ["train-master-0", "train-worker-0", "train-worker-1"],
  },
  {
    kind: "MPIJob",
    plural: "mpijobs",
    group: "kubeflow.org",
    version: "v2beta1",
    key: "mpiReplicaSpecs",
    replicas: { Launcher: 1, Worker: 2 },
    pods: ["train-launcher", "train-worker-0", "train-worker-1"],
  },
  {
    kind: "ElasticJob",
    plural: "elasticjobs",
    group: "elastic.pytorch.org",
    version: "v1alpha1",
    key: "replicaSpecs",
    replicas: { Worker: 2 },
    pods: ["train-worker-0", "train-worker-1"],
  },
];

function trainingBody(
  c: TrainingCase,
  name: string,
  failWorker: number | undefined,
  extra: Record<string, unknown> = {},
): object {
  const specs: Record<string, unknown> = {};
  for (const [type, replicas] of Object.entries(c.replicas)) {
    specs[type] = {
      replicas,
      restartPolicy: "Never",
      template: template({ image: `${type.toLowerCase()}:1` }),
    };
  }
  if (failWorker !== undefined)
    sim.script({ name: `${name}-worker-${failWorker}`, exitCode: 7, runMs: 10 });
  return {
    apiVersion: `${c.group}/${c.version}`,
    kind: c.kind,
    metadata: { name },
    // ElasticJob's CRD requires the rendezvous endpoint.
    spec: {
      [c.key]: specs,
      ...(c.kind === "ElasticJob" ? { rdzvEndpoint: "etcd:2379" } : {}),
      ...extra,
    },
  };
}

async function trainingWith(
  c: TrainingCase,
  namespace: string,
  name: string,
  type: string,
): Promise<KubeObject> {
  return eventually(async () => {
    const job = (await custom.getNamespacedCustomObject({
      group: c.group,
      version: c.version,
      namespace,
      plural: c.plural,
      name,
    })) as KubeObject;
    const conditions =
      (job["status"] as { conditions?: ConditionJson[] } | undefined)?.conditions ?? [];
    return conditions.some((x) => x.type === type && x.status === "True") ? job : undefined;
  });
}

for (const c of CASES) {
  test(`${c.kind} creates ${c.pods.length} labelled pods and reaches Succeeded`, async () => {
    const ns = `ok-${c.plural}`;
    await custom.createNamespacedCustomObject({
      group: c.group,
      version: c.version,
      namespace: ns,
      plural: c.plural,
      body: trainingBody(c, "train", undefined),
    });
    const job = await trainingWith(c, ns, "train", "Succeeded");
    const pods = await core.listNamespacedPod({
      namespace: ns,
      labelSelector: "training.kubeflow.org/job-name=train",
    });
    assert.deepEqual(pods.items.map((p) => p.metadata?.name).sort(), c.pods);
    for (const pod of pods.items) {
      const labels = pod.metadata?.labels ?? {};
      const type = labels["training.kubeflow.org/replica-type"] ?? "";
      assert.ok(
        Object.keys(c.replicas)
          .map((t) => t.toLowerCase())
          .includes(type),
        type,
      );
      assert.match(labels["training.kubeflow.org/replica-index"] ?? "", /^\d+$/);
      assert.equal(pod.metadata?.ownerReferences?.[0]?.kind, c.kind);
      assert.equal(pod.metadata?.ownerReferences?.[0]?.controller, true);
      assert.equal(pod.status?.phase, "Succeeded");
    }
    const status = job["status"] as {
      conditions: ConditionJson[];
      replicaStatuses: Record<string, { succeeded?: number }>;
    };
    assert.deepEqual(
      status.conditions.map((x) => `${x.type}=${x.status}`),
      ["Created=True", "Running=False", "Succeeded=True"],
    );
    assert.equal(status.conditions.at(-1)?.reason, `${c.kind}Succeeded`);
    for (const [type, replicas] of Object.entries(c.replicas))
      assert.equal(status.replicaStatuses[type]?.succeeded, replicas);
  });

  test(`${c.kind} is Failed as soon as one worker fails`, async () => {
    const ns = `fail-${c.plural}`;
    // The other pods keep running: the failure alone decides.
    sim.script({ namespace: ns, runForever: true });
    try {
      await custom.createNamespacedCustomObject({
        group: c.group,
        version: c.version,
        namespace: ns,
        plural: c.plural,
        body: trainingBody(c, "train", 1),
      });
      const job = await trainingWith(c, ns, "train", "Failed");
      const failed = (job["status"] as { conditions: ConditionJson[] }).conditions.find(
        (x) => x.type === "Failed",
      );
      assert.equal(failed?.reason, `${c.kind}Failed`);
      assert.match(failed?.message ?? "", /Worker replica\(s\) failed/);
      const running = await core.listNamespacedPod({
        namespace: ns,
        fieldSelector: "status.phase=Running",
      });
      assert.ok(running.items.length > 0, "no cleanPodPolicy: other pods are left running");
    } finally {
      sim.clearScripts();
    }
  });
}

test("MPIJob succeeds when its launcher succeeds, even with workers still running", async () => {
  const c = CASES.find((x) => x.kind === "MPIJob")!;
  const ns = "mpi-launcher";
  sim.script({ namespace: ns, image: "worker:*", runForever: true });
  try {
    await custom.createNamespacedCustomObject({
      group: c.group,
      version: c.version,
      namespace: ns,
      plural: c.plural,
      body: trainingBody(c, "train", undefined, { runPolicy: { cleanPodPolicy: "Running" } }),
    });
    await trainingWith(c, ns, "train", "Succeeded");
    // cleanPodPolicy Running removes the workers that were still running.
    await eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: ns });
      return pods.items.map((p) => p.metadata?.name).join(",") === "train-launcher"
        ? true
        : undefined;
    });
  } finally {
    sim.clearScripts();
  }
});

test("a Job past its activeDeadlineSeconds fails with DeadlineExceeded and its pod is removed", async () => {
  const ns = "job-deadline";
  await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: { name: "slow" },
      spec: { activeDeadlineSeconds: 1, template: template({ script: { runForever: true } }) },
    },
  });
  const job = await jobWith(ns, "slow", "Failed");
  assert.equal(condition(job, "Failed")?.reason, "DeadlineExceeded");
  await eventually(async () =>
    (await core.listNamespacedPod({ namespace: ns })).items.length === 0 ? true : undefined,
  );
});
