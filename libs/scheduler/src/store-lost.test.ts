// The scheduler when NATS comes back without its storage: the run store (a real JetStream KV bucket
// on a real nats-server) is made again empty, the runs in flight are gone for good, and the
// scheduler drops them — nothing more is recorded or launched for them — while new runs succeed.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryEventBus, subjects } from "@odin/events";
import { common, events } from "@odin/proto";
import { NatsKeyValueStore, StoreUnavailableError } from "@odin/run-store";
import { createLogger, NotFoundError } from "@odin/service-kit";
import { startNats } from "@odin/testing";
import { Scheduler, type RunChange } from "./scheduler.js";
import { SchedulerStore } from "./store.js";
import { checkouts, ScriptedLauncher, until, YamlPipelines } from "./testing/fixtures.js";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const chain = `name: chain
tasks:
- {name: a, image: i, command: c}
- {name: b, image: i, command: c, depends: a}
- {name: c, image: i, command: c, depends: b}
`;

test("NATS back without its store: runs in flight are dropped, nothing more is done for them, new runs succeed", async () => {
  const nats = await startNats({ runtime: "binary" });
  cleanups.push(() => nats.stop());
  const lines: string[] = [];
  const logger = createLogger({ service: "dag-scheduler", write: (l) => void lines.push(l) });
  const kv = await NatsKeyValueStore.connect({ servers: nats.url, timeoutMs: 2000, log: logger });
  cleanups.push(() => kv.close());
  const bus = new MemoryEventBus();
  cleanups.push(() => bus.close());
  const launcher = new ScriptedLauncher(bus);
  const scheduler = new Scheduler({
    store: new SchedulerStore(kv),
    bus,
    pipelines: new YamlPipelines({ chain }),
    checkouts,
    launcher,
    dataPath: "/data/odin",
    logger,
  });
  await scheduler.start();
  cleanups.push(() => scheduler.close());

  launcher.scripts = { b: { hang: true } };
  const lost = await scheduler.submit({ pipeline: "chain", submittedBy: "alice" });
  await until(
    () => launcher.launches.some((l) => l.runId === lost.id && l.task.name === "b"),
    "the first run to launch b",
  );
  const heard: RunChange[] = [];
  scheduler.follow(lost.id, (c) => heard.push(c));
  const removed: string[] = [];
  scheduler.followRuns((id, run) => {
    if (run === undefined) removed.push(id);
  });

  await nats.resume({ wipeStore: true });

  launcher.scripts = {};
  let fresh;
  for (let tries = 1; fresh === undefined; tries++) {
    try {
      fresh = await scheduler.submit({ pipeline: "chain", submittedBy: "alice" });
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || tries > 60) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const newRun = fresh.id;
  await until(
    async () => (await scheduler.get(newRun)).run.state === "SUCCEEDED",
    "the new run to succeed",
  );
  await assert.rejects(scheduler.get(lost.id), NotFoundError);
  await until(() => heard.some((c) => c.kind === "lost"), "followers of the lost run to hear it");
  assert.deepEqual(removed, [lost.id], "runs watchers hear the lost run removed");
  assert.deepEqual(
    scheduler.list({}, 100).runs.map((r) => r.id),
    [newRun],
    "listings hold only the new store's runs",
  );

  // The lost run's hung task ends now: its event changes nothing and starts nothing (c would be next).
  await bus.publish(
    subjects.task(lost.id),
    events.TaskEvent.encode({
      runId: lost.id,
      task: "b",
      attempt: 1,
      state: common.TaskState.TASK_STATE_SUCCEEDED,
      exitCode: 0,
      reason: "Completed",
      message: "",
      objectName: `${lost.id}--b-1`,
      time: new Date(),
      outputsJson: "",
      imageDigest: "",
    }).finish(),
  );
  await new Promise((r) => setTimeout(r, 500));
  const keys: string[] = [];
  for await (const key of kv.keys(`tasks.${lost.id}.`)) keys.push(key);
  assert.deepEqual(keys, [], "nothing is recorded for the lost run");
  assert.deepEqual(
    launcher.launches.filter((l) => l.runId === lost.id).map((l) => l.task.name),
    ["a", "b"],
    "nothing more is launched for the lost run",
  );
  assert.deepEqual(
    launcher.launches.filter((l) => l.runId === newRun).map((l) => `${l.task.name}#${l.attempt}`),
    ["a#1", "b#1", "c#1"],
  );
  const lostLines = lines.filter((l) => l.includes("the run store was lost"));
  assert.equal(lostLines.length, 1, "the loss is logged once");
  assert.match(lostLines[0]!, new RegExp(lost.id));
});
