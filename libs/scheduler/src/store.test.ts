// Listing a run's tasks: read from the store once, then from memory while the store's watch keeps
// it current — never older than the run record last read, with another replica writing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryKeyValueStore } from "@odin/run-store";
import type { RunRecord, TaskRecord } from "./records.js";
import { SchedulerStore } from "./store.js";
import { until } from "./testing/fixtures.js";

/** A memory store that counts listings. */
class CountingStore extends MemoryKeyValueStore {
  lists = 0;
  override list(filter: string) {
    this.lists++;
    return super.list(filter);
  }
}

const run = (state: RunRecord["state"]) => ({ id: "r-1", state }) as unknown as RunRecord;
const states = (m: Map<string, TaskRecord>) =>
  Object.fromEntries([...m].map(([k, v]) => [k, v.state]));

test("a run's tasks are listed from the store once, then from memory kept current by the watch", async () => {
  const kv = new CountingStore();
  const reader = new SchedulerStore(kv);
  const writer = new SchedulerStore(kv); // another replica
  // What the reader's watch has brought, as `task:NAME=STATE` and `run=STATE`.
  const seen = new Set<string>();
  const watch = await reader.watch((c) => {
    if (c.kind === "task") seen.add(`task:${c.task}=${c.record?.state ?? "deleted"}`);
    if (c.kind === "run") seen.add(`run=${c.record?.state ?? "deleted"}`);
  });
  await writer.createRun(run("RUNNING"));
  await writer.updateTask("r-1", "a", () => ({ state: "SUCCEEDED", attempt: 1 }));
  await writer.updateTask("r-1", "b", () => ({ state: "RUNNING", attempt: 1 }));

  await reader.getRun("r-1");
  assert.deepEqual(states(await reader.listTasks("r-1")), { a: "SUCCEEDED", b: "RUNNING" });
  assert.equal(kv.lists, 1);
  await until(() => seen.has("task:b=RUNNING"), "the watch to bring b");
  assert.deepEqual(states(await reader.listTasks("r-1")), { a: "SUCCEEDED", b: "RUNNING" });
  assert.equal(kv.lists, 1, "the second listing reads no key");

  // The other replica ends the run: a listing right after reading the ended run is never older
  // than it, whether or not the watch has brought the changes yet.
  await writer.updateTask("r-1", "b", () => ({ state: "FAILED", attempt: 1 }));
  await writer.updateTask("r-1", "c", () => ({ state: "SKIPPED", attempt: 0 }));
  await writer.updateRun("r-1", (r) => ({ ...r, state: "FAILED" }));
  await reader.getRun("r-1");
  const expected = { a: "SUCCEEDED", b: "FAILED", c: "SKIPPED" };
  assert.deepEqual(states(await reader.listTasks("r-1")), expected);
  await until(() => seen.has("run=FAILED"), "the watch to bring the run's end");
  const lists = kv.lists;
  assert.deepEqual(states(await reader.listTasks("r-1")), expected);
  assert.equal(kv.lists, lists, "caught up: from memory again");

  // Removed by the other replica: nothing is listed from memory.
  await writer.deleteRun("r-1");
  await until(() => seen.has("task:a=deleted"), "the watch to bring the delete");
  assert.deepEqual(states(await reader.listTasks("r-1")), {});

  // Without a watch nothing is kept: every listing reads the store.
  await watch.stop();
  await writer.createRun(run("RUNNING"));
  await writer.updateTask("r-1", "a", () => ({ state: "RUNNING", attempt: 1 }));
  const before = kv.lists;
  assert.deepEqual(states(await reader.listTasks("r-1")), { a: "RUNNING" });
  assert.deepEqual(states(await reader.listTasks("r-1")), { a: "RUNNING" });
  assert.equal(kv.lists, before + 2);
});

/** A memory store that counts reads of single keys. */
class GetCountingStore extends MemoryKeyValueStore {
  gets = 0;
  override get(key: string) {
    this.gets++;
    return super.get(key);
  }
}

test("task changes of runs a replica does not look at are not handed on, yet their revisions serve its next write", async () => {
  const kv = new GetCountingStore();
  const elsewhere = new SchedulerStore(kv); // not driving r-1, nobody following it here
  const driver = new SchedulerStore(kv); // the replica driving r-1
  const handed: string[] = [];
  const watch = await elsewhere.watch(
    (c) => {
      if (c.kind === "task") handed.push(`${c.runId}/${c.task}`);
      if (c.kind === "run") handed.push(`run ${c.runId}`);
    },
    { tasksOf: (runId) => runId === "r-2" },
  );
  try {
    await driver.createRun(run("RUNNING"));
    await driver.updateTask("r-1", "a", () => ({ state: "LAUNCHING", attempt: 1 }));
    await driver.updateTask("r-2", "a", () => ({ state: "LAUNCHING", attempt: 1 }));
    await until(() => handed.includes("r-2/a"), "the watch to bring r-2's task");
    assert.deepEqual(handed, ["run r-1", "r-2/a"], "r-1's task change is kept, not handed on");

    // A task event of r-1 applied here: the remembered revision is current, so no read is needed.
    const gets = kv.gets;
    const { record, written } = await elsewhere.updateTask("r-1", "a", (cur) =>
      cur?.state === "LAUNCHING" ? { ...cur, state: "RUNNING" } : undefined,
    );
    assert.equal(written, true);
    assert.equal(record?.state, "RUNNING");
    assert.equal(kv.gets, gets, "written by compare-and-set on the remembered revision");
    assert.equal(elsewhere.cachedTask("r-1", "a")?.state, "RUNNING");
    assert.equal((await driver.getTask("r-1", "a"))?.state, "RUNNING");
  } finally {
    await watch.stop();
  }
});
