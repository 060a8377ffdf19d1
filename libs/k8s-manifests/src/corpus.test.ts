// The sample pipelines of shared/conformance, built into objects: what its README says each one
// means, checked on what Odin would send to Kubernetes.
import { readdirSync } from "node:fs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadPipeline, taskId } from "@odin/pipeline-spec";
import { defaultManifestConfig } from "./config.js";
import { apiServerSchemaProblems } from "@odin/testing";
import { conformanceRoot, launchSpec, loadValid, readConformance } from "./fixtures.js";
import { buildManifest } from "./manifest.js";
import { assertValidManifest, podTemplates } from "./testing/validity.js";

const run = { rootPath: "/data/pipelines", dataPath: "/data/odin" };

test("corpus: bert-ner is one Pod with PVC data-rw-many at /data as volume data and one GPU", () => {
  const pipeline = loadValid(
    readConformance("sample-odin-pipelines/bert-ner/main.yml"),
    "bert-ner",
  );
  const runId = "bert-ner-k3x9q2ab";
  const m = buildManifest(
    launchSpec(pipeline, "conll-0", { ...run, runId }),
    defaultManifestConfig,
  );
  assert.ok(m.kind === "Pod");
  const spec = m.body.spec!;
  const c = spec.containers[0]!;
  assert.equal(c.image, "meadml/mead2-pytorch-gpu:latest");
  assert.equal(c.imagePullPolicy, "Always");
  assert.deepEqual(spec.volumes, [
    { name: "data", persistentVolumeClaim: { claimName: "data-rw-many" } },
  ]);
  assert.deepEqual(c.volumeMounts, [{ name: "data", mountPath: "/data" }]);
  assert.deepEqual(c.resources, { limits: { "nvidia.com/gpu": "1" } });
  assert.deepEqual(c.args, [
    "--basedir",
    `/data/odin/${runId}/${runId}--conll-0`,
    "--config",
    "/data/pipelines/bert-ner/conll-bert.yml",
    "--logging",
    "/data/pipelines/logging.json",
  ]);
  assertValidManifest(m, {
    runId,
    task: "conll-0",
    attempt: 1,
    taskId: taskId(runId, "conll-0"),
    pipeline: "bert-ner",
  });
});

test("corpus: imagenet-elastic is one ElasticJob named flow-…, two workers, one GPU each", () => {
  const pipeline = loadValid(
    readConformance("sample-odin-pipelines/imagenet-elastic/main.yml"),
    "imagenet-elastic",
  );
  const runId = "flow-k3x9q2ab";
  const m = buildManifest(
    launchSpec(pipeline, "imagenet", { ...run, runId }),
    defaultManifestConfig,
  );
  assert.ok(m.kind === "ElasticJob");
  assert.equal(m.name, "flow-k3x9q2ab--imagenet");
  assert.equal(m.plural, "elasticjobs");
  assert.equal(m.apiVersion, "elastic.pytorch.org/v1alpha1");
  const { spec } = m.body;
  assert.equal(spec.minReplicas, 2);
  assert.equal(spec.maxReplicas, 2);
  assert.equal(spec.replicaSpecs.Worker.replicas, 2);
  assert.equal(spec.replicaSpecs.Worker.restartPolicy, "ExitCode");
  // The original looked up etcd-service in namespace elastic-job; the default names it by DNS.
  assert.equal(spec.rdzvEndpoint, "etcd-service.elastic-job.svc:2379");
  const c = spec.replicaSpecs.Worker.template.spec!.containers[0]!;
  assert.deepEqual(c.resources, { limits: { "nvidia.com/gpu": "1" } });
  assert.equal(c.imagePullPolicy, "Always");
  assert.deepEqual(c.command, ["python", "-m", "torchelastic.distributed.launch"]);
  assertValidManifest(m, {
    runId,
    task: "imagenet",
    attempt: 1,
    taskId: taskId(runId, "imagenet"),
    pipeline: "imagenet-elastic",
  });
});

test("corpus: sst2 (explicit nulls) is one Pod with the defaults: IfNotPresent, no init container off the volume", () => {
  const result = loadPipeline(readConformance("sample-odin-pipelines/sst2/main.yml"), {
    path: "sst2",
  });
  assert.ok(result.valid && result.pipeline);
  const runId = "flow-k3x9q2ab";
  // Outputs under /data/odin, on the task's /data volume: TASK_PATH is created before it starts.
  const m = buildManifest(
    launchSpec(result.pipeline, "sst2", { ...run, runId }),
    defaultManifestConfig,
  );
  assert.ok(m.kind === "Pod");
  const c = m.body.spec!.containers[0]!;
  assert.equal(c.imagePullPolicy, "IfNotPresent");
  assert.equal(c.args?.[3], "/data/pipelines/sst2/sst2.yml");
  assert.deepEqual(m.body.spec!.initContainers?.[0]?.command, [
    "mkdir",
    "-p",
    `/data/odin/${runId}/sst2`,
  ]);
  // With outputs elsewhere, nothing to create.
  const elsewhere = buildManifest(
    launchSpec(result.pipeline, "sst2", { rootPath: "/data/pipelines", dataPath: "/out", runId }),
    defaultManifestConfig,
  );
  assert.ok(elsewhere.kind === "Pod");
  assert.equal(elsewhere.body.spec!.initContainers, undefined);
});

test("corpus: test_pipeline-2-cpu-secctx sets security context and cpu on train-sst2-2 only", () => {
  const pipeline = loadValid(
    readConformance("odin-tests/test_pipeline-2-cpu-secctx/main.yml"),
    "test_pipeline-2-cpu-secctx",
  );
  const runId = "test-job-k3x9q2ab";
  for (const task of pipeline.tasks) {
    const m = buildManifest(
      launchSpec(pipeline, task.name, { ...run, runId }),
      defaultManifestConfig,
    );
    const template = podTemplates(m)[0]![1];
    if (task.name === "train-sst2-2") {
      assert.deepEqual(template.spec?.securityContext, { fsGroup: 1152 });
      assert.deepEqual(template.spec?.containers[0]?.resources, {
        limits: { cpu: "4.5", "nvidia.com/gpu": "1" },
        requests: { cpu: "1.0" },
      });
    } else {
      assert.equal(template.spec?.securityContext, undefined, task.name);
      const resources = JSON.stringify(template.spec?.containers[0]?.resources ?? {});
      assert.doesNotMatch(resources, /cpu/, task.name);
    }
  }
});

test("corpus: every task of every conformance pipeline builds an object the real schemas accept", () => {
  const mains: string[] = [];
  const walk = (dir: URL, relative: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(new URL(`${entry.name}/`, dir), `${relative}${entry.name}/`);
      else if (entry.name === "main.yml") mains.push(`${relative}main.yml`);
    }
  };
  walk(conformanceRoot, "");
  assert.ok(mains.length >= 5, `found ${mains.length} pipelines`);
  const kinds = new Set<string>();
  let built = 0;
  for (const main of mains) {
    const result = loadPipeline(readConformance(main), { path: main.replace(/\/main\.yml$/, "") });
    if (!result.valid) continue; // the corpus holds invalid pipelines on purpose
    const pipeline = result.pipeline!;
    for (const task of pipeline.tasks) {
      const m = buildManifest(
        launchSpec(pipeline, task.name, { ...run, runId: "corpus-k3x9q2ab" }),
        defaultManifestConfig,
      );
      const sent = JSON.parse(JSON.stringify(m.body)) as Record<string, unknown>;
      assert.deepEqual(apiServerSchemaProblems(sent), [], `${main} ${task.name} (${m.kind})`);
      kinds.add(m.kind);
      built++;
    }
  }
  assert.ok(built >= 10, `built ${built} objects`);
  assert.ok(kinds.has("Pod") && kinds.has("ElasticJob"), [...kinds].join(", "));
});
