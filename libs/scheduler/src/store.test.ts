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

/** A memory store whose reads of single keys wait, while gated, until it is opened. */
class GatedStore extends MemoryKeyValueStore {
  private gateOpen: Promise<void> | undefined;
  private release: (() => void) | undefined;
  waiting = 0;
  gate(): void {
    this.gateOpen = new Promise((resolve) => (this.release = resolve));
  }
  open(): void {
    this.release?.();
    this.gateOpen = undefined;
  }
  override async get(key: string) {
    if (this.gateOpen) {
      this.waiting++;
      await this.gateOpen;
    }
    return super.get(key);
  }
}

/** A memory store that counts reads of single keys. */
class GetCountingStore extends MemoryKeyValueStore {
  gets = 0;
  override get(key: string) {
    this.gets++;
    return super.get(key);
  }
}

test("the watch reads only the values it hands on and did not write itself", async () => {
  const kv = new GetCountingStore();
  const elsewhere = new SchedulerStore(kv); // not driving r-1, nobody following it here
  const driver = new SchedulerStore(kv); // the replica driving r-1
  const handed: string[] = [];
  const watch = await elsewhere.watch(
    (c) => {
      if (c.kind === "task") handed.push(`${c.runId}/${c.task}=${c.record?.state}`);
      if (c.kind === "run") handed.push(`run ${c.runId}`);
    },
    { tasksOf: (runId) => runId === "r-2" },
  );
  try {
    await driver.createRun(run("RUNNING"));
    await driver.updateTask("r-1", "a", () => ({ state: "LAUNCHING", attempt: 1 }));
    await driver.updateTask("r-2", "a", () => ({ state: "LAUNCHING", attempt: 1 }));
    await until(() => handed.includes("r-2/a=LAUNCHING"), "the watch to bring r-2's task");
    assert.deepEqual(handed, ["run r-1", "r-2/a=LAUNCHING"], "r-1's task change is not handed on");
    assert.equal(kv.gets, 2, "the run record and r-2's task are read; r-1's task is not");

    // Its own write is handed on from memory.
    await elsewhere.updateTask("r-2", "a", (cur) => cur && { ...cur, state: "RUNNING" });
    await until(() => handed.includes("r-2/a=RUNNING"), "the watch to bring its own write");
    assert.equal(kv.gets, 2, "its own write is not read back");

    // A task of r-1 written here reads it first (the compare-and-set has no revision to go on).
    const { record, written } = await elsewhere.updateTask("r-1", "a", (cur) =>
      cur?.state === "LAUNCHING" ? { ...cur, state: "RUNNING" } : undefined,
    );
    assert.equal(written, true);
    assert.equal(record?.state, "RUNNING");
    assert.equal(kv.gets, 3);
    assert.equal((await driver.getTask("r-1", "a"))?.state, "RUNNING");
  } finally {
    await watch.stop();
  }
});

test("changes are handed on in revision order while a value is being read", async () => {
  const kv = new GatedStore();
  const follower = new SchedulerStore(kv);
  const writer = new SchedulerStore(kv);
  const handed: string[] = [];
  const watch = await follower.watch((c) => {
    if (c.kind === "task") handed.push(`${c.runId}/${c.task}=${c.record?.state}`);
    if (c.kind === "run") handed.push(`run ${c.runId}`);
  });
  try {
    kv.gate();
    await writer.updateTask("r-1", "a", () => ({ state: "RUNNING", attempt: 1 })); // read: waits
    await follower.createRun(run("RUNNING")); // its own: no read, but after the task
    await until(() => kv.waiting > 0, "the watch to read the task");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(handed, [], "nothing handed on before the task's value is read");
    kv.open();
    await until(() => handed.length === 2, "both changes");
    assert.deepEqual(handed, ["r-1/a=RUNNING", "run r-1"]);
  } finally {
    await watch.stop();
  }
});

test("a run nobody here looks at is listed from memory until one of its tasks changes", async () => {
  const kv = new CountingStore();
  const reader = new SchedulerStore(kv);
  const writer = new SchedulerStore(kv);
  const seen: string[] = [];
  const watch = await reader.watch((c) => void seen.push(c.kind), { tasksOf: () => false });
  try {
    await writer.createRun(run("RUNNING"));
    await writer.updateTask("r-1", "a", () => ({ state: "RUNNING", attempt: 1 }));
    await reader.getRun("r-1");
    await until(() => seen.includes("run"), "the run record");
    assert.deepEqual(states(await reader.listTasks("r-1")), { a: "RUNNING" });
    assert.deepEqual(states(await reader.listTasks("r-1")), { a: "RUNNING" });
    assert.equal(kv.lists, 1, "listed once");
    await writer.updateTask("r-1", "a", (cur) => cur && { ...cur, state: "SUCCEEDED" });
    await writer.updateRun("r-1", (r) => ({ ...r, state: "SUCCEEDED" }));
    await until(() => seen.length >= 2, "the run's end");
    await reader.getRun("r-1");
    assert.deepEqual(states(await reader.listTasks("r-1")), { a: "SUCCEEDED" });
    assert.equal(kv.lists, 2, "the task changed unread: listed again");
    assert.equal(reader.cachedTask("r-1", "a")?.state, "SUCCEEDED");
  } finally {
    await watch.stop();
  }
});
