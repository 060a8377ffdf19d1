// Properties of buildManifest beyond the golden files: names and labels stay valid whatever the
// ids, the same launch always gives the same object, volumes never collide, TASK_PATH is created
// exactly when it lies on a volume, and bad launches are refused with a clear error.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { V1PodSpec } from "@kubernetes/client-node";
import {
  isDnsLabel,
  isLabelValue,
  resourceTypes,
  taskId,
  type ResourceType,
  type Task,
} from "@odin/pipeline-spec";
import {
  defaultManifestConfig,
  ManifestError,
  type LaunchSpec,
  type ManifestConfig,
} from "./config.js";
import { goldenConfig, makeTask } from "./fixtures.js";
import { attemptLabel, runLabel, selectorFor, taskLabel } from "./labels.js";
import { buildManifest, manifestName } from "./manifest.js";
import type { Manifest } from "./resources.js";
import { assertValidManifest, podTemplates } from "./testing/validity.js";

const config: ManifestConfig = { ...defaultManifestConfig, namespace: "odin" };

function launch(
  task: Task,
  over: Partial<Omit<LaunchSpec, "paths">> & { taskPath?: string } = {},
): LaunchSpec {
  const { taskPath, ...rest } = over;
  const runId = over.runId ?? "demo-k3x9q2ab";
  return {
    runId,
    pipeline: "demo",
    commit: "",
    task,
    attempt: 1,
    paths: {
      rootPath: "/data/pipelines",
      workPath: "/data/pipelines/demo",
      dataPath: "/data/odin",
      runPath: `/data/odin/${runId}`,
      taskPath: taskPath ?? `/data/odin/${runId}/${task.name}`,
    },
    ...rest,
  };
}

function firstPod(m: Manifest): V1PodSpec {
  const [, template] = podTemplates(m)[0]!;
  assert.ok(template.spec);
  return template.spec;
}

/** True when every `k=v` of a selector is among the labels. */
function selects(selector: string, labels: Record<string, string> | undefined): boolean {
  return selector.split(",").every((kv) => {
    const [k, v] = kv.split("=");
    return labels?.[k!] === v;
  });
}

const longRunId = `${"a-very-long-pipeline-name-that-uses-all-the-room".padEnd(54, "x")}-k3x9q2ab`;
const longTask = "t".repeat(63);

describe("names and labels", () => {
  test("the long run id and task name used below are at the limits", () => {
    assert.equal(longRunId.length, 63);
    assert.ok(isDnsLabel(longRunId) && isDnsLabel(longTask));
  });

  for (const resourceType of resourceTypes) {
    for (const numWorkers of [1, 12, 1000]) {
      test(`${resourceType} with ${numWorkers} workers: a 63-char run id and task name give valid names and labels`, () => {
        const task = makeTask({ name: longTask, resourceType, numWorkers });
        for (const attempt of [1, 2, 17]) {
          const m = buildManifest(launch(task, { runId: longRunId, attempt }), config);
          assertValidManifest(m, {
            runId: longRunId,
            task: longTask,
            attempt,
            taskId: taskId(longRunId, longTask),
            pipeline: "demo",
          });
          assert.ok(m.name.length <= 63);
          if (resourceType !== "Pod" && resourceType !== "Job") {
            // Training operators: a DNS-1035 label, with room for the pods and services they name.
            assert.match(m.name, /^[a-z]/);
            for (const suffix of ["-launcher", "-master-0", `-worker-${numWorkers - 1}`]) {
              assert.ok(isDnsLabel(m.name + suffix), `${m.name}${suffix} is not a DNS label`);
            }
          }
        }
      });
    }
  }

  test("a task name too long for a label (not from a validated pipeline) is shortened, not sent as is", () => {
    const name = "x".repeat(80);
    const m = buildManifest(launch(makeTask({ name })), config);
    assert.ok(m.kind === "Pod");
    const label = m.body.metadata?.labels?.[taskLabel];
    assert.ok(label !== undefined && isLabelValue(label) && label !== name);
    assert.ok(isDnsLabel(m.body.spec!.containers[0]!.name));
    assert.equal(m.body.metadata?.annotations?.["odin.dev/task-id"], taskId("demo-k3x9q2ab", name));
    // The launcher finds it again with the same rule.
    assert.ok(
      selects(
        selectorFor({ runId: "demo-k3x9q2ab", task: name, attempt: 1 }),
        m.body.metadata?.labels,
      ),
    );
  });

  test("a run id starting with a digit is kept for Pods and Jobs but prefixed for training jobs", () => {
    const runId = "2fa-k3x9q2ab";
    assert.equal(
      buildManifest(launch(makeTask({ name: "t" }), { runId }), config).name,
      "2fa-k3x9q2ab--t",
    );
    assert.equal(
      buildManifest(launch(makeTask({ name: "t", resourceType: "Job" }), { runId }), config).name,
      "2fa-k3x9q2ab--t",
    );
    for (const resourceType of ["TFJob", "PyTorchJob", "MPIJob", "ElasticJob"] as const) {
      const m = buildManifest(launch(makeTask({ name: "t", resourceType }), { runId }), config);
      assert.equal(m.name, "odin-2fa-k3x9q2ab--t", resourceType);
    }
  });

  test("the same launch always gives the same object, and objects share nothing with the task", () => {
    for (const resourceType of resourceTypes) {
      const task = makeTask({
        name: "train",
        resourceType,
        numWorkers: 2,
        mounts: [{ name: "data", path: "/data", claim: "c" }],
        env: { A: "1" },
        labels: { project: "x" },
        nodeSelector: { gpu: "a100" },
        tolerations: [{ key: "k", operator: "Exists" }],
      });
      const spec = launch(task);
      const first = buildManifest(spec, goldenConfig);
      const snapshot = structuredClone(first);
      // A caller that edits what it got must not change the next object built.
      const pod = firstPod(first);
      pod.containers[0]!.env!.push({ name: "B", value: "2" });
      pod.volumes!.push({ name: "extra", emptyDir: {} });
      pod.nodeSelector!.zone = "a";
      first.body.metadata!.labels!.extra = "y";
      assert.deepEqual(buildManifest(spec, goldenConfig), snapshot, resourceType);
      assert.deepEqual(task.env, { A: "1" });
      assert.deepEqual(task.nodeSelector, { gpu: "a100" });
    }
  });

  test("runs, tasks and attempts get distinct names, even when only the ends of long ids differ", () => {
    const ids = [longRunId, `${longRunId.slice(0, -1)}z`];
    const tasks = [longTask, `${longTask.slice(0, -1)}u`];
    for (const resourceType of ["Pod", "TFJob"] as ResourceType[]) {
      const seen = new Set<string>();
      for (const runId of ids) {
        for (const name of tasks) {
          for (const attempt of [1, 2, 3]) {
            seen.add(manifestName(runId, { name, resourceType, numWorkers: 4 }, attempt));
          }
        }
      }
      assert.equal(seen.size, ids.length * tasks.length * 3, resourceType);
    }
  });

  test("selectors find the objects and every pod template of an attempt, and only that attempt", () => {
    for (const resourceType of resourceTypes) {
      const task = makeTask({ name: "train", resourceType, numWorkers: 2 });
      const m = buildManifest(launch(task, { attempt: 2 }), config);
      const own = [
        selectorFor(),
        selectorFor({ runId: "demo-k3x9q2ab" }),
        selectorFor({ runId: "demo-k3x9q2ab", task: "train" }),
        selectorFor({ runId: "demo-k3x9q2ab", task: "train", attempt: 2 }),
      ];
      const other = [
        selectorFor({ runId: "demo-other" }),
        selectorFor({ runId: "demo-k3x9q2ab", task: "eval" }),
        selectorFor({ runId: "demo-k3x9q2ab", task: "train", attempt: 1 }),
      ];
      for (const labels of [
        m.body.metadata?.labels,
        ...podTemplates(m).map(([, t]) => t.metadata?.labels),
      ]) {
        for (const s of own) assert.ok(selects(s, labels), `${resourceType}: ${s}`);
        for (const s of other) assert.ok(!selects(s, labels), `${resourceType}: ${s}`);
      }
    }
    assert.equal(selectorFor(), "app.kubernetes.io/managed-by=odin");
    assert.equal(
      selectorFor({ runId: "r-1", task: "t", attempt: 3 }),
      `app.kubernetes.io/managed-by=odin,${runLabel}=r-1,${taskLabel}=t,${attemptLabel}=3`,
    );
  });

  test("Odin's labels win over the task's and the configuration's", () => {
    const task = makeTask({
      name: "t",
      labels: { "app.kubernetes.io/managed-by": "helm", project: "p" },
    });
    const m = buildManifest(launch(task), {
      ...config,
      extraLabels: { project: "cfg", team: "nlp" },
    });
    assert.deepEqual(m.body.metadata?.labels, {
      project: "p",
      team: "nlp",
      "app.kubernetes.io/managed-by": "odin",
      "odin.dev/run": "demo-k3x9q2ab",
      "odin.dev/task": "t",
      "odin.dev/attempt": "1",
    });
  });
});

describe("volumes", () => {
  test("a PVC, an ephemeral volume, a secret and a config map all named `data` get four distinct volumes", () => {
    const task = makeTask({
      name: "t",
      ephemeralVolumes: [{ name: "data", type: "emptyDir" }],
      mounts: [
        { name: "data", path: "/scratch" },
        { name: "data", path: "/data", claim: "data-rw-many" },
      ],
      secrets: [{ name: "data", path: "/etc/secret" }],
      configMaps: [{ name: "data", path: "/etc/config" }],
    });
    const pod = firstPod(buildManifest(launch(task), config));
    assert.deepEqual(pod.volumes, [
      { name: "data", emptyDir: {} },
      { name: "pvc-data", persistentVolumeClaim: { claimName: "data-rw-many" } },
      { name: "secret-data", secret: { secretName: "data", defaultMode: 0o644 } },
      { name: "config-data", configMap: { name: "data" } },
    ]);
    assert.deepEqual(pod.containers[0]!.volumeMounts, [
      { name: "data", mountPath: "/scratch" },
      { name: "pvc-data", mountPath: "/data" },
      { name: "secret-data", mountPath: "/etc/secret" },
      { name: "config-data", mountPath: "/etc/config" },
    ]);
  });

  test("a renamed volume never takes a name the task gave another volume", () => {
    const task = makeTask({
      name: "t",
      mounts: [
        { name: "data", path: "/data", claim: "a" },
        { name: "secret-data", path: "/other", claim: "b" },
      ],
      secrets: [{ name: "data", path: "/etc/secret" }],
    });
    const m = buildManifest(launch(task), config);
    const pod = firstPod(m);
    const names = pod.volumes!.map((v) => v.name);
    assert.equal(names[0], "data");
    assert.equal(names[1], "secret-data");
    assert.match(names[2]!, /^data-[0-9a-f]{10}$/);
    assert.equal(pod.volumes![2]!.secret?.secretName, "data");
    assert.deepEqual(buildManifest(launch(task), config), m);
  });

  test("two PVC mounts with one name and two claims get two volumes", () => {
    const task = makeTask({
      name: "t",
      mounts: [
        { name: "data", path: "/a", claim: "one" },
        { name: "data", path: "/b", claim: "two" },
      ],
    });
    const pod = firstPod(buildManifest(launch(task), config));
    assert.deepEqual(
      pod.volumes!.map((v) => [v.name, v.persistentVolumeClaim?.claimName]),
      [
        ["data", "one"],
        ["pvc-data", "two"],
      ],
    );
  });

  test("one source mounted twice is one volume; a secret with two modes is two", () => {
    const task = makeTask({
      name: "t",
      mounts: [
        { name: "data", path: "/a", claim: "one" },
        { name: "data", path: "/b", claim: "one" },
      ],
      secrets: [
        { name: "key", path: "/etc/k1", subPath: "id", mode: 0o400 },
        { name: "key", path: "/etc/k2", subPath: "id.pub" },
      ],
    });
    const pod = firstPod(buildManifest(launch(task), config));
    assert.deepEqual(
      pod.volumes!.map((v) => v.name),
      ["data", "key", "secret-key"],
    );
    assert.deepEqual(
      pod.containers[0]!.volumeMounts!.map((m) => [m.name, m.mountPath, m.subPath]),
      [
        ["data", "/a", undefined],
        ["data", "/b", undefined],
        ["key", "/etc/k1", "id"],
        ["secret-key", "/etc/k2", "id.pub"],
      ],
    );
  });

  test("a secret whose name is not a DNS label gets a valid volume name and keeps its secret name", () => {
    const task = makeTask({ name: "t", secrets: [{ name: "tls.cert", path: "/etc/tls" }] });
    const volume = firstPod(buildManifest(launch(task), config)).volumes![0]!;
    assert.ok(isDnsLabel(volume.name) && volume.name.startsWith("tls-cert"));
    assert.equal(volume.secret?.secretName, "tls.cert");
  });

  test("a claim-less mount without its ephemeral volume is refused", () => {
    const task = makeTask({ name: "t", mounts: [{ name: "dshm", path: "/dev/shm" }] });
    assert.throws(() => buildManifest(launch(task), config), ManifestError);
  });
});

describe("TASK_PATH", () => {
  const initOf = (task: Task, taskPath: string) =>
    firstPod(buildManifest(launch(task, { taskPath }), config)).initContainers;

  test("on a PVC: an init container with that mount creates it", () => {
    const task = makeTask({ name: "t", mounts: [{ name: "data", path: "/data", claim: "c" }] });
    const init = initOf(task, "/data/odin/r/t");
    assert.equal(init?.length, 1);
    assert.deepEqual(init[0]!.command, ["mkdir", "-p", "/data/odin/r/t"]);
    assert.deepEqual(init[0]!.volumeMounts, [{ name: "data", mountPath: "/data" }]);
    assert.equal(init[0]!.image, defaultManifestConfig.initImage);
  });

  test("on nested volumes: both are mounted, in order, and only those", () => {
    const task = makeTask({
      name: "t",
      ephemeralVolumes: [{ name: "dshm", type: "emptyDir", medium: "Memory" }],
      mounts: [
        { name: "dshm", path: "/dev/shm" },
        { name: "data", path: "/data", claim: "c" },
        { name: "runs", path: "/data/odin", claim: "r" },
      ],
      secrets: [{ name: "s", path: "/data/odin/secret" }],
    });
    assert.deepEqual(initOf(task, "/data/odin/r/t")?.[0]?.volumeMounts, [
      { name: "data", mountPath: "/data" },
      { name: "runs", mountPath: "/data/odin" },
    ]);
  });

  test("on an ephemeral volume: created there too", () => {
    const task = makeTask({
      name: "t",
      ephemeralVolumes: [{ name: "scratch", type: "emptyDir" }],
      mounts: [{ name: "scratch", path: "/scratch" }],
    });
    assert.deepEqual(initOf(task, "/scratch/r/t")?.[0]?.volumeMounts, [
      { name: "scratch", mountPath: "/scratch" },
    ]);
  });

  test("not on a volume, on a sibling path, or the mount point itself: no init container", () => {
    const task = makeTask({ name: "t", mounts: [{ name: "data", path: "/data", claim: "c" }] });
    assert.equal(initOf(task, "/tmp/odin/r/t"), undefined);
    assert.equal(initOf(task, "/database/r/t"), undefined);
    assert.equal(initOf(task, "/data"), undefined);
    assert.equal(initOf(task, "relative/r/t"), undefined);
  });

  test("a task named like the init container does not clash with it", () => {
    const task = makeTask({
      name: "odin-init",
      mounts: [{ name: "data", path: "/data", claim: "c" }],
    });
    const pod = firstPod(buildManifest(launch(task, { taskPath: "/data/r/odin-init" }), config));
    assert.equal(pod.containers[0]!.name, "odin-init");
    assert.equal(pod.initContainers?.[0]?.name, "odin-init-task-path");
  });

  test("every pod of a training job creates it", () => {
    for (const resourceType of ["TFJob", "PyTorchJob", "MPIJob", "ElasticJob"] as const) {
      const task = makeTask({
        name: "t",
        resourceType,
        numWorkers: 2,
        mounts: [{ name: "data", path: "/data", claim: "c" }],
      });
      for (const [role, template] of podTemplates(buildManifest(launch(task), config))) {
        assert.equal(template.spec?.initContainers?.length, 1, `${resourceType} ${role}`);
      }
    }
  });
});

describe("resource types", () => {
  test("GPUs go on every computing pod and never as 0", () => {
    const gpusOf = (m: Manifest) =>
      Object.fromEntries(
        podTemplates(m).map(([role, t]) => [
          role,
          t.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"],
        ]),
      );
    const build = (resourceType: ResourceType, numGpus: number) =>
      buildManifest(launch(makeTask({ name: "t", resourceType, numGpus, numWorkers: 2 })), config);
    assert.deepEqual(gpusOf(build("Pod", 0)), { Pod: undefined });
    assert.deepEqual(gpusOf(build("Job", 3)), { Job: "3" });
    assert.deepEqual(gpusOf(build("TFJob", 2)), { Worker: "2" });
    assert.deepEqual(gpusOf(build("PyTorchJob", 2)), { Master: "2", Worker: "2" });
    assert.deepEqual(gpusOf(build("MPIJob", 2)), { Launcher: undefined, Worker: "2" });
    assert.deepEqual(gpusOf(build("ElasticJob", 0)), { Worker: undefined });
  });

  test("an MPIJob without GPUs has one slot per worker; an empty worker command keeps the image's", () => {
    const m = buildManifest(
      launch(makeTask({ name: "t", resourceType: "MPIJob", numWorkers: 3 })),
      {
        ...config,
        mpiWorkerCommand: [],
      },
    );
    assert.ok(m.kind === "MPIJob");
    assert.equal(m.body.spec.slotsPerWorker, 1);
    assert.equal(m.body.spec.mpiReplicaSpecs.Worker.replicas, 3);
    const worker = m.body.spec.mpiReplicaSpecs.Worker.template.spec!.containers[0]!;
    assert.equal(worker.command, undefined);
    assert.equal(worker.args, undefined);
  });

  test("a timeout puts no deadline on any object: the scheduler enforces it, once, for every type", () => {
    for (const resourceType of resourceTypes) {
      const m = buildManifest(
        launch(makeTask({ name: "t", resourceType, timeoutMs: 1500 })),
        config,
      );
      assert.doesNotMatch(JSON.stringify(m), /activeDeadlineSeconds/, resourceType);
    }
  });

  test("the task's service account wins over the configured one; pull secrets come from configuration", () => {
    const cfg = { ...config, serviceAccount: "default-sa", imagePullSecrets: ["a", "b"] };
    const own = firstPod(
      buildManifest(launch(makeTask({ name: "t", serviceAccount: "mine" })), cfg),
    );
    const fallback = firstPod(buildManifest(launch(makeTask({ name: "t" })), cfg));
    assert.equal(own.serviceAccountName, "mine");
    assert.equal(fallback.serviceAccountName, "default-sa");
    assert.deepEqual(fallback.imagePullSecrets, [{ name: "a" }, { name: "b" }]);
    const none = firstPod(buildManifest(launch(makeTask({ name: "t" })), config));
    assert.equal(none.serviceAccountName, undefined);
    assert.equal(none.imagePullSecrets, undefined);
  });
});

describe("refused launches", () => {
  const task = makeTask({ name: "t" });
  test("attempt below 1 or not whole", () => {
    for (const attempt of [0, -1, 1.5]) {
      assert.throws(() => buildManifest(launch(task, { attempt }), config), {
        name: "ManifestError",
        message: /attempt must be a whole number from 1/,
      });
    }
  });

  test("a namespace that is not a DNS label", () => {
    assert.throws(() => buildManifest(launch(task), { ...config, namespace: "Bad_NS" }), {
      name: "ManifestError",
      message: /namespace "Bad_NS"/,
    });
  });

  test("an ElasticJob without a rendezvous endpoint says which setting is missing", () => {
    const elastic = makeTask({ name: "t", resourceType: "ElasticJob" });
    const { elasticRdzvEndpoint: _, ...noEndpoint } = config;
    assert.throws(() => buildManifest(launch(elastic), noEndpoint), {
      name: "ManifestError",
      message: /task t is an ElasticJob.*elasticRdzvEndpoint/,
    });
  });

  test("a multi-worker task with no workers", () => {
    const tf = makeTask({ name: "t", resourceType: "TFJob", numWorkers: 0 });
    assert.throws(() => buildManifest(launch(tf), config), ManifestError);
  });
});
