// Failure injection on the production shape: gateway, two dag-schedulers, two k8s-launchers,
// repo-sync, pipeline-registry, NATS, kube-sim and a git remote, all real processes. Each case
// submits runs, injects one failure while they run, and then checks what a user relies on:
// every run reaches its final state, each task attempt created exactly one object in kube-sim
// (counted from what kube-sim received), and no task event was lost (the scheduler's record of
// every task agrees with the last object kube-sim ran for it). The table at the end is the
// summary: case, runs, correct, duplicate launches, lost events.
//
// Durations are shortened where the code allows (a 10 s NATS outage is real; the git remote is
// unreachable for 5 s rather than a minute — repo-sync has no timer that a minute would reach:
// it syncs on request, and the outage covers several requests). Random points come from a seeded
// PRNG; the seed is printed and can be set with ODIN_FAILURE_SEED to replay a run.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { jetstream } from "@nats-io/jetstream";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { DagSchedulerServiceClient, RepoSyncServiceClient, common } from "@odin/proto";
import { createClient, unary } from "@odin/service-kit";
import { startStack, type ServiceProcess, type Stack } from "@odin/test-stack";

const seed = Number(process.env["ODIN_FAILURE_SEED"] ?? Date.now() % 100_000);
let randState = seed >>> 0;
/** Seeded PRNG (mulberry32): the random points of a run can be replayed from the seed. */
function rand(): number {
  randState = (randState + 0x6d2b79f5) >>> 0;
  let t = randState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (lo: number, hi: number) => Math.floor(lo + rand() * (hi - lo));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** root → `width` parallel tasks → join; every task may be retried (a lost pod is retried). */
function fan(name: string, width: number): string {
  const task = (n: string, extra = "") =>
    `- {name: ${n}, image: 'work:1', command: run, retries: 3, retry_backoff: 0s${extra}}\n`;
  let yaml = `name: ${name}\ntasks:\n${task("root")}`;
  for (let i = 0; i < width; i++) yaml += task(`w${i}`, ", depends: root");
  yaml += task(
    "join",
    `, depends: [${Array.from({ length: width }, (_, i) => `w${i}`).join(", ")}]`,
  );
  return yaml;
}
const width = 6;
const tasksPerRun = width + 2;

interface Row {
  name: string;
  runs: number;
  correct: number;
  duplicates: number;
  lost: number;
  note?: string;
}
const rows: Row[] = [];

describe("failure injection", () => {
  let stack: Stack;
  let nc: NatsConnection;
  let requestNo = 0;

  before(async () => {
    console.log(`failure injection: seed ${seed} (ODIN_FAILURE_SEED=${seed} replays it)`);
    stack = await startStack(
      { fan: { "main.yml": fan("fan", width) } },
      { replicas: 2, simOptions: { defaultRunMs: [100, 400] } },
    );
    nc = await connect({
      servers: stack.nats.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
    });
  });

  after(async () => {
    console.log(table(rows));
    await nc?.close().catch(() => undefined);
    await stack?.stop();
  });

  /** A scheduler client through the gateway (as users reach it), retrying while a service is down. */
  function scheduler() {
    return createClient(DagSchedulerServiceClient, {
      address: stack.gateway.address,
      token: stack.tokens.operator,
      retries: 20,
      initialBackoffMs: 200,
      deadlineMs: 30_000,
    });
  }

  async function submit(count: number): Promise<string[]> {
    const c = scheduler();
    try {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const response = await unary(c, "submitRun", {
          pipeline: "fan",
          commit: "",
          labels: {},
          requestId: `failure-${seed}-${requestNo++}`,
          noCache: false,
        });
        ids.push(response.run!.id);
      }
      return ids;
    } finally {
      c.close();
    }
  }

  async function getRun(runId: string) {
    const c = scheduler();
    try {
      return await unary(c, "getRun", { runId, taskPageSize: 1000, taskPageToken: "", tasks: [] });
    } finally {
      c.close();
    }
  }

  const terminal = new Set([
    common.RunState.RUN_STATE_SUCCEEDED,
    common.RunState.RUN_STATE_FAILED,
    common.RunState.RUN_STATE_CANCELLED,
  ]);

  async function waitFinished(ids: readonly string[], timeoutMs = 240_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    const pending = new Set(ids);
    while (pending.size > 0 && Date.now() < until) {
      for (const id of [...pending]) {
        try {
          if (terminal.has((await getRun(id)).run!.state)) pending.delete(id);
        } catch {
          // a service on the way back: ask again
        }
      }
      if (pending.size > 0) await sleep(500);
    }
  }

  /** Objects kube-sim received for these runs, by `run/task` → attempt → count. */
  function received(ids: readonly string[]): Map<string, Map<number, number>> {
    const out = new Map<string, Map<number, number>>();
    for (const resource of ["pods", "jobs"]) {
      for (const o of stack.sim.created(resource)) {
        const l = o.metadata.labels ?? {};
        const run = l["odin.dev/run"];
        if (run === undefined || !ids.includes(run) || l["odin.dev/task"] === undefined) continue;
        // A Job's pod carries the same labels; count the object Odin created, not its pods.
        if (resource === "pods" && o.metadata.ownerReferences?.length) continue;
        const key = `${run}/${l["odin.dev/task"]}`;
        const attempts = out.get(key) ?? new Map<number, number>();
        const attempt = Number(l["odin.dev/attempt"] ?? 1);
        attempts.set(attempt, (attempts.get(attempt) ?? 0) + 1);
        out.set(key, attempts);
      }
    }
    return out;
  }

  /** Tallies the runs: correct ones, duplicate launches, lost events. */
  async function tally(name: string, ids: readonly string[], note?: string): Promise<Row> {
    const objects = received(ids);
    let correct = 0;
    let lost = 0;
    let duplicates = 0;
    for (const attempts of objects.values())
      for (const n of attempts.values()) duplicates += Math.max(0, n - 1);
    for (const id of ids) {
      let response;
      try {
        response = await getRun(id);
      } catch {
        lost += tasksPerRun;
        continue;
      }
      const tasks = response.taskRuns;
      let ok =
        response.run!.state === common.RunState.RUN_STATE_SUCCEEDED && tasks.length === tasksPerRun;
      for (const t of tasks) {
        const attempts = objects.get(`${id}/${t.task}`);
        const last = attempts ? Math.max(...attempts.keys()) : 0;
        // The record must have heard of the last attempt kube-sim ran and of its end.
        if (
          t.state !== common.TaskState.TASK_STATE_SUCCEEDED ||
          (attempts !== undefined && t.attempt !== last)
        ) {
          ok = false;
          if (t.attempt < last || !terminalTask.has(t.state)) lost++;
        }
      }
      if (ok) correct++;
    }
    const row: Row = { name, runs: ids.length, correct, duplicates, lost };
    if (note !== undefined) row.note = note;
    rows.push(row);
    console.log(
      `${name}: ${correct}/${ids.length} correct, ${duplicates} duplicate launches, ${lost} lost`,
    );
    return row;
  }

  const terminalTask = new Set([
    common.TaskState.TASK_STATE_SUCCEEDED,
    common.TaskState.TASK_STATE_FAILED,
    common.TaskState.TASK_STATE_ERROR,
    common.TaskState.TASK_STATE_SKIPPED,
    common.TaskState.TASK_STATE_CANCELLED,
  ]);

  /** Submits `runs` runs, injects while they run, waits and checks. */
  async function scenario(
    name: string,
    inject: (ids: string[]) => Promise<void>,
    runs = 3,
  ): Promise<void> {
    const ids = await submit(runs);
    await inject(ids);
    await waitFinished(ids);
    const row = await tally(name, ids);
    assert.equal(row.duplicates, 0, `${name}: a task attempt created two objects`);
    assert.equal(row.lost, 0, `${name}: a task event was lost`);
    assert.equal(row.correct, runs, `${name}: every run SUCCEEDED with every task`);
  }

  /** Pods of these runs kube-sim is running now. */
  function running(ids: readonly string[]) {
    return stack.sim
      .objects("pods")
      .filter(
        (p) =>
          ids.includes(p.metadata.labels?.["odin.dev/run"] ?? "") &&
          (p["status"] as { phase?: string } | undefined)?.phase === "Running",
      );
  }

  async function untilRunning(ids: readonly string[], min = 1): Promise<void> {
    const until = Date.now() + 60_000;
    while (running(ids).length < min && Date.now() < until) await sleep(20);
  }

  const kill = async (s: ServiceProcess) => {
    await s.stop("SIGKILL");
    await sleep(between(100, 800));
    await s.restart();
  };

  const services: [string, () => ServiceProcess][] = [
    ["dag-scheduler", () => stack.schedulers[between(0, 2)]!],
    ["k8s-launcher", () => stack.launchers[between(0, 2)]!],
    ["repo-sync", () => stack.repoSync],
    ["pipeline-registry", () => stack.registry],
    ["gateway", () => stack.gateway],
  ];
  for (const [name, pick] of services) {
    test(`SIGKILL ${name} at random points during runs, then restart`, async () => {
      await scenario(`SIGKILL ${name} ×2`, async () => {
        for (let i = 0; i < 2; i++) {
          await sleep(between(50, 1500));
          await kill(pick());
        }
      });
    });
  }

  test("NATS stopped for 10 s mid-run and restarted with its store", async () => {
    await scenario("NATS down 10 s, store kept", async (ids) => {
      await untilRunning(ids);
      await stack.nats.pause();
      await sleep(10_000);
      await stack.nats.resume();
    });
  });

  test("kube-sim: bursts of 500 and 429 (Retry-After) during runs", async () => {
    await scenario("kube-sim 500/429 bursts", async (ids) => {
      await untilRunning(ids);
      stack.sim.faults.failNext(15, 500);
      await sleep(300);
      stack.sim.faults.failNext(15, 429, { retryAfterSeconds: 1 });
    });
  });

  test("kube-sim: watches dropped and resumed from a compacted history (410 Gone)", async () => {
    await scenario("dropped watches + 410", async (ids) => {
      await untilRunning(ids);
      for (let i = 0; i < 3; i++) {
        stack.sim.compactHistory();
        stack.sim.faults.dropWatches();
        await sleep(between(200, 600));
      }
    });
  });

  test("kube-sim: slow responses", async () => {
    await scenario("slow API (300 ms a request)", async (ids) => {
      stack.sim.faults.delay(300);
      await untilRunning(ids);
      await sleep(2000);
      stack.sim.faults.delay(0);
    });
  });

  test("a pod deleted from outside is retried once, as a new attempt", async () => {
    await scenario("pod deleted from outside", async (ids) => {
      await untilRunning(ids);
      const victim = running(ids)[0]!;
      stack.sim.deletePod(victim.metadata.namespace!, victim.metadata.name!);
    });
  });

  test("all running pods of a node lost at once: each is retried", async () => {
    await scenario("node lost (all running pods)", async (ids) => {
      await untilRunning(ids, 3);
      for (const p of running(ids)) stack.sim.deletePod(p.metadata.namespace!, p.metadata.name!);
    });
  });

  test("the same task event delivered many times and out of order changes nothing", async () => {
    const seen: Msg[] = [];
    const sub = nc.subscribe("odin.events.task.>", {
      callback: (_e, m) => {
        seen.push(m);
      },
    });
    try {
      await scenario("task events ×4, reversed", async (ids) => {
        await untilRunning(ids, 2);
        await sleep(500);
        const js = jetstream(nc);
        // Every event so far again, newest first, three more times each — without the message
        // id, so the stream does not drop them as duplicates: only the scheduler can.
        for (const m of [...seen].reverse())
          for (let i = 0; i < 3; i++) await js.publish(m.subject, m.data);
      });
      assert.ok(seen.length > 0, "task events were seen and replayed");
    } finally {
      sub.unsubscribe();
    }
  });

  test("the git remote unreachable, then force-pushed, during runs", async () => {
    const repo = createClient(RepoSyncServiceClient, {
      address: stack.repoSync.address,
      token: stack.tokens.admin,
      retries: 0,
    });
    const git = (...a: string[]) =>
      execFileSync("git", ["-C", stack.seed, "-c", "user.name=x", "-c", "user.email=x@y", ...a], {
        stdio: "pipe",
      });
    try {
      let syncFailures = 0;
      await scenario("git remote away 5 s, then force-pushed", async (ids) => {
        await untilRunning(ids);
        const away = `${stack.remote}.away`;
        await rename(stack.remote, away);
        for (let i = 0; i < 5; i++) {
          try {
            await unary(repo, "sync", {});
          } catch (error) {
            const e = error as ServiceError;
            assert.notEqual(e.code, status.INTERNAL, e.details);
            syncFailures++;
          }
          await sleep(1000);
        }
        await rename(away, stack.remote);
        // Rewrite the history the runs were submitted at, and push it over the old one.
        await writeFile(join(stack.seed, "fan", "README.md"), "rewritten\n");
        git("add", "-A");
        git("commit", "-q", "--amend", "-m", "rewritten");
        git("push", "-q", "--force", "origin", "HEAD:main");
        await unary(repo, "sync", {});
      });
      assert.equal(syncFailures, 5, "a sync while the remote is away fails with a clear error");
      // New runs use the rewritten history.
      const [after] = await submit(1);
      await waitFinished([after!]);
      assert.equal((await getRun(after!)).run!.state, common.RunState.RUN_STATE_SUCCEEDED);
    } finally {
      repo.close();
    }
  });

  test("NATS restarted with its store lost: services recover and new runs succeed", async () => {
    // What must happen (the design, deploy/README.md "NATS lost its store"): NATS JetStream is
    // where runs live. Losing its store loses the runs in flight — they cannot be recovered and
    // GetRun says NOT_FOUND; the objects they created are left to be deleted by label. Every
    // service survives the loss without a restart: it reconnects, makes its streams, buckets and
    // consumers again (each notices on reconnect, or on the first operation that misses), the
    // schedulers drop the engines of the lost runs, and new work runs correctly.
    const lostIds = await submit(2);
    await untilRunning(lostIds);
    const lostAt = Date.now();
    const services = [stack.repoSync, stack.registry, ...stack.schedulers, ...stack.launchers];
    const marks = services.map((s) => s.logs.length);
    await stack.nats.resume({ wipeStore: true });
    let ids: string[] = [];
    let lastError = "";
    let tries = 0;
    // A generous deadline, not a speed requirement: recovery takes about a second when idle.
    const until = Date.now() + 120_000;
    while (ids.length === 0 && Date.now() < until) {
      try {
        tries++;
        ids = await submit(2);
      } catch (error) {
        lastError = (error as ServiceError).details ?? String(error);
        await sleep(1000);
      }
    }
    const recoveredMs = Date.now() - lostAt;
    console.log(
      `store lost: new runs accepted ${recoveredMs} ms after NATS came back empty (submit attempts: ${tries})`,
    );
    if (ids.length === 0) {
      rows.push({
        name: "NATS restarted, store lost (new runs)",
        runs: 0,
        correct: 0,
        duplicates: 0,
        lost: 0,
      });
    }
    assert.equal(
      ids.length,
      2,
      `runs can be submitted again after the store is lost; last error: ${lastError}`,
    );
    await waitFinished(ids);
    const row = await tally("NATS restarted, store lost (new runs)", ids);
    for (const id of lostIds) {
      await assert.rejects(getRun(id), (e: ServiceError) => e.code === status.NOT_FOUND);
    }
    assert.equal(row.duplicates, 0, "a task attempt of a new run created two objects");
    assert.equal(row.lost, 0, "a task event of a new run was lost");
    assert.equal(row.correct, ids.length, "every new run SUCCEEDED with every task");
    // Each attempt the scheduler recorded created exactly one object, and no other was made.
    const objects = received(ids);
    for (const id of ids) {
      for (const t of (await getRun(id)).taskRuns) {
        const attempts = objects.get(`${id}/${t.task}`);
        assert.deepEqual(
          [...(attempts ?? new Map<number, number>()).entries()].sort((x, y) => x[0] - y[0]),
          Array.from({ length: t.attempt }, (_, i) => [i + 1, 1]),
          `${id}/${t.task}: one object per attempt, attempts 1..${t.attempt}`,
        );
      }
    }
    // The trouble is logged once per change of state (per service and stream), not per retry.
    services.forEach((s, i) => {
      const seen = new Map<string, number>();
      for (const line of s.logs.slice(marks[i])) {
        let entry: { msg?: string; stream?: string };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          continue;
        }
        if (!/NATS|was lost|stopped; (creating|starting) it again/.test(entry.msg ?? "")) continue;
        const key = `${entry.msg} (${entry.stream ?? ""})`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      for (const [msg, n] of seen) assert.equal(n, 1, `${s.name} logged "${msg}" ${n} times`);
      assert.ok(
        [...seen.keys()].some((k) => k.includes("was lost")),
        `${s.name} said what was lost`,
      );
    });
  });
});

function table(list: readonly Row[]): string {
  const header = ["case", "runs", "correct", "duplicate launches", "lost events"];
  const body = list.map((r) => [r.name, r.runs, r.correct, r.duplicates, r.lost].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`,
    ...body.map(line),
  ].join("\n");
}
