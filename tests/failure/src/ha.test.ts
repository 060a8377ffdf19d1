// No single point of failure, on real processes: a 3-node NATS cluster on loopback (3 copies of
// every stream and bucket), two repo-syncs sharing one root, two dag-schedulers, two k8s-launchers,
// the gateway and kube-sim. While 50 runs go through, one NATS node, the repo-sync leader, one
// scheduler and one launcher are SIGKILLed — one at a time, then together — and restarted, and
// pipelines are pushed during each failover. Checked by counting: every run succeeds, kube-sim
// received exactly one pod per task attempt, the event log holds every attempt's end, and every
// push is in the remote's history exactly once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsEventBus, natsServers, subjects } from "@odin/events";
import { common, DagSchedulerServiceClient, events } from "@odin/proto";
import { NatsKeyValueStore } from "@odin/run-store";
import { createClient, unary } from "@odin/service-kit";
import { eventually, startStack, type Replica, type Stack } from "@odin/test-stack";

function small(name: string): string {
  return [
    `name: ${name}`,
    "tasks:",
    "- {name: root, image: 'work:1', command: run}",
    "- {name: a, image: 'work:1', command: run, depends: root}",
    "- {name: b, image: 'work:1', command: run, depends: root}",
    "- {name: join, image: 'work:1', command: run, depends: [a, b]}",
    "",
  ].join("\n");
}
const TASKS = 4;
const RUNS = 50;

describe("no single point of failure: NATS node, repo-sync leader, scheduler and launcher killed during 50 runs", () => {
  let stack: Stack;
  let leases: NatsKeyValueStore;
  const runIds: string[] = [];
  const pushed: string[] = [];
  const failures: { what: string; runsSubmitted: number; pushAndSubmitWhileDownMs: number }[] = [];

  before(async () => {
    stack = await startStack(
      { small: { "main.yml": small("small") } },
      {
        natsCluster: true,
        repoSyncs: 2,
        replicas: 2,
        schedulers: 2,
        simOptions: { defaultRunMs: [30, 120] },
        env: { ODIN_LEADER_LEASE_SECONDS: "2" },
      },
    );
    leases = await NatsKeyValueStore.connect({
      servers: stack.nats.url,
      bucket: "odin-leases",
      replicas: 3,
    });
  });

  after(async () => {
    await leases?.close();
    await stack?.stop();
  });

  const of = (app: string) => stack.replicas.filter((r) => r.app === app);

  /** The repo-sync replica holding the lease now. */
  async function repoSyncLeader(): Promise<Replica> {
    let found: Replica | undefined;
    await eventually(
      async () => {
        const entry = await leases.get("repo-sync.leader").catch(() => undefined);
        const address = entry
          ? (JSON.parse(new TextDecoder().decode(entry.value)) as { address: string }).address
          : "";
        found = of("repo-sync").find((r) => r.address === address && r.process.running);
        return found !== undefined;
      },
      30_000,
      "a repo-sync leader",
    );
    return found!;
  }

  /** The NATS node leading the run-state bucket now. */
  async function runStateLeader() {
    const nc = await connect({ servers: natsServers(stack.nats.url) });
    try {
      const info = await (await jetstreamManager(nc)).streams.info("KV_odin-run-state");
      const node = stack.cluster!.nodes.find((n) => n.name === info.cluster?.leader);
      assert.ok(node, "the bucket has a leader");
      return node;
    } finally {
      await nc.close();
    }
  }

  /** Submits runs through the gateway, retrying while services fail over (idempotent by request id). */
  async function submit(count: number): Promise<void> {
    const client = createClient(DagSchedulerServiceClient, {
      address: stack.gateway.address,
      token: stack.tokens.operator,
      retries: 4,
    });
    try {
      await Promise.all(
        Array.from({ length: count }, async () => {
          const requestId = `ha-${runIds.length}-${Math.random().toString(36).slice(2)}`;
          for (let attempt = 0; ; attempt++) {
            try {
              const run = await unary(client, "submitRun", {
                pipeline: "small",
                commit: "",
                labels: {},
                requestId,
                noCache: false,
              });
              runIds.push(run.run!.id);
              return;
            } catch (err) {
              if (attempt >= 60) throw err;
              await new Promise((r) => setTimeout(r, 500));
            }
          }
        }),
      );
    } finally {
      client.close();
    }
  }

  /** Pushes a new pipeline through the gateway with the CLI (which retries with one request id). */
  async function push(): Promise<void> {
    const name = `pushed-${pushed.length}`;
    const dir = join(stack.dir, "push", name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "main.yml"), small(name));
    for (let attempt = 0; ; attempt++) {
      const r = await stack.cli("push", dir, "--as", name, "-m", `push ${name}`);
      if (r.code === 0) break;
      // A CLI that gave up may have pushed already: the remote's history is the judge below.
      if (attempt >= 5) {
        // What the services logged about the request, to say why.
        const id = /request id ([0-9a-f]+)/.exec(r.stderr)?.[1];
        const said = id
          ? stack.services.flatMap((p) =>
              p.logs.filter((l) => l.includes(id)).map((l) => `${p.name}: ${l}`),
            )
          : [];
        assert.fail(`odin push ${name} failed: ${r.stderr}${said.join("\n")}`);
      }
    }
    pushed.push(name);
  }

  /** The task events of a run in the event log, as task=STATE#attempt, oldest first. */
  async function eventLog(runId: string): Promise<string[]> {
    const seen: string[] = [];
    const bus = await NatsEventBus.connect({ servers: stack.nats.url, replicas: 3 });
    try {
      const sub = await bus.consume(
        { durable: `ha-test-${runId}`, filter: subjects.task(runId), concurrency: 1 },
        (m) => {
          const e = events.TaskEvent.decode(m.data);
          seen.push(`${e.task}=${common.TaskState[e.state]}#${e.attempt}`);
          return Promise.resolve();
        },
      );
      await sleep(3000);
      await sub.stop();
    } finally {
      await bus.close();
    }
    return seen;
  }

  async function failover(what: string, kill: () => Promise<() => Promise<unknown>>) {
    const started = Date.now();
    const restart = await kill();
    // Work goes on while the component is down: runs are submitted and a pipeline pushed.
    await Promise.all([submit(5), push()]);
    const whileDown = Date.now() - started;
    await restart();
    await submit(4);
    failures.push({ what, runsSubmitted: runIds.length, pushAndSubmitWhileDownMs: whileDown });
    console.log(`# killed ${what}: 5 runs submitted and a push made in ${whileDown} ms; restarted`);
  }

  test("every run ends SUCCEEDED, one pod per task attempt, every attempt's end in the event log, every push once in the remote", async () => {
    await submit(5);
    await failover("one NATS node (the run-state bucket's leader)", async () => {
      const node = await runStateLeader();
      await node.kill("SIGKILL");
      return () => node.restart();
    });
    await failover("the repo-sync leader", async () => {
      const leader = await repoSyncLeader();
      await leader.process.stop("SIGKILL");
      return () => leader.restart();
    });
    await failover("one dag-scheduler", async () => {
      const s = of("dag-scheduler")[0]!;
      await s.process.stop("SIGKILL");
      return () => s.restart();
    });
    await failover("one k8s-launcher", async () => {
      const l = of("k8s-launcher")[0]!;
      await l.process.stop("SIGKILL");
      return () => l.restart();
    });
    await failover("all four at once", async () => {
      const node = await runStateLeader();
      const leader = await repoSyncLeader();
      const s = of("dag-scheduler")[1]!;
      const l = of("k8s-launcher")[1]!;
      await Promise.all([
        node.kill("SIGKILL"),
        leader.process.stop("SIGKILL"),
        s.process.stop("SIGKILL"),
        l.process.stop("SIGKILL"),
      ]);
      return () => Promise.all([node.restart(), leader.restart(), s.restart(), l.restart()]);
    });
    if (runIds.length < RUNS) await submit(RUNS - runIds.length);
    assert.equal(new Set(runIds).size, runIds.length, "each submission made one run");
    assert.ok(runIds.length >= RUNS);

    // Every run ends SUCCEEDED.
    const client = createClient(DagSchedulerServiceClient, {
      address: stack.gateway.address,
      token: stack.tokens.operator,
    });
    try {
      await eventually(
        async () => {
          for (const runId of runIds) {
            const got = await unary(client, "getRun", {
              runId,
              taskPageSize: 1,
              taskPageToken: "",
              tasks: [],
            }).catch(() => undefined);
            if (got?.run?.state !== common.RunState.RUN_STATE_SUCCEEDED) return false;
          }
          return true;
        },
        240_000,
        `all ${runIds.length} runs SUCCEEDED`,
      ).catch(async (err: Error) => {
        // Say which runs did not end, where their tasks are, and what the services logged of them.
        const stuck: string[] = [];
        for (const runId of runIds) {
          const got = await unary(client, "getRun", {
            runId,
            taskPageSize: 100,
            taskPageToken: "",
            tasks: [],
          }).catch((e: Error) => e);
          if (got instanceof Error) stuck.push(`${runId}: ${got.message}`);
          else if (got.run?.state !== common.RunState.RUN_STATE_SUCCEEDED)
            stuck.push(
              `${runId} ${common.RunState[got.run!.state]}: ` +
                got.taskRuns
                  .map((t) => `${t.task}=${common.TaskState[t.state]}#${t.attempt}`)
                  .join(" "),
              // Where kube-sim has the run's pods, and which task events the event log holds.
              ...stack.sim
                .objects("pods")
                .filter((p) => p.metadata.labels?.["odin.dev/run"] === runId)
                .map(
                  (p) =>
                    `  pod ${p.metadata.name}: ${(p["status"] as { phase?: string } | undefined)?.phase} annotations ${JSON.stringify(p.metadata.annotations ?? {})}`,
                ),
              `  event log: ${(await eventLog(runId)).join(" ")}`,
              ...stack.services
                .flatMap((p) =>
                  p.logs.filter((l) => l.includes(runId)).map((l) => `  ${p.name}: ${l}`),
                )
                .slice(-40),
            );
        }
        throw new Error(`${err.message}\n${stuck.join("\n")}`);
      });
    } finally {
      client.close();
    }

    // kube-sim received exactly one pod per task attempt.
    const pods = new Map<string, number>();
    for (const p of stack.sim.created("pods")) {
      const l = p.metadata.labels ?? {};
      const run = l["odin.dev/run"];
      if (run === undefined || !runIds.includes(run)) continue;
      const key = `${run}/${l["odin.dev/task"]}/${l["odin.dev/attempt"]}`;
      pods.set(key, (pods.get(key) ?? 0) + 1);
    }
    assert.equal(
      new Set([...pods.keys()].map((k) => k.split("/").slice(0, 2).join("/"))).size,
      runIds.length * TASKS,
      "every task ran",
    );
    assert.deepEqual(
      [...pods].filter(([, n]) => n !== 1),
      [],
      "no attempt created twice",
    );

    // The event log holds a SUCCEEDED event for every task attempt that ran.
    const succeeded = new Set<string>();
    const bus = await NatsEventBus.connect({ servers: stack.nats.url, replicas: 3 });
    try {
      const sub = await bus.consume(
        { durable: "ha-test-audit", filter: subjects.allTasks, concurrency: 64 },
        (m) => {
          const e = events.TaskEvent.decode(m.data);
          if (e.state === common.TaskState.TASK_STATE_SUCCEEDED)
            succeeded.add(`${e.runId}/${e.task}/${e.attempt}`);
          return Promise.resolve();
        },
      );
      const lost = () => [...pods.keys()].filter((k) => !succeeded.has(k));
      await eventually(
        () => Promise.resolve(lost().length === 0),
        60_000,
        "every attempt's SUCCEEDED event",
      );
      await sub.stop();
    } finally {
      await bus.close();
    }

    // Every push made during a failover is in the remote's history exactly once.
    const log = execFileSync("git", ["--git-dir", stack.remote, "log", "--format=%s", "main"], {
      encoding: "utf8",
    });
    for (const name of pushed) {
      const commits = log.split("\n").filter((line) => line === `push ${name}`).length;
      assert.equal(commits, 1, `${name} is in the remote's history once`);
    }
    assert.equal(pushed.length, failures.length);
    console.log(JSON.stringify({ runs: runIds.length, failures, pushes: pushed.length }));
  });
});
