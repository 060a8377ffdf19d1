// Cron schedules: exactly one run per tick across replicas sharing a real NATS (also when a
// replica dies mid-tick), and the catch-up and concurrency policies. Every test drives its own
// clock: a tick is "now" when the test says so, never when the wall clock does.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryEventBus, subjects } from "@odin/events";
import type { ScheduleSpec } from "@odin/pipeline-spec";
import { events } from "@odin/proto";
import { MemoryKeyValueStore, NatsKeyValueStore, type KeyValueStore } from "@odin/run-store";
import { createLogger, silentLogger } from "@odin/service-kit";
import { startNats } from "@odin/testing";
import type { RunRecord } from "./records.js";
import { Scheduler } from "./scheduler.js";
import { ScheduleRunner, ticksKey, type RunStarter, type TickRecord } from "./schedules.js";
import { SchedulerStore } from "./store.js";
import { checkouts, ScriptedLauncher, until, YamlPipelines } from "./testing/fixtures.js";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const pipelineTexts = {
  quick: `name: quick
parameters:
  lr: {type: number, default: 0.1}
tasks:
- {name: a, image: i, command: c, args: ["--lr=\${{ params.lr }}"]}
`,
  slow: `name: slow
tasks:
- {name: a, image: i, command: c}
`,
  broken: `name: broken
tasks:
- {name: a, image: i, command: c, depends: nope}
`,
};

/** A test clock: whole seconds plus half, so ticks never coincide with "now". */
class Clock {
  t = Date.parse("2026-01-01T00:00:00.500Z");
  readonly now = (): number => this.t;
}

/** One scheduler replica: its own store connection, a runner, the scheduler it submits to. */
interface Replica {
  kv: KeyValueStore;
  scheduler: Scheduler;
  runner: ScheduleRunner;
  claims: number;
  close(): Promise<void>;
}

async function replica(
  kv: KeyValueStore,
  clock: Clock,
  bus: MemoryEventBus,
  launcher: ScriptedLauncher,
  extra: {
    takeoverMs?: number;
    afterClaim?: (tick: number) => Promise<void>;
    wrapRuns?: (runs: RunStarter) => RunStarter;
  } = {},
): Promise<Replica> {
  const source = new YamlPipelines(pipelineTexts);
  const scheduler = new Scheduler({
    store: new SchedulerStore(kv),
    bus,
    pipelines: source,
    checkouts,
    launcher,
    dataPath: "/data/odin",
    logger: silentLogger,
  });
  await scheduler.start();
  const r: Replica = {
    kv,
    scheduler,
    claims: 0,
    runner: undefined as unknown as ScheduleRunner,
    close: async () => {
      await r.runner.close();
      await scheduler.close();
    },
  };
  r.runner = new ScheduleRunner({
    kv,
    runs: extra.wrapRuns ? extra.wrapRuns(scheduler) : scheduler,
    pipelines: source,
    logger: warnings,
    now: clock.now,
    timers: false,
    takeoverMs: extra.takeoverMs ?? 500,
    afterClaim: async (_name, claim) => {
      r.claims++;
      await extra.afterClaim?.(claim.tick);
    },
  });
  await r.runner.start();
  cleanups.push(() => r.close());
  return r;
}

/** What the runners warn about (a tick not decided …), shown when a test fails. */
const warned: string[] = [];
const warnings = createLogger({
  service: "test",
  level: "warn",
  write: (line) => void warned.push(line),
});

/**
 * The runs a schedule started. A NATS KV listing may miss a key rewritten while it lists (one value
 * per key), so runs are gathered from listings until three in a row find no run the others missed.
 * `settle: false` for the in-memory store, whose listing is a snapshot.
 */
async function runsOf(kv: KeyValueStore, schedule: string, settle = true): Promise<RunRecord[]> {
  const byId = new Map<string, RunRecord>();
  const list = async (): Promise<void> => {
    for (const { record } of await new SchedulerStore(kv).listRuns())
      if (record.submittedBy === `schedule:${schedule}`) byId.set(record.id, record);
  };
  await list();
  for (let unchanged = 0; settle && unchanged < 3;) {
    await new Promise((r) => setTimeout(r, 100));
    const before = byId.size;
    await list();
    unchanged = byId.size === before ? unchanged + 1 : 0;
  }
  return [...byId.values()].sort((a, b) => a.createTime - b.createTime);
}

async function ticks(kv: KeyValueStore, schedule: string): Promise<TickRecord> {
  const entry = await kv.get(ticksKey(schedule));
  return JSON.parse(new TextDecoder().decode(entry!.value)) as TickRecord;
}

async function natsWorld() {
  const nats = await startNats({ runtime: "binary" });
  cleanups.push(() => nats.stop());
  const connect = async () => {
    // A generous time limit: a busy machine must not turn into a tick not decided.
    const kv = await NatsKeyValueStore.connect({ servers: nats.url, timeoutMs: 10_000 });
    cleanups.push(() => kv.close());
    return kv;
  };
  const bus = new MemoryEventBus();
  cleanups.push(() => bus.close());
  return { connect, bus, launcher: new ScriptedLauncher(bus) };
}

/** Ten ticks, each evaluated by every replica at once. */
async function tenTicks(clock: Clock, replicas: Replica[]): Promise<void> {
  for (let i = 0; i < 10; i++) {
    clock.t += 1000;
    await Promise.all(replicas.map((r) => r.runner.evaluateAll()));
  }
}

describe("schedules across replicas (real NATS)", () => {
  test("two replicas, a schedule every second for ten seconds: ten runs, not twenty", async (t) => {
    const { connect, bus, launcher } = await natsWorld();
    const clock = new Clock();
    const a = await replica(await connect(), clock, bus, launcher);
    const b = await replica(await connect(), clock, bus, launcher);
    await a.runner.create({
      name: "every-second",
      pipeline: "quick",
      cron: "* * * * * *",
      parameters: { lr: "0.5" },
      createdBy: "alice",
    });
    await until(() => b.runner.knows("every-second"), "replica b to see the schedule");
    const start = clock.t;
    await tenTicks(clock, [a, b]);

    const runs = await runsOf(a.kv, "every-second");
    t.diagnostic(
      `runs: ${runs.length}; claims won: a ${a.claims}, b ${b.claims}; distinct run ids: ${new Set(runs.map((r) => r.id)).size}`,
    );
    assert.equal(runs.length, 10, warned.join("\n"));
    assert.equal(a.claims + b.claims, 10);
    const state = await ticks(a.kv, "every-second");
    assert.equal(state.lastTick, start - 500 + 10_000);
    assert.equal(state.skipped, 0);
    assert.equal(state.claim, undefined);
    assert.equal(state.lastRunId, runs.at(-1)?.id);
    for (const run of runs) {
      assert.equal(run.pipeline, "quick");
      assert.deepEqual(run.parameters, { lr: 0.5 });
      assert.equal(run.labels.schedule, "every-second");
    }
  });

  test("a replica dies after claiming a tick, before submitting: the other starts that run, once", async (t) => {
    const { connect, bus, launcher } = await natsWorld();
    const clock = new Clock();
    const killedTick = Date.parse("2026-01-01T00:00:04.000Z");
    const kvA = await connect();
    const a = await replica(kvA, clock, bus, launcher, {
      afterClaim: async (tick) => {
        if (tick !== killedTick) return;
        // The process dies here: its connection goes, nothing more of it reaches the store.
        await kvA.close();
        throw new Error("killed");
      },
    });
    const b = await replica(await connect(), clock, bus, launcher);
    await a.runner.create({ name: "s", pipeline: "quick", cron: "* * * * * *", createdBy: "x" });
    await until(() => b.runner.knows("s"), "replica b to see the schedule");
    // a claims every tick first (b looks after it has), so a holds the tick it dies in.
    for (let i = 0; i < 10; i++) {
      clock.t += 1000;
      if (clock.t - 500 <= killedTick) await a.runner.evaluateAll();
      await b.runner.evaluateAll();
      if (clock.t - 500 === killedTick) {
        const left = await ticks(b.kv, "s");
        assert.equal(left.claim?.tick, killedTick, "a's claim is left in the store");
        await a.close();
      }
    }
    const runs = await runsOf(b.kv, "s");
    t.diagnostic(
      `runs: ${runs.length}; claims: a ${a.claims} (the last one killed), b ${b.claims}`,
    );
    assert.equal(runs.length, 10, warned.join("\n"));
    assert.equal(new Set(runs.map((r) => r.id)).size, 10);
    assert.equal((await ticks(b.kv, "s")).claim, undefined);
  });

  test("the ticks a dead replica's claim held up run after the takeover, one run each", async (t) => {
    const { connect, bus, launcher } = await natsWorld();
    const clock = new Clock();
    const killedTick = Date.parse("2026-01-01T00:00:03.000Z");
    const kvA = await connect();
    const a = await replica(kvA, clock, bus, launcher, {
      afterClaim: async (tick) => {
        if (tick !== killedTick) return;
        await kvA.close();
        throw new Error("killed");
      },
    });
    // b leaves a's claim to it for 3.5 s: the ticks of 00:04, 00:05 and 00:06 fall due meanwhile.
    const b = await replica(await connect(), clock, bus, launcher, { takeoverMs: 3500 });
    await a.runner.create({ name: "s", pipeline: "quick", cron: "* * * * * *", createdBy: "x" });
    await until(() => b.runner.knows("s"), "replica b to see the schedule");
    for (let i = 0; i < 10; i++) {
      clock.t += 1000;
      if (clock.t - 500 <= killedTick) await a.runner.evaluateAll();
      // A timer would look again at once while ticks are due; the test looks as often.
      for (let look = 0; look < 5; look++) await b.runner.evaluateAll();
      if (clock.t - 500 === killedTick) await a.close();
    }
    const runs = await runsOf(b.kv, "s");
    t.diagnostic(`runs: ${runs.length}; claims: a ${a.claims}, b ${b.claims}`);
    assert.equal(runs.length, 10, warned.join("\n"));
    assert.equal(new Set(runs.map((r) => r.id)).size, 10);
    const state = await ticks(b.kv, "s");
    assert.equal(state.claim, undefined);
    assert.equal(state.lastTick, Date.parse("2026-01-01T00:00:10.000Z"));
    assert.equal(state.skipped, 0);
  });

  test("a replica dies after submitting, before recording it: the run is not started twice", async (t) => {
    const { connect, bus, launcher } = await natsWorld();
    const clock = new Clock();
    const killedTick = Date.parse("2026-01-01T00:00:06.000Z");
    const kvA = await connect();
    let dying = false;
    const a = await replica(kvA, clock, bus, launcher, {
      afterClaim: (tick) => {
        dying = tick === killedTick;
        return Promise.resolve();
      },
      wrapRuns: (runs) => ({
        getRun: (id) => runs.getRun(id),
        cancel: (id, reason) => runs.cancel(id, reason),
        submit: async (input) => {
          const run = await runs.submit(input);
          if (dying) {
            await kvA.close();
            throw new Error("killed");
          }
          return run;
        },
      }),
    });
    const b = await replica(await connect(), clock, bus, launcher);
    await a.runner.create({ name: "s", pipeline: "quick", cron: "* * * * * *", createdBy: "x" });
    await until(() => b.runner.knows("s"), "replica b to see the schedule");
    let aAlive = true;
    for (let i = 0; i < 10; i++) {
      clock.t += 1000;
      if (aAlive) await a.runner.evaluateAll();
      await b.runner.evaluateAll();
      if (dying && aAlive) {
        await a.close();
        aAlive = false;
      }
    }
    const runs = await runsOf(b.kv, "s");
    t.diagnostic(`runs: ${runs.length}; a claimed ${a.claims}, b ${b.claims}`);
    assert.equal(runs.length, 10, warned.join("\n"));
    assert.equal(new Set(runs.map((r) => r.id)).size, 10);
  });
});

describe("schedule policies", () => {
  async function memoryWorld() {
    const kv = new MemoryKeyValueStore();
    const bus = new MemoryEventBus();
    cleanups.push(() => bus.close());
    const launcher = new ScriptedLauncher(bus);
    const clock = new Clock();
    const r = await replica(kv, clock, bus, launcher);
    return { kv, clock, launcher, r };
  }
  const minute = 60_000;

  test("catchup skip: ticks missed during downtime are not run; the next tick is", async () => {
    const { kv, clock, r } = await memoryWorld();
    await r.runner.create({ name: "m", pipeline: "quick", cron: "0 * * * *", createdBy: "x" });
    clock.t += 3.5 * 60 * minute; // down from 00:00 to 03:30: the 01:00, 02:00 and 03:00 ticks missed
    await r.runner.evaluateAll();
    assert.equal((await runsOf(kv, "m", false)).length, 0);
    assert.equal((await ticks(kv, "m")).skipped, 1);
    assert.match((await ticks(kv, "m")).lastError ?? "", /03:00:00.000Z was missed.*catchup: skip/);
    clock.t += 30 * minute;
    await r.runner.evaluateAll();
    assert.equal((await runsOf(kv, "m", false)).length, 1);
  });

  test("catchup once: the ticks missed during downtime start one run", async () => {
    const { kv, clock, r } = await memoryWorld();
    await r.runner.create({
      name: "m",
      pipeline: "quick",
      cron: "0 * * * *",
      catchup: "once",
      createdBy: "x",
    });
    clock.t += 3.5 * 60 * minute;
    await r.runner.evaluateAll();
    await r.runner.evaluateAll();
    assert.equal((await runsOf(kv, "m", false)).length, 1);
  });

  test("concurrency forbid skips ticks while the last run is active; allow starts them", async () => {
    const { kv, clock, launcher, r } = await memoryWorld();
    launcher.scripts = { a: { hang: true } };
    await r.runner.create({
      name: "f",
      pipeline: "slow",
      cron: "* * * * * *",
      concurrency: "forbid",
      createdBy: "x",
    });
    await r.runner.create({ name: "a", pipeline: "slow", cron: "* * * * * *", createdBy: "x" });
    for (let i = 0; i < 3; i++) {
      clock.t += 1000;
      await r.runner.evaluateAll();
    }
    assert.equal((await runsOf(kv, "f", false)).length, 1);
    assert.equal((await ticks(kv, "f")).skipped, 2);
    assert.equal((await runsOf(kv, "a", false)).length, 3);
  });

  test("concurrency replace cancels the active run, then starts the tick's", async () => {
    const { kv, clock, launcher, r } = await memoryWorld();
    launcher.scripts = { a: { hang: true } };
    await r.runner.create({
      name: "r",
      pipeline: "slow",
      cron: "* * * * * *",
      concurrency: "replace",
      createdBy: "x",
    });
    clock.t += 1000;
    await r.runner.evaluateAll();
    const [first] = await runsOf(kv, "r", false);
    await until(() => launcher.launches.some((l) => l.runId === first!.id), "the first launch");
    clock.t += 1000;
    await r.runner.evaluateAll();
    const runs = await runsOf(kv, "r", false);
    assert.equal(runs.length, 2);
    await until(
      async () => (await r.scheduler.getRun(first!.id)).state === "CANCELLED",
      "the replaced run to be cancelled",
    );
  });

  test("declared schedules follow the pipelines: added, changed, kept while invalid, removed", async () => {
    const kv = new MemoryKeyValueStore();
    const bus = new MemoryEventBus();
    cleanups.push(() => bus.close());
    const clock = new Clock();
    const spec: ScheduleSpec = {
      name: "nightly",
      cron: "0 2 * * *",
      timezone: "Europe/Berlin",
      parameters: { lr: 0.5 },
      catchup: "skip",
      concurrency: "forbid",
    };
    let pipelines = [
      { pipeline: "team/quick", pipelineName: "quick", valid: true, schedules: [spec] },
    ];
    const runner = new ScheduleRunner({
      kv,
      runs: undefined as unknown as RunStarter,
      pipelines: new YamlPipelines(pipelineTexts),
      declared: { declaredSchedules: () => Promise.resolve(pipelines) },
      logger: silentLogger,
      now: clock.now,
      timers: false,
    });
    await runner.start();
    cleanups.push(() => runner.close());
    const names = async () =>
      (await runner.list()).map((v) => `${v.schedule.name} ${v.schedule.cron}`);
    assert.deepEqual(await names(), ["team/quick:nightly 0 2 * * *"]);
    const [view] = await runner.list();
    assert.equal(view?.schedule.source, "pipeline");
    assert.equal(view?.schedule.pipelineName, "quick");
    await assert.rejects(runner.remove("team/quick:nightly"), /declared in team\/quick\/main.yml/);
    await runner.setPaused("team/quick:nightly", true);
    pipelines = [{ ...pipelines[0]!, schedules: [{ ...spec, cron: "0 3 * * *" }] }];
    await runner.syncDeclared();
    assert.deepEqual(await names(), ["team/quick:nightly 0 3 * * *"]);
    assert.equal((await runner.list())[0]?.schedule.paused, true, "a pause outlives a change");
    // Its notify targets are part of it: a change is applied (each webhook once).
    pipelines = [
      {
        ...pipelines[0]!,
        schedules: [
          {
            ...spec,
            cron: "0 3 * * *",
            notify: [
              { webhookSecret: "team", on: ["FAILED"] },
              { webhookSecret: "team", on: ["CANCELLED"] },
            ],
          },
        ],
      },
    ];
    await runner.syncDeclared();
    assert.deepEqual((await runner.list())[0]?.schedule.notify, [
      { webhookSecret: "team", on: ["FAILED", "CANCELLED"] },
    ]);
    pipelines = [{ ...pipelines[0]!, valid: false, schedules: [] }];
    await runner.syncDeclared();
    assert.deepEqual(await names(), ["team/quick:nightly 0 3 * * *"]);
    pipelines = [];
    await runner.syncDeclared();
    assert.deepEqual(await names(), []);
  });

  test("a repo.synced event reads the declared schedules at once, at the synced commit", async () => {
    const kv = new MemoryKeyValueStore();
    const bus = new MemoryEventBus();
    cleanups.push(() => bus.close());
    const asked: (string | undefined)[] = [];
    const byCommit: Record<string, string> = { c1: "0 2 * * *", c2: "0 4 * * *" };
    const runner = new ScheduleRunner({
      kv,
      runs: undefined as unknown as RunStarter,
      pipelines: new YamlPipelines(pipelineTexts),
      declared: {
        declaredSchedules: (commit) => {
          asked.push(commit);
          const cron = byCommit[commit ?? "c1"]!;
          return Promise.resolve([
            {
              pipeline: "team/quick",
              pipelineName: "quick",
              valid: true,
              schedules: [
                {
                  name: "nightly",
                  cron,
                  timezone: "UTC",
                  parameters: {},
                  catchup: "skip",
                  concurrency: "allow",
                },
              ],
            },
          ]);
        },
      },
      bus,
      logger: silentLogger,
      now: new Clock().now,
      timers: false,
    });
    await runner.start();
    cleanups.push(() => runner.close());
    const cron = async () => (await runner.list())[0]?.schedule.cron;
    assert.equal(await cron(), "0 2 * * *");
    await bus.publish(
      subjects.repoSynced,
      events.RepoSynced.encode(events.RepoSynced.fromPartial({ commit: "c2" })).finish(),
    );
    await until(async () => (await cron()) === "0 4 * * *", "the schedule of the synced commit");
    assert.deepEqual(asked, [undefined, "c2"]);
  });

  test("paused ticks are not run, resuming counts from then; bad schedules are refused with what is wrong", async () => {
    const { kv, clock, r } = await memoryWorld();
    await r.runner.create({ name: "p", pipeline: "quick", cron: "* * * * * *", createdBy: "x" });
    await r.runner.setPaused("p", true);
    clock.t += 5000;
    await r.runner.evaluateAll();
    await r.runner.setPaused("p", false);
    await r.runner.evaluateAll();
    assert.equal((await runsOf(kv, "p", false)).length, 0);
    clock.t += 1000;
    await r.runner.evaluateAll();
    assert.equal((await runsOf(kv, "p", false)).length, 1);
    await assert.rejects(
      r.runner.create({ name: "p", pipeline: "quick", cron: "* * * * *", createdBy: "x" }),
      /schedule p exists/,
    );
    await assert.rejects(
      r.runner.create({ name: "b", pipeline: "broken", cron: "* * * * *", createdBy: "x" }),
      /pipeline broken cannot run/,
    );
    await assert.rejects(
      r.runner.create({ name: "z", pipeline: "quick", cron: "* * * *", createdBy: "x" }),
      /has 4 fields/,
    );
    await assert.rejects(
      r.runner.create({
        name: "z",
        pipeline: "quick",
        cron: "* * * * *",
        parameters: { lr: "fast" },
        createdBy: "x",
      }),
      /parameter lr is a number/,
    );
    await r.runner.remove("p");
    assert.deepEqual(await r.runner.list(), []);
  });
});
