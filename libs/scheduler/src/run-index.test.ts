// The in-memory run index behind ListRuns and WatchRuns: newest first, cursors that stay put
// while runs are created, filters, removals, and store revisions that arrive out of order.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { RunRecord } from "./records.js";
import { cursorToken, parseCursor, parseLabelSelector, RunIndex } from "./run-index.js";
import { runRecord } from "./testing/fixtures.js";

function run(id: string, createTime: number, extra: Partial<RunRecord> = {}): RunRecord {
  return runRecord(id, { createTime, ...extra });
}

test("pages go newest first and a cursor stays put while newer runs are created", () => {
  const index = new RunIndex();
  for (let i = 0; i < 10; i++) index.apply(`r-${i}`, run(`r-${i}`, 1000 + i), i + 1);
  const first = index.page({}, 4);
  assert.deepEqual(
    first.runs.map((r) => r.id),
    ["r-9", "r-8", "r-7", "r-6"],
  );
  // A new run between pages does not shift the next page.
  index.apply("r-10", run("r-10", 2000), 11);
  const token = cursorToken(first.next!);
  const second = index.page({}, 4, parseCursor(token));
  assert.deepEqual(
    second.runs.map((r) => r.id),
    ["r-5", "r-4", "r-3", "r-2"],
  );
  const last = index.page({}, 4, second.next);
  assert.deepEqual(
    last.runs.map((r) => r.id),
    ["r-1", "r-0"],
  );
  assert.equal(last.next, undefined);
});

test("filters by pipeline, state and labels; removed runs and stale revisions", () => {
  const index = new RunIndex();
  index.apply("a", run("a", 1, { pipeline: "team/a", labels: { env: "prod" } }), 1);
  index.apply("b", run("b", 2, { pipeline: "team/b", state: "FAILED" }), 2);
  index.apply("c", run("c", 3, { pipeline: "other" }), 3);
  assert.deepEqual(
    index.page({ pipeline: "team" }, 10).runs.map((r) => r.id),
    ["b", "a"],
  );
  assert.deepEqual(
    index.page({ states: ["FAILED"] }, 10).runs.map((r) => r.id),
    ["b"],
  );
  assert.deepEqual(
    index.page({ labels: parseLabelSelector("env=prod") }, 10).runs.map((r) => r.id),
    ["a"],
  );
  // A listing read before a change must not undo it.
  assert.equal(index.apply("b", run("b", 2, { state: "SUCCEEDED" }), 5), true);
  assert.equal(index.apply("b", run("b", 2, { state: "RUNNING" }), 4), false);
  assert.equal(index.get("b")?.state, "SUCCEEDED");
  index.apply("a", undefined, 6);
  assert.deepEqual(
    index.page({}, 10).runs.map((r) => r.id),
    ["c", "b"],
  );
  assert.equal(index.size, 2);
  // A cursor whose run is gone still marks where the next page starts.
  assert.deepEqual(
    index.page({}, 10, { createTime: 3, id: "c" }).runs.map((r) => r.id),
    ["b"],
  );
  assert.equal(parseCursor("12"), undefined);
});

test("100,000 runs: the newest page is the newest 50, the next starts where it ended", () => {
  const index = new RunIndex();
  for (let i = 0; i < 100_000; i++)
    index.apply(
      `run-${String(i).padStart(6, "0")}`,
      run(`run-${String(i).padStart(6, "0")}`, i),
      i + 1,
    );
  const page = index.page({}, 50);
  assert.equal(page.runs[0]!.id, "run-099999");
  assert.equal(page.runs[49]!.id, "run-099950");
  assert.equal(index.page({}, 1, page.next).runs[0]!.id, "run-099949");
});

test("label selectors in Kubernetes' syntax: =, ==, !=, in, notin, set and not set", () => {
  const index = new RunIndex();
  index.apply("a", run("a", 1, { labels: { env: "prod", team: "nlp" } }), 1);
  index.apply("b", run("b", 2, { labels: { env: "dev", team: "cv", gpu: "a100" } }), 2);
  index.apply("c", run("c", 3, { labels: {} }), 3);
  const ids = (selector: string) =>
    index
      .page({ labels: parseLabelSelector(selector) }, 10)
      .runs.map((r) => r.id)
      .sort()
      .join(",");
  assert.equal(ids(""), "a,b,c");
  assert.equal(ids("env=prod"), "a");
  assert.equal(ids("env==prod"), "a");
  // As in Kubernetes, != and notin also match runs without the label.
  assert.equal(ids("env!=dev"), "a,c");
  assert.equal(ids("team in (nlp, cv)"), "a,b");
  assert.equal(ids("team notin (nlp)"), "b,c");
  assert.equal(ids("gpu"), "b");
  assert.equal(ids("!gpu"), "a,c");
  assert.equal(ids("team in (nlp,cv),env!=prod, gpu"), "b");
  for (const bad of ["env=a b", "=prod", "team in nlp", "team in (a b)", "env!!=x"])
    assert.throws(
      () => parseLabelSelector(bad),
      /is not a label requirement|not a label value/,
      bad,
    );
});
