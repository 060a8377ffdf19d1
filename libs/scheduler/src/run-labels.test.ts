// The labels of schedule and trigger runs: valid label values a selector can name, one per
// schedule or trigger, and runs older versions labelled read as they are labelled now (through
// the run store, as ListRuns reads them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { isLabelValue } from "@odin/pipeline-spec";
import { MemoryKeyValueStore } from "@odin/run-store";
import type { RunRecord } from "./records.js";
import { matches, parseLabelSelector } from "./run-index.js";
import {
  pipelineLabelValue,
  scheduleLabelValue,
  scheduleRunSelector,
  triggerLabelValue,
  triggerRunSelector,
  upgradeRunLabels,
} from "./run-labels.js";
import { SchedulerStore } from "./store.js";
import { runRecord } from "./testing/fixtures.js";

function run(id: string, extra: Partial<RunRecord>): RunRecord {
  return runRecord(id, {
    pipeline: "sst2",
    pipelineName: "sst2",
    state: "SUCCEEDED",
    submittedBy: "alice",
    ...extra,
  });
}

test("schedule label values: created names as they are, declared ones readable, nested paths too", () => {
  assert.equal(scheduleLabelValue("nightly"), "nightly");
  assert.equal(scheduleLabelValue("sst2:nightly"), "sst2.nightly");
  assert.equal(scheduleLabelValue("team/nlp/sst2:nightly"), "team.nlp.sst2.nightly");
  assert.equal(scheduleRunSelector("team/sst2:hourly-us"), "schedule=team.sst2.hourly-us");
  assert.equal(triggerLabelValue("train", "code"), "train.code");
  assert.equal(triggerRunSelector("team/train", "code"), "trigger=team.train.code");
  for (const selector of [
    scheduleRunSelector("team/nlp/sst2:nightly"),
    triggerRunSelector("a/b", "c"),
  ])
    assert.equal(parseLabelSelector(selector).length, 1, selector);
});

test("label values are valid and distinct where the readable form would be ambiguous or too long", () => {
  const names = [
    "nightly",
    "sst2-nightly",
    "sst2:nightly",
    "a.b:c", // a pipeline directory with a dot …
    "a/b:c", // … and a nested one: both would read a.b.c
    "a_b:c",
    "a/b_c:d",
    "a:b-c",
    "a-b:c",
    "Team/Caps.v2:x",
    `${"deep/".repeat(20)}sst2:nightly`,
    `${"deep/".repeat(20)}sst2:nightly-2`,
    `${"x".repeat(60)}:${"y".repeat(63)}`,
    `${"x".repeat(60)}:${"y".repeat(62)}z`,
  ];
  const values = names.map(scheduleLabelValue);
  for (const [i, v] of values.entries()) {
    assert.ok(isLabelValue(v), `${names[i]} → ${v} is not a label value`);
    assert.doesNotThrow(() => parseLabelSelector(`schedule=${v}`), v);
  }
  assert.equal(new Set(values).size, names.length, values.join(" "));
  // The readable one stays readable; the other of the pair carries a hash.
  assert.equal(scheduleLabelValue("a/b:c"), "a.b.c");
  assert.match(scheduleLabelValue("a.b:c"), /^a\.b\.c_[0-9a-f]{10}$/);
  assert.match(
    pipelineLabelValue(`${"deep/".repeat(20)}sst2`, "nightly"),
    /^deep\.deep.*_[0-9a-f]{10}$/,
  );
});

test("runs older versions labelled are read with the labels written now; labels callers gave are left alone", () => {
  const declared = upgradeRunLabels(
    run("a", {
      submittedBy: "schedule:team/sst2:nightly",
      labels: { schedule: "team/sst2:nightly" },
    }),
  );
  assert.deepEqual(declared.labels, { schedule: "team.sst2.nightly" });
  // A declared schedule's name too long for a label got none.
  const long = `${"deep/".repeat(20)}sst2:nightly`;
  assert.deepEqual(upgradeRunLabels(run("b", { submittedBy: `schedule:${long}` })).labels, {
    schedule: scheduleLabelValue(long),
  });
  const created = run("c", { submittedBy: "schedule:nightly", labels: { schedule: "nightly" } });
  assert.equal(upgradeRunLabels(created), created);
  const triggered = upgradeRunLabels(
    run("d", {
      pipeline: "team/train",
      submittedBy: "commit:1a2b3c4 by Jane <jane@example.com>",
      labels: { trigger: "code", commit: "1a2b3c4d" },
    }),
  );
  assert.deepEqual(triggered.labels, { trigger: "team.train.code", commit: "1a2b3c4d" });
  assert.equal(upgradeRunLabels(triggered), triggered, "read twice, changed once");
  const byHand = run("e", { labels: { schedule: "x:y", trigger: "code" } });
  assert.equal(upgradeRunLabels(byHand), byHand);
});

test("an old declared schedule's run is found by its new selector through the run store", async () => {
  const kv = new MemoryKeyValueStore();
  const store = new SchedulerStore(kv);
  const old = run("sst2-old00001", {
    submittedBy: "schedule:sst2:nightly",
    labels: { schedule: "sst2:nightly" },
  });
  // Written as an older version wrote it, not through the store (which writes what it is given).
  await kv.put("runs.sst2-old00001", new TextEncoder().encode(JSON.stringify(old)));
  const filter = { labels: parseLabelSelector("schedule=sst2.nightly") };
  assert.equal(matches((await store.getRun(old.id))!, filter), true);
  const listed = await store.listRuns();
  assert.deepEqual(
    listed.filter((r) => matches(r.record, filter)).map((r) => r.record.id),
    [old.id],
  );
  const updated = await store.updateRun(old.id, (r) => ({ ...r, attempt: 2 }));
  assert.deepEqual(updated?.labels, { schedule: "sst2.nightly" });
});
