// Schema validation through the real client: a well-formed object of each kind is created, and
// one malformed object of each kind is refused with 422 and the path of the offending field.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
} from "@kubernetes/client-node";
import { type KubeSim, startKubeSim } from "./server.js";
import { apiServerSchemaProblems } from "./schemas.js";

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

const podSpec = (extra: Record<string, unknown> = {}) => ({
  restartPolicy: "Never",
  containers: [{ name: "main", image: "busybox:1.36", ...extra }],
});

interface Cause {
  field?: string;
  reason?: string;
  message?: string;
}

/** The 422's causes, after checking it is one. */
async function refused(call: Promise<unknown>): Promise<Cause[]> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ApiException, String(error));
    assert.equal(error.code, 422, String(error.body));
    const body = JSON.parse(String(error.body)) as { details?: { causes?: Cause[] } };
    return body.details?.causes ?? [];
  }
  assert.fail("the API server would have refused this object");
}

const fields = (causes: Cause[]) => causes.map((c) => `${c.field} ${c.reason}`).sort();

test("Pod: a wrong type, an unknown field and an unsupported enum value are refused with their paths", async () => {
  const causes = await refused(
    core.createNamespacedPod({
      namespace: "schemas",
      body: {
        metadata: { name: "bad-pod" },
        spec: {
          ...podSpec({ resources: { limits: { cpu: { many: true } } }, imagePullPolicy: "Often" }),
          hostNetwork: "yes",
          restartPolicy: "Never",
        } as never,
      },
    }),
  );
  assert.deepEqual(fields(causes), [
    "spec.containers[0].imagePullPolicy FieldValueNotSupported",
    "spec.containers[0].resources.limits.cpu FieldValueTypeInvalid",
    "spec.hostNetwork FieldValueTypeInvalid",
  ]);
  // The client drops fields its own models do not know, so unknown ones are sent raw.
  const raw = await fetch(`${sim.url}/api/v1/namespaces/schemas/pods`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "unknown-field" },
      spec: { ...podSpec({ imagePullPolcy: "Always" }), nodeSelectr: {} },
    }),
  });
  assert.equal(raw.status, 422);
  const status = (await raw.json()) as { message: string; details: { causes: Cause[] } };
  assert.deepEqual(fields(status.details.causes), [
    "spec.containers[0].imagePullPolcy FieldValueUnknown",
    "spec.nodeSelectr FieldValueUnknown",
  ]);
  assert.match(status.message, /unknown field "spec.nodeSelectr"/);
  assert.equal(sim.get("pods", "schemas", "unknown-field"), undefined, "nothing stored");
});

test("Job: a missing required field and a wrong type are refused", async () => {
  const causes = await refused(
    batch.createNamespacedJob({
      namespace: "schemas",
      body: {
        metadata: { name: "bad-job" },
        spec: {
          backoffLimit: "three",
          template: { spec: { restartPolicy: "Never", containers: [{ image: "x" }] } },
        } as never,
      },
    }),
  );
  assert.deepEqual(fields(causes), [
    "spec.backoffLimit FieldValueTypeInvalid",
    "spec.template.spec.containers[0].name FieldValueRequired",
  ]);
});

const training = [
  {
    kind: "TFJob",
    group: "kubeflow.org",
    version: "v1",
    plural: "tfjobs",
    spec: (t: object) => ({ tfReplicaSpecs: { Worker: { replicas: 2, template: t } } }),
    bad: {
      tfReplicaSpecs: { Worker: { replicas: "2" } },
      runPolicy: { backoffLimt: 1 },
    },
    expect: [
      "spec.runPolicy.backoffLimt FieldValueUnknown",
      "spec.tfReplicaSpecs[Worker].replicas FieldValueTypeInvalid",
      "spec.tfReplicaSpecs[Worker].template FieldValueRequired",
    ],
  },
  {
    kind: "PyTorchJob",
    group: "kubeflow.org",
    version: "v1",
    plural: "pytorchjobs",
    spec: (t: object) => ({ pytorchReplicaSpecs: { Worker: { replicas: 2, template: t } } }),
    bad: { pytorchReplicaSpecs: { Worker: { replicas: 2, tempate: {} } } },
    expect: [
      "spec.pytorchReplicaSpecs[Worker].tempate FieldValueUnknown",
      "spec.pytorchReplicaSpecs[Worker].template FieldValueRequired",
    ],
  },
  {
    kind: "MPIJob",
    group: "kubeflow.org",
    version: "v2beta1",
    plural: "mpijobs",
    spec: (t: object) => ({
      mpiReplicaSpecs: {
        Launcher: { replicas: 1, template: t },
        Worker: { replicas: 2, template: t },
      },
    }),
    bad: { slotsPerWorker: 1, mpiImplementation: "LAM" },
    expect: [
      "spec.mpiImplementation FieldValueNotSupported",
      "spec.mpiReplicaSpecs FieldValueRequired",
    ],
  },
  {
    kind: "ElasticJob",
    group: "elastic.pytorch.org",
    version: "v1alpha1",
    plural: "elasticjobs",
    spec: (t: object) => ({
      rdzvEndpoint: "etcd:2379",
      minReplicas: 1,
      maxReplicas: 2,
      replicaSpecs: { Worker: { replicas: 2, template: t } },
    }),
    bad: { minReplicas: "one", replicaSpecs: { Worker: { replicas: 2 } } },
    expect: [
      "spec.minReplicas FieldValueTypeInvalid",
      "spec.rdzvEndpoint FieldValueRequired",
      "spec.replicaSpecs[Worker].template FieldValueRequired",
    ],
  },
];

for (const c of training) {
  test(`${c.kind}: accepted as the operator's CRD describes it; a malformed one is refused`, async () => {
    const template = { spec: podSpec() };
    const body = (name: string, spec: object) => ({
      apiVersion: `${c.group}/${c.version}`,
      kind: c.kind,
      metadata: { name },
      spec,
    });
    const good = body("good", c.spec(template));
    assert.deepEqual(apiServerSchemaProblems(good), []);
    await custom.createNamespacedCustomObject({
      group: c.group,
      version: c.version,
      namespace: "schemas",
      plural: c.plural,
      body: good,
    });
    const causes = await refused(
      custom.createNamespacedCustomObject({
        group: c.group,
        version: c.version,
        namespace: "schemas",
        plural: c.plural,
        body: body("bad", c.bad),
      }),
    );
    assert.deepEqual(fields(causes), c.expect);
    assert.equal(sim.get(c.plural, "schemas", "bad"), undefined, "nothing stored");
  });
}

test("a pod template inside a training job is checked against the Pod schema too", () => {
  const problems = apiServerSchemaProblems({
    apiVersion: "kubeflow.org/v1",
    kind: "TFJob",
    metadata: { name: "t" },
    spec: {
      tfReplicaSpecs: {
        Worker: { template: { spec: { containers: [{ name: "m", image: "x", cpu: 1 }] } } },
      },
    },
  });
  assert.deepEqual(problems, [
    'spec.tfReplicaSpecs[Worker].template.spec.containers[0].cpu: unknown field "spec.tfReplicaSpecs[Worker].template.spec.containers[0].cpu"',
  ]);
});
