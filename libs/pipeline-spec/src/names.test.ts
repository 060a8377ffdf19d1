// Run ids, task ids and the Kubernetes names derived from them.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  isDnsLabel,
  maxNameLength,
  maxPipelineNameLength,
  newRunId,
  objectName,
  taskId,
  toDnsLabel,
} from "./names.js";

describe("run ids", () => {
  test("<pipeline name>-<8 lower-case alphanumerics>, a DNS label", () => {
    for (const name of ["sst2", "flow", "bert-ner", "test-job"]) {
      const id = newRunId(name);
      assert.match(id, new RegExp(`^${name}-[a-z0-9]{8}$`));
      assert.ok(isDnsLabel(id), id);
    }
  });

  test("fresh ids differ", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newRunId("sst2")));
    assert.equal(ids.size, 1000);
  });

  test("the suffix comes from the random bytes given", () => {
    assert.equal(
      newRunId("sst2", Uint8Array.from([0, 1, 2, 25, 26, 35, 36, 255])),
      "sst2-abcz09ad",
    );
  });

  test("the longest pipeline name allowed still gives a DNS label", () => {
    const id = newRunId("p".repeat(maxPipelineNameLength));
    assert.equal(id.length, maxNameLength);
    assert.ok(isDnsLabel(id), id);
  });

  test("a '.' in the pipeline name does not leak into the run id", () => {
    const id = newRunId("team.sst2");
    assert.match(id, /^team-sst2-[a-z0-9]{8}$/);
    assert.ok(isDnsLabel(id), id);
  });
});

describe("task ids", () => {
  test("<run id>--<task name>", () => {
    assert.equal(taskId("sst2-k3x9q", "sst2"), "sst2-k3x9q--sst2");
    assert.equal(taskId("test-job-xxxx", "train-sst2-1"), "test-job-xxxx--train-sst2-1");
  });
});

describe("Kubernetes object names", () => {
  const runId = "my-long-pipeline-name-k3x9q2ab";
  // 60 shared characters, then what tells the tasks apart.
  const prefix = "train-a-very-long-task-name-that-goes-on-and-on-and-on-and-o";

  test("a short valid task id is the name of its first attempt, as in the original", () => {
    assert.equal(objectName("sst2-k3x9q", "sst2"), "sst2-k3x9q--sst2");
    assert.equal(objectName("sst2-k3x9q", "sst2", 1), "sst2-k3x9q--sst2");
  });

  test("long task ids give valid names of at most 63 characters that keep a readable prefix", () => {
    assert.equal(prefix.length, 60);
    for (const attempt of [1, 2, 3, 10]) {
      const name = objectName(runId, `${prefix}-x`, attempt);
      assert.ok(name.length <= maxNameLength, `${name} is ${name.length} characters`);
      assert.ok(isDnsLabel(name), name);
      assert.ok(name.startsWith(`${runId}--train-a-very-long`), name);
    }
  });

  test("the same run, task and attempt always give the same name", () => {
    const name = objectName(runId, `${prefix}-x`, 2);
    for (let i = 0; i < 3; i++) assert.equal(objectName(runId, `${prefix}-x`, 2), name);
    // Pinned across releases: a changed scheme would make a restarted launcher miss the objects
    // it created before the upgrade and launch every running task a second time.
    assert.equal(objectName("sst2-k3x9q", "sst2", 2), "sst2-k3x9q--sst2-2-636e359fcd");
    assert.equal(
      objectName(runId, `${prefix}-x`),
      "my-long-pipeline-name-k3x9q2ab--train-a-very-long-ta-30bae0f1c4",
    );
  });

  test("many long task names sharing a 60-character prefix all get distinct names", () => {
    const names = new Set<string>();
    const suffixes: string[] = [];
    for (let i = 0; i < 2000; i++) suffixes.push(`-${i}`);
    for (const s of ["-a", "-b", "-A", "_a", ".a"]) suffixes.push(s);
    for (const suffix of suffixes) {
      const name = objectName(runId, prefix + suffix);
      assert.ok(isDnsLabel(name), name);
      names.add(name);
    }
    assert.equal(names.size, suffixes.length);
  });

  test("attempts of one task get distinct names, distinct from other tasks' names", () => {
    const names = new Set<string>();
    for (const task of ["sst2", "sst2-2", `${prefix}-x`, `${prefix}-y`]) {
      for (const attempt of [1, 2, 3]) names.add(objectName(runId, task, attempt));
    }
    assert.equal(names.size, 12);
  });

  test("toDnsLabel keeps valid labels and makes anything else one, deterministically", () => {
    assert.equal(toDnsLabel("sst2-k3x9q--sst2"), "sst2-k3x9q--sst2");
    const made = toDnsLabel("Team_SST2.run");
    assert.ok(isDnsLabel(made), made);
    assert.equal(made, "team-sst2-run-983852784c");
    assert.equal(toDnsLabel("Team_SST2.run"), made);
    assert.notEqual(
      toDnsLabel("team_sst2.run"),
      made,
      "inputs differing only in case stay distinct",
    );
    assert.ok(isDnsLabel(toDnsLabel("---")));
    assert.ok(isDnsLabel(toDnsLabel("")));
    assert.equal(toDnsLabel("x".repeat(63)), "x".repeat(63));
    assert.equal(toDnsLabel("x".repeat(64)).length, 63);
  });
});
