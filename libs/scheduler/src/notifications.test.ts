// A run's end posted to its pipeline's webhooks: two scheduler replicas on one real JetStream KV
// bucket (a real nats-server), a real HTTP receiver on loopback. Waits between attempts are
// counted, never slept; nothing asserts how long anything took.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryEventBus } from "@odin/events";
import { FileWebhookSecrets, WebhookNotifier, type RunEndBody } from "@odin/notify";
import { MemoryKeyValueStore, NatsKeyValueStore, type KeyValueStore } from "@odin/run-store";
import { createLogger, silentLogger } from "@odin/service-kit";
import { startNats, type NatsServer } from "@odin/testing";
import type { RunRecord } from "./records.js";
import { Scheduler } from "./scheduler.js";
import { ScheduleRunner } from "./schedules.js";
import { SchedulerStore } from "./store.js";
import { checkouts, ScriptedLauncher, until, YamlPipelines } from "./testing/fixtures.js";

/** Receives webhook posts; answers each with the next of `answers` (then 200). */
class Receiver {
  readonly posts: { path: string; body: RunEndBody }[] = [];
  answers: number[] = [];
  always: number | undefined;
  private server: Server | undefined;
  base = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.posts.push({
          path: req.url ?? "",
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as RunEndBody,
        });
        res.statusCode = this.always ?? this.answers.shift() ?? 200;
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server?.close(() => resolve()));
  }
}

const pipelines = {
  ml: `name: ml
parameters:
  lr: {type: number, default: 0.001}
notify:
- webhook: {secret: team}
- webhook: {secret: broken}
  on: [failed]
- webhook: {secret: missing}
  on: [cancelled]
tasks:
- {name: prep, image: i, command: c}
- {name: train, image: i, command: c, depends: prep}
- {name: eval, image: i, command: c, depends: train}
`,
  fine: `name: fine
notify: {webhook: {secret: team}}
tasks:
- {name: x, image: i, command: c}
`,
  quiet: `name: quiet
notify: {webhook: team, on: [failed]}
tasks:
- {name: a, image: i, command: c}
`,
};

describe("notifications", () => {
  const receiver = new Receiver();
  let nats: NatsServer;
  const lines: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let replicas: Scheduler[] = [];
  let stores: SchedulerStore[] = [];
  let kvs: KeyValueStore[] = [];
  let launcher: ScriptedLauncher;
  /** Waits each replica's notifier asked for, by replica. */
  const waits: number[][] = [[], []];

  before(async () => {
    await receiver.start();
    nats = await startNats({ runtime: "binary" });
    cleanups.push(() => nats.stop());
    const dir = await mkdtemp(join(tmpdir(), "odin-notify-"));
    const file = join(dir, "webhooks.yml");
    await writeFile(
      file,
      `team: ${receiver.base}/services/T0/B0/TEAMSECRET\nbroken: ${receiver.base}/broken/BROKENSECRET\noncall: ${receiver.base}/oncall/ONCALLSECRET\n`,
    );
    const bus = new MemoryEventBus();
    cleanups.push(() => bus.close());
    launcher = new ScriptedLauncher(bus);
    const source = new YamlPipelines(pipelines);
    for (const i of [0, 1]) {
      const logger = createLogger({
        service: `dag-scheduler-${i}`,
        write: (l) => void lines.push(l),
      });
      // Each replica has its own connection, as separate processes would.
      const kv = await NatsKeyValueStore.connect({ servers: nats.url, log: logger });
      cleanups.push(() => kv.close());
      const store = new SchedulerStore(kv);
      const scheduler = new Scheduler({
        store,
        bus,
        pipelines: source,
        checkouts,
        launcher,
        dataPath: "/data/odin",
        logger,
        notifier: new WebhookNotifier({
          secrets: new FileWebhookSecrets(file),
          log: logger,
          delivery: {
            attempts: 4,
            backoffMs: 1000,
            sleep: (ms) => Promise.resolve(void waits[i]!.push(ms)),
          },
        }),
        publicUrl: "https://odin.example.com/",
      });
      await scheduler.start();
      cleanups.push(() => scheduler.close());
      replicas.push(scheduler);
      stores.push(store);
      kvs.push(kv);
    }
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await receiver.stop();
    replicas = [];
    stores = [];
    kvs = [];
  });

  /** The run once it ended and no notification of it is pending. */
  async function settled(runId: string): Promise<RunRecord> {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const run = await stores[0]!.getRun(runId);
      if (
        run &&
        ["SUCCEEDED", "FAILED", "CANCELLED"].includes(run.state) &&
        !(run.notifications ?? []).some((n) => n.state === "pending")
      )
        return run;
      if (Date.now() > deadline) assert.fail(`run ${runId}: ${JSON.stringify(run)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  test("each run's end is posted once, though both replicas run it; failed deliveries are retried, then recorded", async () => {
    // Runs of ml fail (train exits 3): posted to team and broken; runs of fine succeed: to team.
    launcher.scripts = { train: { exitCode: 3 } };
    const runs: RunRecord[] = [];
    for (let i = 0; i < 6; i++)
      runs.push(
        await replicas[i % 2]!.submit({
          pipeline: i < 3 ? "ml" : "fine",
          submittedBy: "alice",
          parameters: i === 0 ? { lr: "0.1" } : {},
        }),
      );
    const ended = await Promise.all(runs.map((r) => settled(r.id)));
    const teamPosts = receiver.posts.filter((p) => p.path.includes("TEAMSECRET"));
    assert.deepEqual(
      teamPosts.map((p) => p.body.run.id).sort(),
      runs.map((r) => r.id).sort(),
      "one post per run end to team, whichever replica recorded it",
    );
    for (const run of ended) {
      const body = teamPosts.find((p) => p.body.run.id === run.id)!.body;
      assert.equal(body.run.state, run.state.toLowerCase());
      assert.equal(body.url, `https://odin.example.com/runs/${run.id}`);
      assert.equal(body.run.submittedBy, "alice");
      assert.deepEqual(body.run.parameters, run.parameters ?? {});
      assert.equal(body.run.endTime, new Date(run.endTime!).toISOString());
      assert.match(body.text, new RegExp(`<https://odin.example.com/runs/${run.id}\\|${run.id}>`));
      if (run.state === "FAILED") {
        assert.deepEqual(
          body.failedTasks.map((t) => [t.name, t.state, t.exitCode]),
          [["train", "failed", 3]],
        );
        assert.match(body.text, /1 of 3 tasks failed: `train`/);
        assert.match(body.text, /parameters: lr=/);
      } else assert.deepEqual(body.failedTasks, []);
      // What `odin status` shows: team delivered at once; broken only for failed runs.
      const status = Object.fromEntries(
        (run.notifications ?? []).map((n) => [n.webhookSecret, [n.state, n.attempts]]),
      );
      assert.deepEqual(status.team, ["delivered", 1]);
      assert.equal(status.missing, undefined, "missing is only for cancelled runs");
    }
    assert.ok(ended.some((r) => r.state === "SUCCEEDED"));
    assert.ok(ended.some((r) => r.state === "FAILED"));
  });

  test("a failing endpoint: retried with doubling waits, then recorded failed; the run ended as it would have", async () => {
    receiver.posts.length = 0;
    waits[0]!.length = 0;
    waits[1]!.length = 0;
    receiver.always = 500;
    launcher.scripts = { train: { exitCode: 1 } };
    const run = await replicas[0]!.submit({ pipeline: "ml", submittedBy: "bob" });
    const ended = await settled(run.id);
    launcher.scripts = {};
    receiver.always = undefined;
    assert.equal(ended.state, "FAILED");
    assert.equal(ended.reason, "failed: train");
    const status = Object.fromEntries((ended.notifications ?? []).map((n) => [n.webhookSecret, n]));
    assert.equal(status.team!.state, "failed");
    assert.equal(status.team!.attempts, 4);
    assert.equal(status.team!.error, "HTTP 500 Internal Server Error");
    assert.equal(status.broken!.state, "failed");
    assert.equal(receiver.posts.length, 8, "4 attempts to each of two webhooks");
    // One replica delivered (its notifier waited 1, 2, 4 s per webhook); the other posted nothing.
    const used = waits.filter((w) => w.length > 0);
    assert.equal(used.length, 1);
    assert.deepEqual(used[0]!.sort(), [1000, 1000, 2000, 2000, 4000, 4000]);
    const logged = lines.join("\n");
    assert.match(logged, /webhook not delivered; giving up/);
    assert.match(logged, /"webhook":"team"/);
    for (const secret of ["TEAMSECRET", "BROKENSECRET", receiver.base])
      assert.ok(!logged.includes(secret), `the log holds ${secret}`);
  });

  test("an unknown secret name fails that notification with a clear error; a state not asked for posts nothing", async () => {
    receiver.posts.length = 0;
    launcher.scripts = { prep: { hang: true } };
    const run = await replicas[1]!.submit({ pipeline: "ml", submittedBy: "carol" });
    const quiet = await replicas[0]!.submit({ pipeline: "quiet", submittedBy: "carol" });
    for (;;) {
      const r = await stores[0]!.getRun(run.id);
      if (r?.state === "RUNNING") break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await replicas[0]!.cancel(run.id, "stop");
    launcher.scripts = {};
    const ended = await settled(run.id);
    assert.equal(ended.state, "CANCELLED");
    const status = Object.fromEntries((ended.notifications ?? []).map((n) => [n.webhookSecret, n]));
    assert.equal(status.team!.state, "delivered");
    assert.equal(status.missing!.state, "failed");
    assert.equal(status.missing!.attempts, 0);
    assert.match(
      status.missing!.error!,
      /^no webhook secret named missing in the webhooks file .*webhooks\.yml; add it there/,
    );
    assert.equal((await settled(quiet.id)).notifications, undefined, "quiet posts only failures");
    assert.deepEqual(
      receiver.posts.map((p) => [p.body.run.id, p.body.run.state]),
      [[run.id, "cancelled"]],
    );
  });

  test("a schedule's runs post to its own webhooks and the pipeline's, a webhook named by both once", async () => {
    receiver.posts.length = 0;
    launcher.scripts = {};
    // A test clock: ticks happen when the test says so; both replicas follow the schedule.
    let now = Date.parse("2026-01-01T00:00:00.500Z");
    const runners = kvs.map(
      (kv, i) =>
        new ScheduleRunner({
          kv,
          runs: replicas[i]!,
          pipelines: new YamlPipelines(pipelines),
          logger: silentLogger,
          now: () => now,
          timers: false,
        }),
    );
    for (const r of runners) await r.start();
    try {
      // fine's pipeline posts every end to team; the schedule adds team (failures only: merged
      // with the pipeline's, still one post) and oncall.
      await runners[0]!.create({
        name: "notifying",
        pipeline: "fine",
        cron: "* * * * * *",
        notify: [
          { webhookSecret: "team", on: ["failed"] },
          { webhookSecret: "oncall", on: [] },
        ],
        createdBy: "alice",
      });
      await until(() => runners[1]!.knows("notifying"), "replica 1 to see the schedule");
      const [view] = await runners[1]!.list();
      assert.deepEqual(view?.schedule.notify, [
        { webhookSecret: "team", on: ["FAILED"] },
        { webhookSecret: "oncall", on: ["SUCCEEDED", "FAILED", "CANCELLED"] },
      ]);
      await assert.rejects(
        runners[0]!.create({
          name: "bad",
          pipeline: "fine",
          cron: "* * * * *",
          notify: [{ webhookSecret: "https://hooks.slack.com/services/T0/B0/XSECRET", on: [] }],
          createdBy: "alice",
        }),
        (err: Error) =>
          /notify\[0\]: .*must name a secret, not hold a URL/.test(err.message) &&
          !err.message.includes("XSECRET"),
      );
      await assert.rejects(
        runners[0]!.create({
          name: "bad",
          pipeline: "fine",
          cron: "* * * * *",
          notify: [{ webhookSecret: "oncall", on: ["done"] }],
          createdBy: "alice",
        }),
        /notify\[0\]: webhook oncall: "done" is not a state a run ends in/,
      );
      for (let tick = 0; tick < 3; tick++) {
        now += 1000;
        await Promise.all(runners.map((r) => r.evaluateAll()));
      }
      // A NATS KV listing may miss a key rewritten while it lists: gather runs until all three show.
      const byId = new Map<string, RunRecord>();
      await until(async () => {
        for (const { record } of await stores[0]!.listRuns())
          if (record.submittedBy === "schedule:notifying") byId.set(record.id, record);
        return byId.size >= 3;
      }, "the schedule's three runs");
      const started = [...byId.values()];
      assert.equal(started.length, 3);
      for (const run of started) {
        const ended = await settled(run.id);
        assert.equal(ended.state, "SUCCEEDED");
        assert.deepEqual(
          ended.notifications?.map((n) => [n.webhookSecret, n.state]),
          [
            ["team", "delivered"],
            ["oncall", "delivered"],
          ],
        );
      }
      const posted = (secret: string) =>
        receiver.posts
          .filter((p) => p.path.includes(secret))
          .map((p) => p.body.run.id)
          .sort();
      const ids = started.map((r) => r.id).sort();
      assert.deepEqual(posted("TEAMSECRET"), ids, "one post per run end to team");
      assert.deepEqual(posted("ONCALLSECRET"), ids, "one post per run end to oncall");
    } finally {
      for (const r of runners) await r.close();
    }
  });

  test("a retried run posts its new end; the first end's statuses are gone from it", async () => {
    receiver.posts.length = 0;
    launcher.scripts = { eval: { exitCode: 1 } };
    const run = await replicas[0]!.submit({ pipeline: "ml", submittedBy: "dave" });
    const first = await settled(run.id);
    assert.equal(first.state, "FAILED");
    launcher.scripts = {};
    await replicas[1]!.retry(run.id);
    const second = await settled(run.id);
    assert.equal(second.state, "SUCCEEDED");
    assert.equal(second.attempt, 2);
    assert.deepEqual(
      second.notifications?.map((n) => [n.webhookSecret, n.state]),
      [["team", "delivered"]],
    );
    assert.deepEqual(
      receiver.posts
        .filter((p) => p.path.includes("TEAMSECRET"))
        .map((p) => [p.body.run.state, p.body.run.attempt]),
      [
        ["failed", 1],
        ["succeeded", 2],
      ],
    );
  });
});

test("notifications a stopped replica left pending are taken over by one other replica, once", async () => {
  const receiver = new Receiver();
  await receiver.start();
  const dir = await mkdtemp(join(tmpdir(), "odin-notify-"));
  const file = join(dir, "webhooks.yml");
  await writeFile(file, `team: ${receiver.base}/services/T0/B0/TEAMSECRET\n`);
  const kv = new MemoryKeyValueStore();
  const bus = new MemoryEventBus();
  const launcher = new ScriptedLauncher(bus);
  const source = new YamlPipelines(pipelines);
  const replica = async (
    secrets: ConstructorParameters<typeof WebhookNotifier>[0]["secrets"],
    now?: () => number,
  ) => {
    const s = new Scheduler({
      store: new SchedulerStore(kv),
      bus,
      pipelines: source,
      checkouts,
      launcher,
      dataPath: "/data/odin",
      logger: silentLogger,
      notifier: new WebhookNotifier({ secrets, log: silentLogger }),
      ...(now ? { now } : {}),
    });
    await s.start();
    return s;
  };
  // This replica records the end, then never gets to post (its secret lookup never answers).
  const stopping = await replica({ where: "nowhere", resolve: () => new Promise(() => undefined) });
  const run = await stopping.submit({ pipeline: "fine", submittedBy: "erin" });
  const store = new SchedulerStore(kv);
  for (;;) {
    const r = await store.getRun(run.id);
    if (r?.state === "SUCCEEDED") {
      assert.deepEqual(r.notifications, [{ webhookSecret: "team", state: "pending", attempts: 0 }]);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await stopping.close();
  // Two replicas start long after the end (their clocks say so): one of them takes it over.
  const later = () => Date.now() + 11 * 60_000;
  const secrets = new FileWebhookSecrets(file);
  const others = await Promise.all([replica(secrets, later), replica(secrets, later)]);
  try {
    let ended: RunRecord | undefined;
    for (;;) {
      ended = await store.getRun(run.id);
      if (ended?.notifications?.[0]?.state === "delivered") break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(ended.notifyClaim, 1);
    // Both replicas swept at start; give a second claim the time to show if there were one.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(receiver.posts.filter((p) => p.body.run.id === run.id).length, 1);
    assert.equal((await store.getRun(run.id))?.notifyClaim, 1);
  } finally {
    for (const s of others) await s.close();
    await bus.close();
    await receiver.stop();
  }
});
