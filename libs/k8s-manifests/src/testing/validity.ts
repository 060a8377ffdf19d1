// Test helper: the checks the Kubernetes API server and the operators would make on what Odin
// builds, so a test fails here rather than on a cluster.
import assert from "node:assert/strict";
import type { V1ObjectMeta, V1PodSpec, V1PodTemplateSpec } from "@kubernetes/client-node";
import { isDnsLabel, isLabelValue } from "@odin/pipeline-spec";
import { apiServerSchemaProblems } from "@odin/testing";
import {
  attemptLabel,
  managedByLabel,
  pipelineAnnotation,
  runLabel,
  taskIdAnnotation,
  taskLabel,
} from "../labels.js";
import type { Manifest } from "../resources.js";

/** Every pod template of a manifest, by role (`Pod`, `Job`, `Worker`, `Master`, `Launcher`). */
export function podTemplates(m: Manifest): [string, V1PodTemplateSpec][] {
  switch (m.kind) {
    case "Pod":
      return [["Pod", { metadata: m.body.metadata, spec: m.body.spec }]];
    case "Job":
      return [["Job", m.body.spec!.template]];
    case "TFJob":
      return Object.entries(m.body.spec.tfReplicaSpecs).map(([r, s]) => [r, s.template]);
    case "PyTorchJob":
      return Object.entries(m.body.spec.pytorchReplicaSpecs).map(([r, s]) => [r, s.template]);
    case "MPIJob":
      return Object.entries(m.body.spec.mpiReplicaSpecs).map(([r, s]) => [r, s.template]);
    case "ElasticJob":
      return Object.entries(m.body.spec.replicaSpecs).map(([r, s]) => [r, s.template]);
  }
}

const labelKey =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Asserts labels are valid and carry Odin's identity of the attempt. */
export function assertOdinMetadata(
  meta: V1ObjectMeta | undefined,
  where: string,
  expected: { runId: string; task: string; attempt: number; taskId: string; pipeline: string },
): void {
  const labels = meta?.labels ?? {};
  for (const [k, v] of Object.entries(labels)) {
    assert.ok(labelKey.test(k) && k.length <= 317, `${where}: label key ${k} is invalid`);
    assert.ok(isLabelValue(v), `${where}: label ${k}=${v} has an invalid value`);
  }
  assert.equal(labels[managedByLabel], "odin", `${where}: ${managedByLabel}`);
  assert.equal(labels[runLabel], expected.runId, `${where}: ${runLabel}`);
  assert.equal(labels[taskLabel], expected.task, `${where}: ${taskLabel}`);
  assert.equal(labels[attemptLabel], String(expected.attempt), `${where}: ${attemptLabel}`);
  assert.equal(
    meta?.annotations?.[taskIdAnnotation],
    expected.taskId,
    `${where}: ${taskIdAnnotation}`,
  );
  assert.equal(
    meta?.annotations?.[pipelineAnnotation],
    expected.pipeline,
    `${where}: ${pipelineAnnotation}`,
  );
}

/** Asserts what the API server checks on a pod spec: names, references between volumes and mounts. */
export function assertValidPodSpec(spec: V1PodSpec | undefined, where: string): void {
  assert.ok(spec, `${where}: no pod spec`);
  const volumes = spec.volumes ?? [];
  const volumeNames = volumes.map((v) => v.name);
  assert.equal(
    new Set(volumeNames).size,
    volumeNames.length,
    `${where}: duplicate volume names ${volumeNames.join(",")}`,
  );
  for (const v of volumes) {
    assert.ok(isDnsLabel(v.name), `${where}: volume name ${v.name} is not a DNS label`);
    const sources = Object.keys(v).filter((k) => k !== "name");
    assert.equal(sources.length, 1, `${where}: volume ${v.name} must have exactly one source`);
  }
  const containers = [...(spec.initContainers ?? []), ...spec.containers];
  const containerNames = containers.map((c) => c.name);
  assert.equal(
    new Set(containerNames).size,
    containerNames.length,
    `${where}: duplicate container names ${containerNames.join(",")}`,
  );
  for (const c of containers) {
    assert.ok(isDnsLabel(c.name), `${where}: container name ${c.name} is not a DNS label`);
    assert.ok(c.image, `${where}: container ${c.name} has no image`);
    const paths = (c.volumeMounts ?? []).map((m) => m.mountPath);
    assert.equal(
      new Set(paths).size,
      paths.length,
      `${where}: container ${c.name} mounts two volumes on one path`,
    );
    for (const m of c.volumeMounts ?? []) {
      assert.ok(
        volumeNames.includes(m.name),
        `${where}: container ${c.name} mounts unknown volume ${m.name}`,
      );
    }
    const env = (c.env ?? []).map((e) => e.name);
    assert.equal(
      new Set(env).size,
      env.length,
      `${where}: container ${c.name} has duplicate env names`,
    );
  }
}

/**
 * Asserts a whole manifest is valid: object name, namespace, Odin's labels on the object and
 * every pod template, and every pod spec.
 */
export function assertValidManifest(
  m: Manifest,
  expected: { runId: string; task: string; attempt: number; taskId: string; pipeline: string },
): void {
  assert.ok(isDnsLabel(m.name), `object name ${m.name} is not a DNS label`);
  assert.equal(m.body.metadata?.name, m.name);
  assert.equal(m.body.metadata?.namespace, m.namespace);
  assert.equal(m.body.apiVersion, m.apiVersion);
  assert.equal(m.body.kind, m.kind);
  // Through JSON, as the client sends it; checked against the real Kubernetes schema or CRD.
  const sent = JSON.parse(JSON.stringify(m.body)) as Record<string, unknown>;
  assert.deepEqual(
    apiServerSchemaProblems(sent),
    [],
    `${m.kind} ${m.name}: the API server would refuse it`,
  );
  assertOdinMetadata(m.body.metadata, `${m.kind} metadata`, expected);
  for (const [role, template] of podTemplates(m)) {
    assertOdinMetadata(template.metadata, `${m.kind} ${role} template`, expected);
    assertValidPodSpec(template.spec, `${m.kind} ${role}`);
  }
}
