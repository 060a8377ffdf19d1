// Schedules on real processes: two dag-scheduler processes follow a per-second schedule while one
// of them is SIGKILLed again and again — half of the kills a few milliseconds after a tick falls
// due, when a replica is claiming the tick or starting its run — and restarted. Counted from the
// run store, not timed: every revision of the schedule's tick record (a watch on the JetStream KV
// bucket the schedulers share) says which tick was claimed for which run id, and ListRuns says
// which runs exist. Each tick from the first to the last decided must have been claimed exactly
// once, and its run must exist exactly once; no run may exist that no claim named.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { dagscheduler, DagSchedulerServiceClient } from "@odin/proto";
import { NatsKeyValueStore } from "@odin/run-store";
import { createClient, unary } from "@odin/service-kit";
import { eventually, startStack, type ServiceProcess, type Stack } from "@odin/test-stack";

const seed = Number(process.env["ODIN_FAILURE_SEED"] ?? Date.now() % 100_000);
let randState = seed >>> 0;
/** Seeded PRNG (mulberry32): the kill points of a run can be replayed from the seed. */
function rand(): number {
  randState = (randState + 0x6d2b79f5) >>> 0;
  let t = randState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (lo: number, hi: number) => Math.floor(lo + rand() * (hi - lo));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const schedule = "every-second";
/** How many times a scheduler is killed. */
const kills = 10;

/** A tick record as the schedulers write it (`ticks.<name>`), the fields counted here. */
interface TickRecord {
  lastTick: number;
  claim?: { tick: number; runId: string };
}

describe("schedules: a scheduler SIGKILLed mid-tick, again and again", () => {
  let stack: Stack;
  let kv: NatsKeyValueStore;
  /** Every revision of the schedule's tick record, in order. */
  const revisions: TickRecord[] = [];

  before(async () => {
    console.log(`schedule kills: seed ${seed} (ODIN_FAILURE_SEED=${seed} replays it)`);
    stack = await startStack(
      {
        tick: {
          "main.yml": "name: tick\ntasks:\n- {name: a, image: 'work:1', command: run}\n",
        },
      },
      { replicas: 1, schedulers: 2, simOptions: { defaultRunMs: [20, 80] } },
    );
    kv = await NatsKeyValueStore.connect({ servers: stack.nats.url });
    await kv.watch(`ticks.${schedule}`, (change) => {
      if (change.op === "put")
        revisions.push(JSON.parse(new TextDecoder().decode(change.value)) as TickRecord);
    });
  });

  after(async () => {
    await kv?.close();
    await stack?.stop();
  });

  /** The scheduler API through the gateway, retrying while a replica is down. */
  function scheduler() {
    return createClient(DagSchedulerServiceClient, {
      address: stack.gateway.address,
      token: stack.tokens.operator,
      retries: 20,
      initialBackoffMs: 200,
      deadlineMs: 30_000,
    });
  }

  test("each tick is claimed once and starts one run; none is lost", async (t) => {
    const client = scheduler();
    try {
      await unary(
        client,
        "createSchedule",
        dagscheduler.CreateScheduleRequest.fromPartial({
          name: schedule,
          pipeline: "tick",
          cron: "* * * * * *",
          requestId: randomUUID(),
        }),
      );
      await eventually(
        () => Promise.resolve(revisions.some((r) => r.claim)),
        60_000,
        "the schedule's first claim",
      );
      const kill = async (s: ServiceProcess, what: string) => {
        await s.stop("SIGKILL");
        t.diagnostic(`killed ${what}`);
        await sleep(between(100, 800));
        await s.restart();
      };
      for (let i = 0; i < kills; i++) {
        const which = between(0, 2);
        if (i % 2 === 0) {
          // Mid-tick: just after the next whole second, while a tick is being claimed and run.
          const offset = between(0, 60);
          await sleep(1000 - (Date.now() % 1000) + offset);
          await kill(stack.schedulers[which]!, `scheduler ${which} ${offset} ms after a tick`);
        } else {
          await sleep(between(200, 2500));
          await kill(stack.schedulers[which]!, `scheduler ${which} at a random point`);
        }
      }
      await sleep(between(1000, 3000));
      await unary(client, "pauseSchedule", { name: schedule });
      // A claim a killed replica left is finished by the other one after its takeover wait.
      await eventually(
        () => Promise.resolve(revisions.length > 0 && !revisions.at(-1)!.claim),
        120_000,
        "no claim left on the schedule",
      );
    } finally {
      client.close();
    }

    // What the tick record says was decided, and for which run.
    const claimed = new Map<number, Set<string>>();
    for (const r of revisions)
      if (r.claim) {
        const ids = claimed.get(r.claim.tick) ?? new Set<string>();
        ids.add(r.claim.runId);
        claimed.set(r.claim.tick, ids);
      }
    const ticks = [...claimed.keys()].sort((a, b) => a - b);
    const first = ticks[0]!;
    const last = Math.max(...revisions.map((r) => r.lastTick));
    const lost: string[] = [];
    for (let tick = first; tick <= last; tick += 1000)
      if (!claimed.has(tick)) lost.push(new Date(tick).toISOString());
    const doubled = ticks.filter((tick) => claimed.get(tick)!.size > 1);

    // What the run store holds: every run the schedule started.
    const claimedIds = new Set([...claimed.values()].flatMap((ids) => [...ids]));
    let runIds: string[] = [];
    const reader = scheduler();
    try {
      await eventually(
        async () => {
          const { runs } = await unary(reader, "listRuns", {
            pipeline: "",
            states: [],
            labelSelector: `schedule=${schedule}`,
            pageSize: 10_000,
            pageToken: "",
          });
          runIds = runs.map((r) => r.id);
          return runIds.length >= claimedIds.size;
        },
        60_000,
        "every claimed run in ListRuns",
      );
    } finally {
      reader.close();
    }
    // Claims a killed replica left, which the other replica finished after its takeover wait.
    const takenOver = stack.schedulers
      .flatMap((s) => s.logs)
      .filter((l) => l.includes("finishing a schedule tick another replica claimed")).length;
    const unclaimed = runIds.filter((id) => !claimedIds.has(id));
    const missing = [...claimedIds].filter((id) => !runIds.includes(id));
    t.diagnostic(
      `seed ${seed}: ${kills} kills; ticks ${new Date(first).toISOString()} … ${new Date(last).toISOString()} (${(last - first) / 1000 + 1}); claimed ${ticks.length} (${takenOver} finished by the other replica); runs ${runIds.length}; lost ${lost.length}; claimed twice ${doubled.length}; runs no claim named ${unclaimed.length}; claimed runs missing ${missing.length}`,
    );
    assert.deepEqual(doubled, [], "no tick claimed for two runs");
    assert.deepEqual(unclaimed, [], "no run without a claim");
    assert.deepEqual(missing, [], "every claimed run exists");
    assert.equal(runIds.length, new Set(runIds).size);
    assert.equal(runIds.length, ticks.length, "one run per claimed tick");
    assert.deepEqual(lost, [], "every tick from the first to the last decided was claimed");
  });
});
