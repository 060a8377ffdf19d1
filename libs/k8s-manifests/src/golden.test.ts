// Golden tests: one fixture pipeline per resource type in testdata/golden/, and beside it the
// object Odin must build for it, written by hand from SPEC.md and the package README.
import { test } from "node:test";
import assert from "node:assert/strict";
import { taskId } from "@odin/pipeline-spec";
import { goldenConfig, launchSpec, loadValid, readTestdata } from "./fixtures.js";
import { buildManifest } from "./manifest.js";
import { assertValidManifest } from "./testing/validity.js";

const run = {
  runId: "golden-k3x9q2ab",
  rootPath: "/data/pipelines",
  dataPath: "/data/odin",
};

const cases: { fixture: string; task: string; attempt?: number; commit?: string }[] = [
  { fixture: "pod-full", task: "train", commit: "3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e" },
  { fixture: "pod-minimal", task: "hello" },
  { fixture: "job", task: "prep", attempt: 3 },
  { fixture: "tfjob", task: "tf-train" },
  { fixture: "pytorchjob", task: "pt-train" },
  { fixture: "mpijob", task: "hvd" },
  { fixture: "elasticjob", task: "imagenet" },
];

for (const c of cases) {
  test(`golden: ${c.fixture}.yml builds ${c.fixture}.json`, () => {
    const pipeline = loadValid(readTestdata(`golden/${c.fixture}.yml`), "nlp/sst2");
    const spec = launchSpec(pipeline, c.task, { ...run, attempt: c.attempt, commit: c.commit });
    const manifest = buildManifest(spec, goldenConfig);
    const expected: unknown = JSON.parse(readTestdata(`golden/${c.fixture}.json`));
    // Through JSON, as the client sends it: undefined fields vanish, nothing else changes.
    assert.deepEqual(JSON.parse(JSON.stringify(manifest)), expected);
    assertValidManifest(manifest, {
      runId: run.runId,
      task: c.task,
      attempt: c.attempt ?? 1,
      taskId: taskId(run.runId, c.task),
      pipeline: "nlp/sst2",
    });
  });
}

test("golden: every resource type has a golden file", () => {
  const kinds = new Set(
    cases.map((c) => {
      const pipeline = loadValid(readTestdata(`golden/${c.fixture}.yml`), "nlp/sst2");
      return pipeline.tasks[0]!.resourceType;
    }),
  );
  assert.deepEqual([...kinds].sort(), [
    "ElasticJob",
    "Job",
    "MPIJob",
    "Pod",
    "PyTorchJob",
    "TFJob",
  ]);
});
