import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadPipeline } from "@odin/pipeline-spec";
import * as common from "./common.js";
import { pipelineFromProto, pipelineToProto, problemFromProto, problemToProto } from "./convert.js";

const everything = `
name: all-fields
fail_fast: false
parallelism: 3
notify:
- webhook: {secret: slack-ml}
  on: [failed]
- webhook: ops
tasks:
- name: prep
  image: python:3.11
  command: python3
  args: ["-c", 1.10]
- name: train
  image: mead:1
  command: [mead-train, --x]
  args: [^prep.outputs.model]
  depends: prep
  resource_type: PyTorchJob
  num_workers: 4
  num_gpus: 2
  pull_policy: Always
  mounts: [{name: data, path: /data, claim: pvc}, {name: shm, path: /dev/shm}]
  ephem_volumes: [{name: shm, medium: Memory, size_limit: 1Gi}]
  secrets: [{name: s, path: /s, sub_path: k, mode: 0400}]
  config_maps: [{name: c, path: /c, sub_path: f}]
  cpu: {limits: 4.5, requests: 1}
  memory: {limits: 16Gi}
  security_context: {fs_group: 0, run_as_user: 1000}
  node_selector: {gpu: a100}
  inputs: [a, b]
  outputs: {model: /m}
  env: {A: "1"}
  tolerations: [{key: k, operator: Exists, effect: NoSchedule, toleration_seconds: 0}]
  labels: {team: ml}
  annotations: {note: hi}
  service_account: trainer
  retries: 2
  retry_backoff: 1500ms
  timeout: 2h
  pending_timeout: 10m
  custom: {x: [1, 2]}
`;

test("a pipeline with every field survives the trip to the wire and back", () => {
  const loaded = loadPipeline(everything, { path: "a/b" });
  assert.ok(loaded.valid, JSON.stringify(loaded.problems));
  const wire = pipelineToProto(loaded.pipeline!, "abc");
  const bytes = common.Pipeline.encode(wire).finish();
  const back = pipelineFromProto(common.Pipeline.decode(bytes));
  assert.deepEqual(back, loaded.pipeline);
  assert.equal(wire.tasks[1]!.resourceType, common.ResourceType.RESOURCE_TYPE_PYTORCH_JOB);
  assert.equal(
    wire.tasks[1]!.securityContext?.fsGroup,
    0n,
    "fs_group 0 is kept, not dropped as a default",
  );
});

test("every conformance pipeline survives the trip to the wire and back", () => {
  for (const path of [
    "sample-odin-pipelines/bert-ner",
    "sample-odin-pipelines/sst2",
    "sample-odin-pipelines/imagenet-elastic",
    "odin-tests/test_podspecs-ephem",
  ]) {
    const file = fileURLToPath(
      new URL(`../../../../shared/conformance/${path}/main.yml`, import.meta.url),
    );
    const loaded = loadPipeline(readFileSync(file, "utf8"), { path });
    const back = pipelineFromProto(
      common.Pipeline.decode(
        common.Pipeline.encode(pipelineToProto(loaded.pipeline!, "c")).finish(),
      ),
    );
    assert.deepEqual(back, loaded.pipeline, path);
  }
});

test("problems keep their position and severity on the wire", () => {
  const { problems } = loadPipeline(
    "tasks:\n- name: a\n  image: i\n  command: c\n  depends: [zz]\n  color: red\n",
    { file: "p/main.yml" },
  );
  assert.equal(problems.length, 2);
  assert.deepEqual(
    problems.map((p) => problemFromProto(problemToProto(p))),
    problems,
  );
});
