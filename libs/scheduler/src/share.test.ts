// Scheduler replicas splitting the runs between them (a Membership each, over one event bus): a
// run is driven by one replica, whose launcher alone is called for it; when a replica leaves, the
// other picks its runs up from the store and finishes them, launching each task once. A run's task
// events go to the replica driving it (its partition's consumer), so it alone writes its tasks.
// New runs are placed so that the replicas drive as many each.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Membership, MemoryEventBus, partitionOf } from "@odin/events";
import { MemoryKeyValueStore, type KeyValueStore } from "@odin/run-store";
import { silentLogger } from "@odin/service-kit";
import { partitionKey } from "./placement.js";
import { Scheduler } from "./scheduler.js";
import { SchedulerStore } from "./store.js";
import { checkouts, ScriptedLauncher, until, YamlPipelines } from "./testing/fixtures.js";

const twoSteps = `name: p
tasks:
- {name: first, image: i, command: c}
- {name: second, image: i, command: c, depends: first}
`;

test("two replicas split the runs; when one leaves, the other finishes its runs", async () => {
  const kv = new MemoryKeyValueStore();
  const bus = new MemoryEventBus();
  const pipelines = new YamlPipelines({ p: twoSteps });
  const launchers = [new ScriptedLauncher(bus), new ScriptedLauncher(bus)];
  for (const l of launchers) l.scripts = { first: { runMs: 300 } };
  const shares = [
    await Membership.join(bus, { group: "runs", heartbeatMs: 50 }),
    await Membership.join(bus, { group: "runs", heartbeatMs: 50 }),
  ];
  await until(() => shares.every((m) => m.members().length === 2), "both replicas see each other");
  const store = new SchedulerStore(kv);
  /** Which replica wrote each task key (create or compare-and-set). */
  const writers = new Map<string, Set<number>>();
  const writingAs = (replica: number): KeyValueStore =>
    new Proxy(kv, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== "function") return value;
        const fn = value as (...a: unknown[]) => unknown;
        if (prop !== "create" && prop !== "update") return fn.bind(target);
        return (key: string, ...rest: unknown[]) => {
          if (key.startsWith("tasks."))
            writers.set(key, (writers.get(key) ?? new Set()).add(replica));
          return fn.apply(target, [key, ...rest]);
        };
      },
    });
  const replicas = launchers.map(
    (launcher, i) =>
      new Scheduler({
        store: new SchedulerStore(writingAs(i)),
        bus,
        pipelines,
        checkouts,
        launcher,
        dataPath: "/data/odin",
        logger: silentLogger,
        share: shares[i]!,
      }),
  );
  for (const r of replicas) await r.start();
  try {
    const runs: string[] = [];
    for (let i = 0; i < 16; i++)
      runs.push((await replicas[i % 2]!.submit({ pipeline: "p", submittedBy: "t" })).id);
    const owner = (run: string) => (shares[0]!.owns(partitionKey(partitionOf(run))) ? 0 : 1);
    // New runs are placed where the work is least: the replicas drive half of them each (a hash
    // of random ids alone splits 16 runs worse than 9 to 7 nearly half the time).
    const driven = [0, 1].map((i) => runs.filter((r) => owner(r) === i).length);
    assert.ok(Math.abs(driven[0]! - driven[1]!) <= 2, `runs driven: ${driven.join(" and ")}`);
    // Every first task is running, launched through its run's replica alone.
    await until(async () => {
      for (const run of runs)
        if ((await store.getTask(run, "first"))?.state !== "RUNNING") return false;
      return true;
    }, "every first task running");
    for (const run of runs) {
      const by = launchers.map((l) => l.launches.filter((x) => x.runId === run).length);
      assert.deepEqual(
        by,
        owner(run) === 0 ? [1, 0] : [0, 1],
        `${run}: launched through its replica`,
      );
      // LAUNCHING recorded by the driving replica, RUNNING from the launcher's event: by it too.
      assert.deepEqual([...(writers.get(`tasks.${run}.first`) ?? [])], [owner(run)], run);
    }

    // The second replica stops (saying so first, as the app does): the first finishes its runs.
    await shares[1]!.close();
    await replicas[1]!.close();
    await until(async () => {
      for (const run of runs) if ((await store.getRun(run))?.state !== "SUCCEEDED") return false;
      return true;
    }, "every run SUCCEEDED");
    for (const run of runs) {
      const launched = launchers.flatMap((l) =>
        l.launches.filter((x) => x.runId === run).map((x) => `${x.task.name}#${x.attempt}`),
      );
      assert.deepEqual(launched.sort(), ["first#1", "second#1"], `${run}: each task launched once`);
      const second = launchers[0]!.launches.some(
        (x) => x.runId === run && x.task.name === "second",
      );
      assert.ok(second, `${run}: its second task launched by the replica left`);
    }
  } finally {
    for (const s of shares) await s.close();
    for (const r of replicas) await r.close();
    await bus.close();
  }
});
