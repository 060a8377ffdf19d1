// Placing new runs: a fresh id falls in the partition with the least work left, of the replica
// with the least; runs being placed count until they are written; the id keeps its usual form.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ownerOf, partitionOf, runPartitions, type WorkShare } from "@odin/events";
import { newRunId } from "@odin/pipeline-spec";
import { partitionKey, remainingTasks, RunPlacement } from "./placement.js";
import type { RunRecord } from "./records.js";
import { RunIndex } from "./run-index.js";
import { runRecord } from "./testing/fixtures.js";

/** Replicas as a Membership would see them, from replica `self`. */
function share(self: string, members: string[]): WorkShare {
  return {
    id: self,
    members: () => members,
    owns: (key) => ownerOf(key, members) === self,
    onChange: () => () => undefined,
  };
}

const ownerOfRun = (runId: string, members: string[]) =>
  ownerOf(partitionKey(partitionOf(runId)), members);

function run(id: string, taskCount: number, extra: Partial<RunRecord> = {}): RunRecord {
  return runRecord(id, { taskCount, ...extra });
}

/** A run id whose partition the replica `member` owns. */
function idOwnedBy(member: string, members: string[]): string {
  for (;;) {
    const id = newRunId("other");
    if (ownerOfRun(id, members) === member) return id;
  }
}

const members = ["a", "b"];

test("a new run goes to the replica with the least work left, in its lightest partition", () => {
  const index = new RunIndex();
  const placement = new RunPlacement(share("a", members), () => index.unfinished());
  // Replica a drives a run of 100 tasks: new runs go to b, whoever places them.
  const big = idOwnedBy("a", members);
  index.apply(big, run(big, 100), 1);
  const first = placement.place("sst2.train", 3);
  assert.match(first.runId, /^sst2-train-[a-z0-9]{8}$/);
  assert.equal(ownerOfRun(first.runId, members), "b");
  // Placed but not written yet, it counts: the next one goes to another of b's partitions.
  const second = placement.place("sst2.train", 3);
  assert.equal(ownerOfRun(second.runId, members), "b");
  assert.notEqual(partitionOf(second.runId), partitionOf(first.runId));
  // Written, they count by their records: b has 6 tasks left.
  index.apply(first.runId, run(first.runId, 3), 2);
  index.apply(second.runId, run(second.runId, 3), 3);
  first.done();
  second.done();
  // a's run nearly done (by its record's counts): a, with 2 tasks left, is the lighter again.
  index.apply(big, run(big, 100, { taskCounts: { SUCCEEDED: 98 } }), 4);
  assert.equal(ownerOfRun(placement.place("p", 1).runId, members), "a");
});

test("runs placed one after another alternate between two replicas, whichever places them", () => {
  const index = new RunIndex();
  const placements = [
    new RunPlacement(share("a", members), () => index.unfinished()),
    new RunPlacement(share("b", members), () => index.unfinished()),
  ];
  const driven = { a: 0, b: 0 };
  for (let i = 0; i < 10; i++) {
    const { runId, done } = placements[i % 3 === 0 ? 0 : 1]!.place("p", 50);
    index.apply(runId, run(runId, 50), i + 1);
    done();
    driven[ownerOfRun(runId, members) as "a" | "b"]++;
  }
  assert.deepEqual(driven, { a: 5, b: 5 });
  // Every run got a partition of its own (ten runs, sixteen partitions).
  const partitions = new Set([...index.unfinished()].map((r) => partitionOf(r.id)));
  assert.equal(partitions.size, 10);
});

test("two replicas placing at once, each unaware of the other's, still split evenly", () => {
  // Each sees only its own placements (their records are not written yet): equal loads go to
  // the replica placing, so the two go opposite ways.
  const idle = () => [];
  const a = new RunPlacement(share("a", members), idle);
  const b = new RunPlacement(share("b", members), idle);
  const owners = [a, b, a, b, a, b].map((p) => ownerOfRun(p.place("p", 10).runId, members));
  assert.deepEqual(owners.filter((o) => o === "a").length, 3);
});

test("one replica (or none shared): any fresh id, nothing counted", () => {
  for (const placement of [
    new RunPlacement(undefined, () => []),
    new RunPlacement(share("a", ["a"]), () => []),
  ]) {
    const partitions = new Set<number>();
    for (let i = 0; i < 200; i++) partitions.add(partitionOf(placement.place("p", 1).runId));
    // Ids are drawn freely: 200 of them land in (nearly) every partition.
    assert.ok(partitions.size > runPartitions / 2, `${partitions.size} partitions`);
  }
});

test("a run's remaining tasks are those its counts do not show ended", () => {
  assert.equal(remainingTasks(run("r", 10)), 10);
  assert.equal(
    remainingTasks(
      run("r", 10, { taskCounts: { SUCCEEDED: 3, FAILED: 1, SKIPPED: 1, RUNNING: 2, PENDING: 2 } }),
    ),
    5,
  );
  assert.equal(remainingTasks(run("r", 2, { taskCounts: { SUCCEEDED: 5 } })), 0);
});
