// The scheduler against the in-memory store and event bus, with a scripted launcher that reports
// task events on the bus as a real one would. (End to end with k8s-launcher, kube-sim and NATS is
// tested in tests/e2e.)
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryEventBus, subjects } from "@odin/events";
import { common, events } from "@odin/proto";
import { MemoryKeyValueStore, StoreUnavailableError } from "@odin/run-store";
import { silentLogger } from "@odin/service-kit";
import type { RunRecord } from "./records.js";
import { Scheduler } from "./scheduler.js";
import { SchedulerStore } from "./store.js";
import { checkouts, ScriptedLauncher, YamlPipelines } from "./testing/fixtures.js";

/** The in-memory store, counting listings (what opening a large run would read). */
class CountingKeyValueStore extends MemoryKeyValueStore {
  lists = 0;
  override async *list(filter: string) {
    this.lists++;
    yield* super.list(filter);
  }
}

/**
 * The in-memory store, where a chosen write lands while a run's tasks are being listed: after the
 * listing has read the keys, before the caller sees them (as a NATS listing may miss a write made
 * while it streams, which the watch then brings).
 */
class ListingKeyValueStore extends CountingKeyValueStore {
  duringListing: (() => Promise<void>) | undefined;
  override async *list(filter: string) {
    const entries = [];
    for await (const entry of super.list(filter)) entries.push(entry);
    const during = filter.startsWith("tasks.") ? this.duringListing : undefined;
    if (during) {
      this.duringListing = undefined;
      await during();
    }
    yield* entries;
  }
}

/** The in-memory store, whose first listing of a run's tasks fails as when NATS does not answer. */
class UnlistableKeyValueStore extends CountingKeyValueStore {
  failures = 1;
  override async *list(filter: string) {
    if (filter.startsWith("tasks.") && this.failures > 0) {
      this.failures--;
      // As NATS does, it fails after a while: the watch has brought the new run by then.
      await new Promise((r) => setTimeout(r, 20));
      throw new StoreUnavailableError(`listing ${filter}: NATS did not answer in time`);
    }
    yield* super.list(filter);
  }
}

interface World {
  kv: CountingKeyValueStore;
  bus: MemoryEventBus;
  launcher: ScriptedLauncher;
  pipelines: YamlPipelines;
  scheduler: Scheduler;
  replica(): Promise<Scheduler>;
}

const worlds: World[] = [];

/**
 * A store whose chosen writes fail as a lost connection does: either after landing (a reply that
 * timed out) or before. Each rule fires once.
 */
class FlakyKeyValueStore extends CountingKeyValueStore {
  rules: { key: RegExp; state: string; landed: boolean; fired?: boolean }[] = [];
  override async create(key: string, value: Uint8Array) {
    return this.flaky(key, value, () => super.create(key, value));
  }
  override async update(key: string, value: Uint8Array, expectedRevision: number) {
    return this.flaky(key, value, () => super.update(key, value, expectedRevision));
  }
  private async flaky(key: string, value: Uint8Array, write: () => Promise<number>) {
    const rules = this.rules.filter((r) => !r.fired && r.key.test(key));
    if (!rules.length) return write(); // not every value is JSON (a request id's claim is not)
    const state = (JSON.parse(Buffer.from(value).toString()) as { state?: string }).state;
    const rule = rules.find((r) => r.state === state);
    if (!rule) return write();
    rule.fired = true;
    if (rule.landed) await write();
    throw new StoreUnavailableError(`${key}: NATS did not answer in time`);
  }
}

async function world(
  pipelines: Record<string, string>,
  kv: CountingKeyValueStore = new CountingKeyValueStore(),
): Promise<World> {
  const bus = new MemoryEventBus();
  const launcher = new ScriptedLauncher(bus);
  const source = new YamlPipelines(pipelines);
  const replicas: Scheduler[] = [];
  const replica = async () => {
    const s = new Scheduler({
      store: new SchedulerStore(kv),
      bus,
      pipelines: source,
      checkouts,
      launcher,
      dataPath: "/data/odin",
      logger: silentLogger,
    });
    await s.start();
    replicas.push(s);
    return s;
  };
  const w: World = { kv, bus, launcher, pipelines: source, scheduler: await replica(), replica };
  worlds.push(w);
  after(async () => {
    for (const r of replicas) await r.close();
    await bus.close();
  });
  return w;
}

async function finished(s: Scheduler, runId: string, timeoutMs = 120_000): Promise<RunRecord> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { run } = await s.get(runId);
    if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(run.state)) return run;
    if (Date.now() > until) throw new Error(`run ${runId} is still ${run.state}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function states(s: Scheduler, runId: string): Promise<Record<string, string>> {
  const view = await s.get(runId);
  return Object.fromEntries(
    view.tasks.map((t) => [t.name, `${t.record.state}#${t.record.attempt}`]),
  );
}

const diamond = `name: test-job
tasks:
- {name: train-sst2-2, image: i, command: c, args: ["\${TASK_ID}"], depends: [train-sst2-1]}
- {name: hello-python, image: i, command: python3, args: ["-c", "print('hello \${TASK_ID}')", "\${WORK_PATH}/x.yml", "\${RUN_PATH}/\${TASK_NAME}"]}
- {name: train-sst2-1, image: i, command: c, depends: [hello-python]}
- {name: goodbye-python, image: i, command: c, depends: [train-sst2-1, train-sst2-2]}
`;

describe("Scheduler", () => {
  test("runs the diamond to completion, each task after its own dependencies, with variables substituted", async () => {
    const w = await world({ "odin-tests/diamond": diamond });
    const run = await w.scheduler.submit({ pipeline: "odin-tests/diamond", submittedBy: "alice" });
    assert.match(run.id, /^test-job-[a-z0-9]{8}$/);
    const done = await finished(w.scheduler, run.id);
    assert.equal(done.state, "SUCCEEDED");
    assert.deepEqual(await states(w.scheduler, run.id), {
      "train-sst2-2": "SUCCEEDED#1",
      "hello-python": "SUCCEEDED#1",
      "train-sst2-1": "SUCCEEDED#1",
      "goodbye-python": "SUCCEEDED#1",
    });
    assert.deepEqual(
      w.launcher.launches.map((l) => l.task.name),
      ["hello-python", "train-sst2-1", "train-sst2-2", "goodbye-python"],
    );
    const hello = w.launcher.launches[0]!;
    assert.deepEqual(hello.task.args, [
      "-c",
      `print('hello ${run.id}--hello-python')`,
      `/data/pipelines/commits/${run.commit}/odin-tests/diamond/x.yml`,
      `/data/odin/${run.id}/hello-python`,
    ]);
    assert.equal(hello.paths.taskPath, `/data/odin/${run.id}/hello-python`);
  });

  test("every recorded change is published as a run event", async () => {
    const w = await world({ p: diamond });
    const seen: string[] = [];
    await w.bus.subscribe(subjects.allRuns, (m) => {
      const e = events.RunEvent.decode(m.data);
      if (e.change?.$case === "run")
        seen.push(`run:${common.runStateToJSON(e.change.value.state)}`);
      else if (e.change?.$case === "taskRun")
        seen.push(`${e.change.value.task}:${common.taskStateToJSON(e.change.value.state)}`);
    });
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    await finished(w.scheduler, run.id);
    // Events arrive through NATS after the record: wait for the last one rather than a fixed time.
    while (seen.at(-1) !== "run:RUN_STATE_SUCCEEDED") await new Promise((r) => setTimeout(r, 10));
    assert.ok(seen.includes("hello-python:TASK_STATE_LAUNCHING"), seen.join(" "));
    assert.ok(seen.includes("goodbye-python:TASK_STATE_SUCCEEDED"));
    assert.equal(seen.at(-1), "run:RUN_STATE_SUCCEEDED");
  });

  test("a failing task skips its dependents and fails the run (fail_fast); exit code and reason are kept", async () => {
    const w = await world({ p: diamond });
    w.launcher.scripts["train-sst2-1"] = { exitCode: 3 };
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    const done = await finished(w.scheduler, run.id);
    assert.equal(done.state, "FAILED");
    assert.match(done.reason ?? "", /train-sst2-1/);
    const view = await w.scheduler.get(run.id);
    const byName = Object.fromEntries(view.tasks.map((t) => [t.name, t.record]));
    assert.equal(byName["train-sst2-1"]!.state, "FAILED");
    assert.equal(byName["train-sst2-1"]!.exitCode, 3);
    assert.equal(byName["train-sst2-2"]!.state, "SKIPPED");
    assert.equal(byName["goodbye-python"]!.state, "SKIPPED");
  });

  test("retries with backoff: a flaky task succeeds on its second attempt", async () => {
    const w = await world({
      p: "tasks:\n- {name: flaky, image: i, command: c, retries: 2, retry_backoff: 50ms}\n- {name: after, image: i, command: c, depends: flaky}\n",
    });
    w.launcher.scripts.flaky = [{ exitCode: 1 }, { exitCode: 0 }];
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    assert.equal((await finished(w.scheduler, run.id)).state, "SUCCEEDED");
    assert.deepEqual(await states(w.scheduler, run.id), {
      flaky: "SUCCEEDED#2",
      after: "SUCCEEDED#1",
    });
  });

  test("cancel mid-run stops running tasks and ends the run CANCELLED", async () => {
    const w = await world({
      p: "tasks:\n- {name: long, image: i, command: c}\n- {name: after, image: i, command: c, depends: long}\n",
    });
    w.launcher.scripts.long = { hang: true };
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    while (!w.launcher.launches.length) await new Promise((r) => setTimeout(r, 5));
    await w.scheduler.cancel(run.id, "changed my mind");
    const done = await finished(w.scheduler, run.id);
    assert.equal(done.state, "CANCELLED");
    assert.deepEqual(await states(w.scheduler, run.id), {
      long: "CANCELLED#1",
      after: "CANCELLED#0",
    });
    assert.deepEqual(w.launcher.cancels, ["long#1"]);
  });

  test("a watcher of a running run starts from memory; of an ended run, from the store", async () => {
    const w = await world({
      p: "tasks:\n- {name: long, image: i, command: c}\n- {name: after, image: i, command: c, depends: long}\n",
    });
    w.launcher.scripts.long = { hang: true };
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    while ((await states(w.scheduler, run.id)).long !== "RUNNING#1")
      await new Promise((r) => setTimeout(r, 5));
    const listed = w.kv.lists;
    const running = await w.scheduler.watchView(run.id);
    assert.equal(running.run.state, "RUNNING");
    assert.deepEqual(
      (await running.tasks()).map((t) => `${t.name}:${t.record.state}#${t.record.attempt}`),
      ["long:RUNNING#1", "after:PENDING#0"],
    );
    assert.equal(w.kv.lists, listed, "the store was listed for a run this replica runs");

    await w.scheduler.cancel(run.id);
    await finished(w.scheduler, run.id);
    const ended = await w.scheduler.watchView(run.id);
    assert.equal(ended.run.state, "CANCELLED");
    assert.deepEqual(
      (await ended.tasks()).map((t) => `${t.name}:${t.record.state}`),
      ["long:CANCELLED", "after:CANCELLED"],
    );
  });

  test("a task keeps when it entered each state and what it was launched with, secrets hidden", async () => {
    const w = await world({
      p: 'tasks:\n- {name: a, image: i, command: echo, args: ["${RUN_PATH}/x"], env: {API_TOKEN: s3cr3t, MODE: fast}}\n',
    });
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    await finished(w.scheduler, run.id);
    const task = (await w.scheduler.get(run.id)).tasks[0]!.record;
    assert.deepEqual(
      task.history?.map((h) => `${h.state}#${h.attempt}`),
      ["LAUNCHING#1", "RUNNING#1", "SUCCEEDED#1"],
    );
    const times = (task.history ?? []).map((h) => h.at);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
    );
    assert.equal(times[0], task.launchTime);
    assert.deepEqual(task.launched, {
      command: ["echo"],
      args: [`/data/odin/${run.id}/x`],
      env: { API_TOKEN: "(hidden)", MODE: "fast" },
    });
  });

  test("cancelling an ended run returns it unchanged (cancel is idempotent)", async () => {
    const w = await world({ p: diamond });
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    const done = await finished(w.scheduler, run.id);
    const again = await w.scheduler.cancel(run.id, "late");
    assert.deepEqual(again, done);
    await assert.rejects(w.scheduler.cancel("nope-0000000a"), { name: "NotFoundError" });
  });

  test("a timed-out task is stopped and fails", async () => {
    const w = await world({ p: "tasks:\n- {name: slow, image: i, command: c, timeout: 100ms}\n" });
    w.launcher.scripts.slow = { hang: true };
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    const done = await finished(w.scheduler, run.id);
    assert.equal(done.state, "FAILED");
    const task = (await w.scheduler.get(run.id)).tasks[0]!.record;
    assert.equal(task.reason, "DeadlineExceeded");
    assert.deepEqual(w.launcher.cancels, ["slow#1"]);
  });

  test("retrying a failed run re-runs what failed as new attempts and keeps what succeeded", async () => {
    const w = await world({ p: diamond });
    w.launcher.scripts["train-sst2-2"] = [{ exitCode: 1 }, { exitCode: 0 }];
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    assert.equal((await finished(w.scheduler, run.id)).state, "FAILED");
    const launched = w.launcher.launches.length;
    const again = await w.scheduler.retry(run.id);
    assert.equal(again.attempt, 2);
    assert.equal((await finished(w.scheduler, run.id)).state, "SUCCEEDED");
    assert.deepEqual(
      w.launcher.launches.slice(launched).map((l) => `${l.task.name}#${l.attempt}`),
      ["train-sst2-2#2", "goodbye-python#1"],
    );
  });

  test("outputs of a task reach its dependents' args; a missing one fails the dependent clearly", async () => {
    const w = await world({
      p: "tasks:\n- {name: select, image: i, command: c}\n- {name: export, image: i, command: c, args: [^select.outputs.model, '--tag={^select.outputs.tag}']}\n- {name: other, image: i, command: c, args: [^select.outputs.nope], depends: export}\n",
    });
    w.launcher.scripts.select = { outputs: { model: "m-42", tag: "v1" } };
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    const done = await finished(w.scheduler, run.id);
    assert.equal(done.state, "FAILED");
    assert.deepEqual(w.launcher.launches.find((l) => l.task.name === "export")!.task.args, [
      "m-42",
      "--tag=v1",
    ]);
    const other = (await w.scheduler.get(run.id)).tasks.find((t) => t.name === "other")!.record;
    assert.equal(other.reason, "MissingOutput");
    assert.match(
      other.message ?? "",
      /\^select\.outputs\.nope has no value: task "select" reported no output nope/,
    );
  });

  test("a task reporting an early exit ends the run SUCCEEDED: waiting tasks SKIPPED, running ones finish", async () => {
    const w = await world({
      p: [
        "tasks:",
        "- {name: probe, image: i, command: c}",
        "- {name: side, image: i, command: c}",
        "- {name: flaky, image: i, command: c, retries: 2, retry_backoff: 1h}",
        "- {name: train, image: i, command: c, depends: probe}",
        "",
      ].join("\n"),
    });
    w.launcher.scripts.probe = { hang: true };
    w.launcher.scripts.side = { hang: true };
    w.launcher.scripts.flaky = { exitCode: 1 };
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    const until = async (check: (t: Record<string, string>) => boolean) => {
      while (!check(await states(w.scheduler, run.id))) await new Promise((r) => setTimeout(r, 5));
    };
    const succeeded = (task: string, outputs: unknown) =>
      w.bus.publish(
        subjects.task(run.id),
        events.TaskEvent.encode({
          runId: run.id,
          task,
          attempt: 1,
          state: common.TaskState.TASK_STATE_SUCCEEDED,
          exitCode: 0,
          reason: "Completed",
          message: "",
          objectName: "x",
          time: new Date(),
          outputsJson: outputs ? JSON.stringify(outputs) : "",
          imageDigest: "",
        }).finish(),
      );
    await until(
      (t) => t.flaky === "RETRYING#1" && t.side === "RUNNING#1" && t.probe === "RUNNING#1",
    );
    await succeeded("probe", { odin: { early_exit: true }, acc: 0.99 });
    await until((t) => t.train === "SKIPPED#0" && t.flaky === "SKIPPED#1");
    assert.equal((await w.scheduler.get(run.id)).run.state, "RUNNING", "side still runs");
    await succeeded("side", undefined);
    const done = await finished(w.scheduler, run.id);
    assert.equal(done.state, "SUCCEEDED");
    assert.equal(done.reason, 'early exit requested by task "probe"');
    assert.deepEqual(await states(w.scheduler, run.id), {
      probe: "SUCCEEDED#1",
      side: "SUCCEEDED#1",
      flaky: "SKIPPED#1",
      train: "SKIPPED#0",
    });
    const train = (await w.scheduler.get(run.id)).tasks.find((t) => t.name === "train")!.record;
    assert.equal(train.message, 'early exit requested by task "probe"');
    assert.deepEqual(
      w.launcher.launches.map((l) => `${l.task.name}#${l.attempt}`).sort(),
      ["flaky#1", "probe#1", "side#1"],
      "nothing launched after the early exit",
    );
  });

  test("a repeated submit with the same request id returns the same run", async () => {
    const w = await world({ p: diamond });
    const a = await w.scheduler.submit({ pipeline: "p", submittedBy: "a", requestId: "req-1" });
    const b = await w.scheduler.submit({ pipeline: "p", submittedBy: "a", requestId: "req-1" });
    assert.equal(b.id, a.id);
    // Listing is from memory; this replica's own writes are in it at once.
    assert.equal(w.scheduler.list({}, 100).runs.length, 1);
  });

  test("a request id claimed by a submit that never wrote its run: the repeat writes it", async () => {
    const kv = new FlakyKeyValueStore();
    const w = await world({ p: diamond }, kv);
    // The first call claims the request id, then its run's write fails without landing (the
    // process could as well have died there).
    kv.rules.push({ key: /^runs\./, state: "PENDING", landed: false });
    await assert.rejects(
      w.scheduler.submit({ pipeline: "p", submittedBy: "a", requestId: "req-2" }),
      /NATS did not answer/,
    );
    const claimed = Buffer.from((await w.kv.get("requests.req-2"))!.value).toString();
    const [a, b] = await Promise.all([
      w.scheduler.submit({ pipeline: "p", submittedBy: "a", requestId: "req-2" }),
      w.scheduler.submit({ pipeline: "p", submittedBy: "a", requestId: "req-2" }),
    ]);
    assert.equal(a.id, claimed, "the run gets the id the claim names");
    assert.equal(b.id, claimed);
    assert.equal((await finished(w.scheduler, claimed)).state, "SUCCEEDED");
    assert.equal(w.scheduler.list({}, 100).runs.length, 1, "one run");
    assert.deepEqual(
      w.launcher.launches.map((l) => `${l.task.name}#${l.attempt}`).sort(),
      ["goodbye-python#1", "hello-python#1", "train-sst2-1#1", "train-sst2-2#1"],
      "each task launched once",
    );
  });

  test("a repeated retry with the same request id starts one attempt, after the run ends too", async () => {
    const w = await world({ p: diamond });
    w.launcher.scripts["train-sst2-2"] = [{ exitCode: 1 }, { exitCode: 1 }, { exitCode: 0 }];
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    assert.equal((await finished(w.scheduler, run.id)).state, "FAILED");
    const [a, b] = await Promise.all([
      w.scheduler.retry(run.id, "retry-1"),
      w.scheduler.retry(run.id, "retry-1"),
    ]);
    // The call that lost the claim returns the run as it stands: before or after the new attempt.
    assert.equal(Math.max(a.attempt, b.attempt), 2);
    assert.equal((await finished(w.scheduler, run.id)).state, "FAILED");
    // The same id once the second attempt failed: still that attempt, no third.
    assert.equal((await w.scheduler.retry(run.id, "retry-1")).attempt, 2);
    assert.equal((await w.scheduler.retry(run.id, "retry-2")).attempt, 3);
    assert.equal((await finished(w.scheduler, run.id)).state, "SUCCEEDED");
    await assert.rejects(w.scheduler.retry(run.id, "bad id!"), /request_id must be/);
  });

  test("a run's parameters reach its tasks, are recorded, and a retry reuses them", async () => {
    const w = await world({
      p: "parameters: {lr: {type: number, default: 0.1}, tag: {type: string}}\ntasks:\n- {name: a, image: 'i:${{ params.tag }}', command: c, args: ['--lr=${{ params.lr }}']}\n",
    });
    w.launcher.scripts.a = [{ exitCode: 1 }, { exitCode: 0 }];
    const run = await w.scheduler.submit({
      pipeline: "p",
      submittedBy: "a",
      parameters: { tag: "v2", lr: "0.5" },
    });
    assert.deepEqual(run.parameters, { lr: 0.5, tag: "v2" });
    assert.equal((await finished(w.scheduler, run.id)).state, "FAILED");
    await w.scheduler.retry(run.id);
    assert.equal((await finished(w.scheduler, run.id)).state, "SUCCEEDED");
    assert.deepEqual(
      w.launcher.launches.map((l) => `${l.task.image} ${l.task.args.join(" ")}`),
      ["i:v2 --lr=0.5", "i:v2 --lr=0.5"],
    );
    assert.deepEqual((await w.scheduler.get(run.id)).run.parameters, { lr: 0.5, tag: "v2" });
    await assert.rejects(
      w.scheduler.submit({ pipeline: "p", submittedBy: "a", parameters: { lr: 1 } }),
      (err: Error & { problems?: { message: string }[] }) => {
        assert.equal(err.name, "InvalidArgumentError");
        assert.match(err.problems![0]!.message, /"tag" has no default/);
        return true;
      },
    );
  });

  test("an invalid pipeline is refused with its problems", async () => {
    const w = await world({ p: "tasks:\n- {name: a, image: i, command: c, depends: [zz]}\n" });
    await assert.rejects(
      w.scheduler.submit({ pipeline: "p", submittedBy: "a" }),
      (err: Error & { problems?: unknown[] }) => {
        assert.equal(err.name, "InvalidArgumentError");
        assert.equal(err.problems?.length, 1);
        return true;
      },
    );
  });

  test("the same event delivered twice changes nothing", async () => {
    const w = await world({
      p: "tasks:\n- {name: a, image: i, command: c, retries: 1, retry_backoff: 10s}\n",
    });
    w.launcher.scripts.a = { exitCode: 1 };
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    while ((await states(w.scheduler, run.id)).a !== "RETRYING#1")
      await new Promise((r) => setTimeout(r, 5));
    // The FAILED event again, without a msg id so the bus does not drop it: nothing may change.
    const failed = events.TaskEvent.encode({
      runId: run.id,
      task: "a",
      attempt: 1,
      state: common.TaskState.TASK_STATE_FAILED,
      exitCode: 1,
      reason: "Error",
      message: "",
      objectName: "x",
      time: new Date(),
      outputsJson: "",
      imageDigest: "",
    }).finish();
    await w.bus.publish(subjects.task(run.id), failed);
    await w.bus.publish(subjects.task(run.id), failed);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await states(w.scheduler, run.id), { a: "RETRYING#1" });
    assert.equal(w.launcher.launches.length, 1);
  });

  test("events of an attempt need no order: a RUNNING arriving after its end changes nothing", async () => {
    const w = await world({ p: "tasks:\n- {name: a, image: i, command: c}\n" });
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    await finished(w.scheduler, run.id);
    const before = (await w.scheduler.get(run.id)).tasks[0]!.record;
    assert.equal(before.state, "SUCCEEDED");
    await w.bus.publish(
      subjects.task(run.id),
      events.TaskEvent.encode({
        runId: run.id,
        task: "a",
        attempt: 1,
        state: common.TaskState.TASK_STATE_RUNNING,
        exitCode: undefined,
        reason: "",
        message: "",
        objectName: "x",
        time: new Date(),
        outputsJson: "",
        imageDigest: "",
      }).finish(),
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual((await w.scheduler.get(run.id)).tasks[0]!.record, before);
  });

  test("a scheduler restarted mid-run carries the run to its end without launching a task twice", async () => {
    const w = await world({ p: diamond });
    w.launcher.scripts["train-sst2-1"] = { runMs: 200 };
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    while (!w.launcher.launches.some((l) => l.task.name === "train-sst2-1"))
      await new Promise((r) => setTimeout(r, 5));
    await w.scheduler.close();
    const second = await w.replica();
    assert.equal((await finished(second, run.id)).state, "SUCCEEDED");
    assert.ok(
      [...w.launcher.counts().values()].every((n) => n === 1),
      JSON.stringify([...w.launcher.counts()]),
    );
  });

  test("a run picked up just as a task ends goes on: the end the watch brought during the listing is heard", async () => {
    const chain = `name: chain
tasks:
- {name: first, image: i, command: c}
- {name: second, image: i, command: c, depends: first}
`;
    const kv = new ListingKeyValueStore();
    const w = await world({ chain }, kv);
    w.launcher.scripts.first = { hang: true };
    const run = await w.scheduler.submit({ pipeline: "chain", submittedBy: "a" });
    const other = new SchedulerStore(kv); // another replica, applying the launcher's event
    while ((await other.getTask(run.id, "first"))?.state !== "RUNNING")
      await new Promise((r) => setTimeout(r, 5));
    await w.scheduler.close();
    kv.duringListing = async () => {
      await other.updateTask(run.id, "first", (cur) => ({ ...cur!, state: "SUCCEEDED" }));
      // The watch brings the change (on the next turn) before the listing reaches its reader.
      await new Promise((r) => setImmediate(r));
    };
    const second = await w.replica();
    assert.equal((await finished(second, run.id)).state, "SUCCEEDED");
    assert.equal(kv.duringListing, undefined, "the write landed during the listing");
    assert.deepEqual(
      w.launcher.launches.map((l) => l.task.name),
      ["first", "second"],
    );
  });

  test("a run whose tasks cannot be listed yet (NATS away) is loaded once they can: it does not wait for a change that never comes", async () => {
    const kv = new UnlistableKeyValueStore();
    const w = await world({ p: diamond }, kv);
    const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
    assert.equal((await finished(w.scheduler, run.id)).state, "SUCCEEDED");
    assert.equal(kv.failures, 0, "the listing failed first");
    assert.ok([...w.launcher.counts().values()].every((n) => n === 1));
  });

  for (const landed of [true, false]) {
    test(`a decision whose write fails ${landed ? "after landing" : "before landing"} is acted on again: the run does not stall`, async () => {
      const kv = new FlakyKeyValueStore();
      kv.rules = [
        { key: /^tasks\..*\.train-sst2-1$/, state: "LAUNCHING", landed },
        { key: /^tasks\..*\.goodbye-python$/, state: "LAUNCHING", landed },
        { key: /^runs\./, state: "SUCCEEDED", landed },
      ];
      const w = await world({ p: diamond }, kv);
      const run = await w.scheduler.submit({ pipeline: "p", submittedBy: "a" });
      assert.equal((await finished(w.scheduler, run.id)).state, "SUCCEEDED");
      assert.ok(
        kv.rules.every((r) => r.fired),
        "every injected failure happened",
      );
      assert.deepEqual(Object.values(await states(w.scheduler, run.id)), [
        "SUCCEEDED#1",
        "SUCCEEDED#1",
        "SUCCEEDED#1",
        "SUCCEEDED#1",
      ]);
      assert.ok(
        [...w.launcher.counts().values()].every((n) => n === 1),
        JSON.stringify([...w.launcher.counts()]),
      );
    });
  }

  test("two replicas on the same store run 20 runs without a double launch", async () => {
    const w = await world({ p: diamond });
    const other = await w.replica();
    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? other : w.scheduler).submit({ pipeline: "p", submittedBy: "a" }),
      ),
    );
    for (const r of runs) assert.equal((await finished(w.scheduler, r.id)).state, "SUCCEEDED");
    const counts = w.launcher.counts();
    assert.equal(counts.size, 80);
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      "each task launched once",
    );
  });
});
