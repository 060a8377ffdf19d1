// The five tasks of shared/conformance/odin-tests/test_podspecs-ephem/main.yml, compared field by
// field with the pod specs the original Odin built for them (tests-golden-podspecs/test_pod_N.json,
// snake_case dumps of its Python client objects, run id `test-job-xxxx`, container name `xxyy`).
// Every way Odin's pod spec differs is applied below by a named function that first asserts what
// Odin does instead; whatever is left must be equal.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { V1Container } from "@kubernetes/client-node";
import { taskId } from "@odin/pipeline-spec";
import type { ManifestConfig } from "./config.js";
import { launchSpec, loadValid, readConformance } from "./fixtures.js";
import { pipelineAnnotation, selectorFor, taskIdAnnotation } from "./labels.js";
import { buildManifest } from "./manifest.js";
import { initContainerResources } from "./pod.js";
import { assertValidPodSpec } from "./testing/validity.js";

type Json = Record<string, unknown>;

const config: ManifestConfig = {
  namespace: "odin-tasks",
  imagePullSecrets: ["regcred"],
  initImage: "busybox:1.36",
};

// The original's test substituted placeholders: ROOT_PATH=RANDOM_ROOT and WORK_PATH=RANDOM_WORK
// (see the goldens' args). WORK_PATH is normally ROOT_PATH/<pipeline path>, so it is overridden.
// DATA_PATH is under the tasks' /data mount, as in a real install, so TASK_PATH needs creating.
const rootPath = "RANDOM_ROOT";
const dataPath = "/data/odin";
const overrides = { WORK_PATH: "RANDOM_WORK" };

const pipeline = loadValid(
  readConformance("odin-tests/test_podspecs-ephem/main.yml"),
  "test_podspecs-ephem",
);
const runId = `${pipeline.name}-xxxx`;

/** Keys whose values are maps of user data, whose own keys must not be renamed. */
const dataMaps = new Set(["limits", "requests", "node_selector", "labels", "annotations"]);

/** The original's dump made comparable: nulls dropped, snake_case keys turned into camelCase. */
function comparable(value: unknown, keepKeys = false): unknown {
  if (Array.isArray(value)) return value.map((v) => comparable(v));
  if (value === null || typeof value !== "object") return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null) continue;
    const key = keepKeys ? k : k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    out[key] = comparable(v, dataMaps.has(k));
  }
  return out;
}

interface Pair {
  /** Odin's pod spec, as sent (through JSON). */
  ours: Json;
  /** The original's pod spec, made comparable; edited into what Odin is expected to send. */
  golden: Json;
  index: number;
}

const mainContainer = (spec: Json) => (spec.containers as Json[])[0]!;
const env = (c: Json) => c.env as { name: string; value: string }[];

/** Each intended difference: asserts what Odin does instead, then removes the difference. */
const differences: Record<string, (p: Pair) => boolean> = {
  "container name is the task name, not a fixed one": ({ ours, golden, index }) => {
    const name = pipeline.tasks[index]!.name;
    assert.equal(mainContainer(golden).name, "xxyy");
    assert.equal(mainContainer(ours).name, name);
    mainContainer(golden).name = name;
    return true;
  },
  "no nvidia.com/gpu limit when the task has no GPUs (the original sent 0)": ({ ours, golden }) => {
    const limits = (mainContainer(golden).resources as Json | undefined)?.limits as
      Json | undefined;
    if (limits?.["nvidia.com/gpu"] !== 0) return false;
    const ourLimits = (mainContainer(ours).resources as Json | undefined)?.limits as
      Json | undefined;
    assert.equal(ourLimits?.["nvidia.com/gpu"], undefined);
    delete limits["nvidia.com/gpu"];
    return true;
  },
  "resource quantities are strings with the spelling of main.yml (the original sent JSON numbers)":
    ({ ours, golden }) => {
      let changed = false;
      const resources = mainContainer(golden).resources as Json | undefined;
      const ourResources = mainContainer(ours).resources as Json | undefined;
      for (const side of ["limits", "requests"]) {
        for (const [k, v] of Object.entries((resources?.[side] as Json | undefined) ?? {})) {
          if (typeof v !== "number") continue;
          const ourValue = (ourResources?.[side] as Json | undefined)?.[k];
          assert.equal(typeof ourValue, "string", `${side}.${k}`);
          assert.equal(Number(ourValue), v, `${side}.${k}`);
          (resources![side] as Json)[k] = ourValue;
          changed = true;
        }
      }
      return changed;
    },
  "empty resource maps are left out (the original sent requests: {})": ({ ours, golden }) => {
    const c = mainContainer(golden);
    const resources = c.resources as Json | undefined;
    if (resources === undefined) return false;
    let changed = false;
    for (const side of ["limits", "requests"]) {
      if (resources[side] !== undefined && Object.keys(resources[side] as Json).length === 0) {
        assert.equal((mainContainer(ours).resources as Json | undefined)?.[side], undefined);
        delete resources[side];
        changed = true;
      }
    }
    if (Object.keys(resources).length === 0) delete c.resources;
    return changed;
  },
  "no empty pod securityContext when the task sets none (the original always sent one)": ({
    ours,
    golden,
  }) => {
    const sc = golden.securityContext as Json | undefined;
    if (sc === undefined || Object.keys(sc).length > 0) return false;
    assert.equal(ours.securityContext, undefined);
    delete golden.securityContext;
    return true;
  },
  "image pull secrets come from configuration (the original hard-coded `registry`)": ({
    ours,
    golden,
  }) => {
    assert.deepEqual(golden.imagePullSecrets, [{ name: "registry" }]);
    assert.deepEqual(ours.imagePullSecrets, [{ name: "regcred" }]);
    golden.imagePullSecrets = ours.imagePullSecrets;
    return true;
  },
  "no ODIN_CRED unless configured (the original always set it)": ({ ours, golden }) => {
    const c = mainContainer(golden);
    assert.deepEqual(
      env(c).find((e) => e.name === "ODIN_CRED"),
      { name: "ODIN_CRED", value: "/etc/odind/odin-cred.yml" },
    );
    assert.equal(
      env(mainContainer(ours)).find((e) => e.name === "ODIN_CRED"),
      undefined,
    );
    c.env = env(c).filter((e) => e.name !== "ODIN_CRED");
    return true;
  },
  "ODIN_RUN_ID and ODIN_ATTEMPT are set beside ODIN_TASK_ID": ({ ours }) => {
    const c = mainContainer(ours);
    assert.deepEqual(env(c).slice(1, 3), [
      { name: "ODIN_RUN_ID", value: runId },
      { name: "ODIN_ATTEMPT", value: "1" },
    ]);
    c.env = env(c).filter((e) => e.name !== "ODIN_RUN_ID" && e.name !== "ODIN_ATTEMPT");
    return true;
  },
  "main containers report their last log lines as termination message": ({ ours }) => {
    const c = mainContainer(ours);
    assert.equal(c.terminationMessagePolicy, "FallbackToLogsOnError");
    delete c.terminationMessagePolicy;
    return true;
  },
  "an init container creates TASK_PATH on the /data volume (the original's server made it)": ({
    ours,
    index,
  }) => {
    const name = pipeline.tasks[index]!.name;
    const onData = pipeline.tasks[index]!.mounts.some((m) => m.path === "/data");
    if (!onData) {
      assert.equal(ours.initContainers, undefined);
      return false;
    }
    const expected: V1Container = {
      name: "odin-init",
      image: "busybox:1.36",
      imagePullPolicy: "IfNotPresent",
      command: ["mkdir", "-p", `/data/odin/${runId}/${name}`],
      resources: initContainerResources,
      volumeMounts: [{ name: "data", mountPath: "/data" }],
      terminationMessagePolicy: "FallbackToLogsOnError",
    };
    assert.deepEqual(ours.initContainers, [expected]);
    delete ours.initContainers;
    return true;
  },
};

/** Which differences apply to each of the five pods, in file order. */
const expectedDifferences: string[][] = [
  // shm: PVC + claim-less mount of an emptyDir, no GPUs.
  [
    "container name is the task name, not a fixed one",
    "no nvidia.com/gpu limit when the task has no GPUs (the original sent 0)",
    "empty resource maps are left out (the original sent requests: {})",
    "no empty pod securityContext when the task sets none (the original always sent one)",
    "image pull secrets come from configuration (the original hard-coded `registry`)",
    "no ODIN_CRED unless configured (the original always set it)",
    "ODIN_RUN_ID and ODIN_ATTEMPT are set beside ODIN_TASK_ID",
    "main containers report their last log lines as termination message",
    "an init container creates TASK_PATH on the /data volume (the original's server made it)",
  ],
  // train-sst2-2: full security context, cpu, one GPU.
  [
    "container name is the task name, not a fixed one",
    "resource quantities are strings with the spelling of main.yml (the original sent JSON numbers)",
    "image pull secrets come from configuration (the original hard-coded `registry`)",
    "no ODIN_CRED unless configured (the original always set it)",
    "ODIN_RUN_ID and ODIN_ATTEMPT are set beside ODIN_TASK_ID",
    "main containers report their last log lines as termination message",
    "an init container creates TASK_PATH on the /data volume (the original's server made it)",
  ],
  // hello-python: no mounts, no GPUs.
  [
    "container name is the task name, not a fixed one",
    "no nvidia.com/gpu limit when the task has no GPUs (the original sent 0)",
    "empty resource maps are left out (the original sent requests: {})",
    "no empty pod securityContext when the task sets none (the original always sent one)",
    "image pull secrets come from configuration (the original hard-coded `registry`)",
    "no ODIN_CRED unless configured (the original always set it)",
    "ODIN_RUN_ID and ODIN_ATTEMPT are set beside ODIN_TASK_ID",
    "main containers report their last log lines as termination message",
  ],
  // train-sst2-1: one GPU, a PVC, no security context.
  [
    "container name is the task name, not a fixed one",
    "resource quantities are strings with the spelling of main.yml (the original sent JSON numbers)",
    "empty resource maps are left out (the original sent requests: {})",
    "no empty pod securityContext when the task sets none (the original always sent one)",
    "image pull secrets come from configuration (the original hard-coded `registry`)",
    "no ODIN_CRED unless configured (the original always set it)",
    "ODIN_RUN_ID and ODIN_ATTEMPT are set beside ODIN_TASK_ID",
    "main containers report their last log lines as termination message",
    "an init container creates TASK_PATH on the /data volume (the original's server made it)",
  ],
  // goodbye-python: like hello-python.
  [
    "container name is the task name, not a fixed one",
    "no nvidia.com/gpu limit when the task has no GPUs (the original sent 0)",
    "empty resource maps are left out (the original sent requests: {})",
    "no empty pod securityContext when the task sets none (the original always sent one)",
    "image pull secrets come from configuration (the original hard-coded `registry`)",
    "no ODIN_CRED unless configured (the original always set it)",
    "ODIN_RUN_ID and ODIN_ATTEMPT are set beside ODIN_TASK_ID",
    "main containers report their last log lines as termination message",
  ],
];

test("conformance: test_podspecs-ephem has the five tasks of the goldens, in order", () => {
  assert.equal(pipeline.name, "test-job");
  assert.deepEqual(
    pipeline.tasks.map((t) => t.name),
    ["shm", "train-sst2-2", "hello-python", "train-sst2-1", "goodbye-python"],
  );
});

pipeline.tasks.forEach((task, index) => {
  test(`conformance: ${task.name} matches test_pod_${index}.json but for the intended differences`, () => {
    const spec = launchSpec(pipeline, task.name, { runId, rootPath, dataPath }, overrides);
    const manifest = buildManifest(spec, config);
    assert.ok(manifest.kind === "Pod");
    assertValidPodSpec(manifest.body.spec, task.name);

    const ours = JSON.parse(JSON.stringify(manifest.body.spec)) as Json;
    const golden = comparable(
      JSON.parse(readConformance(`odin-tests/tests-golden-podspecs/test_pod_${index}.json`)),
    ) as Json;
    const applied = Object.entries(differences)
      .filter(([, apply]) => apply({ ours, golden, index }))
      .map(([name]) => name);
    assert.deepEqual(applied, expectedDifferences[index]);
    assert.deepEqual(ours, golden);
  });
});

test("conformance: the pods carry Odin's identity, which the original's did not", () => {
  pipeline.tasks.forEach((task) => {
    const spec = launchSpec(pipeline, task.name, { runId, rootPath, dataPath }, overrides);
    const { body, name, namespace } = buildManifest(spec, config);
    const id = taskId(runId, task.name);
    // Same name as the original's pod (the task id), namespace from configuration (not `default`).
    assert.equal(name, id);
    assert.equal(body.metadata?.name, id);
    assert.equal(namespace, "odin-tasks");
    assert.equal(body.metadata?.namespace, "odin-tasks");
    assert.deepEqual(body.metadata?.labels, {
      "app.kubernetes.io/managed-by": "odin",
      "odin.dev/run": runId,
      "odin.dev/task": task.name,
      "odin.dev/attempt": "1",
    });
    assert.deepEqual(body.metadata?.annotations, {
      [taskIdAnnotation]: id,
      [pipelineAnnotation]: "test_podspecs-ephem",
    });
    assert.equal(
      selectorFor({ runId, task: task.name, attempt: 1 }),
      `app.kubernetes.io/managed-by=odin,odin.dev/run=${runId},odin.dev/task=${task.name},odin.dev/attempt=1`,
    );
  });
});
