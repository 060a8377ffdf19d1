// Whole-system benchmark against its floor. Odin runs as deployed — gateway, repo-sync,
// pipeline-registry, dag-scheduler and k8s-launcher as processes, NATS, kube-sim (pods finish at
// once) and a git remote — and, in the same process tree and the same minute, the floor: the NATS
// publishes, KV compare-and-sets and gRPC calls one task needs, done back to back without Odin.
// The per-task operation counts are measured, not assumed: the JetStream sequence numbers Odin's
// runs consumed, divided by their tasks. Prints JSON, then one line per ratio:
//   fan     — a BENCH_FAN (10,000)-task fan-out/fan-in: CPU ms and wall ms per task, Odin / floor
//   chain   — a BENCH_CHAIN (1,000)-task chain, the same
//   many    — BENCH_RUNS (200) concurrent 10-task runs: run overhead (submit to end) p50, p99
//   big     — a BENCH_BIG (100,000)-task run to completion: wall time, peak memory per service
//   idle    — memory per service before any run
// CPU is the whole tree's (this process, which hosts kube-sim, plus every child: the services and
// nats-server), read from /proc. Absolute figures vary between machines; the ratio is what we track.
import { readFileSync } from "node:fs";
import { Client, credentials } from "@grpc/grpc-js";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { DagSchedulerServiceClient, common } from "@odin/proto";
import { createClient, unary } from "@odin/service-kit";
import { startStack } from "@odin/test-stack";
import { childNamed, treePids } from "./processes.js";

const fanWidth = Number(process.env.BENCH_FAN ?? 10_000);
const chainLength = Number(process.env.BENCH_CHAIN ?? 1000);
const concurrentRuns = Number(process.env.BENCH_RUNS ?? 200);
const bigSize = Number(process.env.BENCH_BIG ?? 100_000);
const round = (x: number) => Math.round(x * 100) / 100;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const task = (name: string, depends?: string) =>
  `- {name: ${name}, image: 'busybox:1', command: 'true'${depends ? `, depends: ${depends}` : ""}}\n`;
function fan(name: string, width: number): string {
  let y = `name: ${name}\ntasks:\n${task("root")}`;
  for (let i = 0; i < width; i++) y += task(`w${i}`, "root");
  return y + task("join", `[${Array.from({ length: width }, (_, i) => `w${i}`).join(", ")}]`);
}
function chain(length: number): string {
  let y = `name: chain\ntasks:\n${task("t0")}`;
  for (let i = 1; i < length; i++) y += task(`t${i}`, `t${i - 1}`);
  return y;
}
function tree(size: number): string {
  let y = `name: big\ntasks:\n${task("t0")}`;
  for (let i = 1; i < size; i++) y += task(`t${i}`, `t${Math.floor((i - 1) / 10)}`);
  return y;
}

const ticksPerSecond = 100;
/** CPU milliseconds used so far by the whole tree. */
function treeCpuMs(): number {
  let ticks = 0;
  for (const pid of treePids()) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return (ticks * 1000) / ticksPerSecond;
}
function memoryMB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? round(Number(m[1]) / 1024) : NaN;
}

const stack = await startStack(
  {
    fan: { "main.yml": fan("fan", fanWidth) },
    chain: { "main.yml": chain(chainLength) },
    ten: { "main.yml": fan("ten", 8) },
    big: { "main.yml": tree(bigSize) },
  },
  {
    replicas: 1,
    simOptions: { defaultRunMs: 0 },
    env: {
      ODIN_K8S_QPS: "10000",
      ODIN_K8S_BURST: "10000",
      ODIN_MAX_RUNNING_TASKS: "100000",
    },
  },
);
process.on("exit", () => {
  for (const s of stack.services) {
    try {
      process.kill(s.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});
const natsPid = childNamed("nats-server");
const memoryOf = (field: "VmRSS" | "VmHWM") => ({
  ...Object.fromEntries(stack.services.map((s) => [s.name, memoryMB(s.pid, field)])),
  ...(natsPid ? { "nats-server": memoryMB(natsPid, field) } : {}),
  "bench + kube-sim": memoryMB(process.pid, field),
});

const scheduler = createClient(DagSchedulerServiceClient, {
  address: stack.gateway.address,
  token: stack.tokens.operator,
  deadlineMs: 600_000,
});
const nc = await connect({ servers: stack.nats.url, name: "bench-system" });
const jsm = await jetstreamManager(nc);

/** Messages written so far to KV buckets and to other streams (task and run events). */
async function writes(): Promise<{ kv: number; events: number }> {
  let kv = 0;
  let events = 0;
  for await (const s of jsm.streams.list()) {
    if (s.config.name.startsWith("KV_")) kv += s.state.last_seq;
    else if (!s.config.name.startsWith("BENCH_")) events += s.state.last_seq;
  }
  return { kv, events };
}

async function runToEnd(pipeline: string, requestId: string) {
  const { run } = await unary(scheduler, "submitRun", {
    pipeline,
    commit: "",
    labels: {},
    requestId,
    noCache: false,
  });
  for (;;) {
    const got = (
      await unary(scheduler, "getRun", {
        runId: run!.id,
        taskPageSize: 1,
        taskPageToken: "",
        tasks: [],
      })
    ).run!;
    if (
      got.state === common.RunState.RUN_STATE_SUCCEEDED ||
      got.state === common.RunState.RUN_STATE_FAILED ||
      got.state === common.RunState.RUN_STATE_CANCELLED
    )
      return got;
    await sleep(250);
  }
}

interface Cost {
  wallMs: number;
  cpuMs: number;
  wallMsPerTask: number;
  cpuMsPerTask: number;
}
const cost = (tasks: number, wallMs: number, cpuMs: number): Cost => ({
  wallMs: round(wallMs),
  cpuMs: round(cpuMs),
  wallMsPerTask: round(wallMs / tasks),
  cpuMsPerTask: round(cpuMs / tasks),
});

async function measureOdin(pipeline: string, tasks: number) {
  const before = await writes();
  const cpu0 = treeCpuMs();
  const t0 = now();
  const run = await runToEnd(pipeline, `bench-${pipeline}-${Date.now()}`);
  const wall = now() - t0;
  const cpu = treeCpuMs() - cpu0;
  const after = await writes();
  if (run.state !== common.RunState.RUN_STATE_SUCCEEDED)
    throw new Error(`${pipeline} ended ${common.runStateToJSON(run.state)}`);
  return {
    cost: cost(tasks, wall, cpu),
    perTask: {
      kvWrites: round((after.kv - before.kv) / tasks),
      publishes: round((after.events - before.events) / tasks),
      grpcCalls: 1, // LaunchTask, scheduler → launcher
    },
  };
}

// The floor: the same operations without Odin, against the same NATS and a service's gRPC server.
const kvm = new Kvm(nc);
const floorKv = await kvm.create("BENCH_FLOOR", { history: 1 });
await jsm.streams.add({ name: "BENCH_FLOOR_EVENTS", subjects: ["bench.floor.>"] });
const js = jetstream(nc);
const grpc = new Client(
  stack.services.find((s) => s.name === "k8s-launcher")!.address,
  credentials.createInsecure(),
);
const healthCheck = () =>
  new Promise<void>((resolve, reject) =>
    grpc.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      (err) => (err ? reject(err) : resolve()),
    ),
  );
let floorKey = 0;
async function floorTask(ops: { kvWrites: number; publishes: number }): Promise<void> {
  const key = `t${floorKey++}`;
  let revision = await floorKv.create(key, new Uint8Array(64));
  for (let i = 1; i < Math.round(ops.kvWrites); i++)
    revision = await floorKv.update(key, new Uint8Array(64), revision);
  for (let i = 0; i < Math.round(ops.publishes); i++)
    await js.publish(`bench.floor.${key}`, new Uint8Array(128));
  await healthCheck();
}
async function measureFloor(
  tasks: number,
  ops: { kvWrites: number; publishes: number },
  concurrency: number,
) {
  const cpu0 = treeCpuMs();
  const t0 = now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tasks) {
        next++;
        await floorTask(ops);
      }
    }),
  );
  return cost(tasks, now() - t0, treeCpuMs() - cpu0);
}

const ratio = (odin: Cost, floor: Cost) => ({
  cpuPerTask: round(odin.cpuMsPerTask / floor.cpuMsPerTask),
  wallPerTask: round(odin.wallMsPerTask / floor.wallMsPerTask),
});

await sleep(2000);
const idle = memoryOf("VmRSS");

// Fan-out/fan-in: Odin launches the wide layer concurrently; the floor does its operations 256
// tasks at a time (the scheduler acts on 256 decisions at once).
const fanTasks = fanWidth + 2;
const fanOdin = await measureOdin("fan", fanTasks);
const fanFloor = await measureFloor(fanTasks, fanOdin.perTask, 256);
// A chain is one task after another: its floor too.
const chainOdin = await measureOdin("chain", chainLength);
const chainFloor = await measureFloor(chainLength, chainOdin.perTask, 1);

// Many small runs at once: each run's overhead is its whole time, the tasks taking none.
const manyStart = now();
const overheads = await Promise.all(
  Array.from({ length: concurrentRuns }, async (_, i) => {
    const run = await runToEnd("ten", `bench-many-${i}-${Date.now()}`);
    const ms = (t?: Date) => (t ? t.getTime() : NaN);
    return ms(run.endTime) - ms(run.createTime);
  }),
);
const manyWall = now() - manyStart;
const sorted = [...overheads].sort((a, b) => a - b);
const pct = (p: number) =>
  round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);

// A 100,000-task run to completion.
const bigStart = now();
const bigCpu0 = treeCpuMs();
const big = await runToEnd("big", `bench-big-${Date.now()}`);
const bigWall = now() - bigStart;
const bigCpu = treeCpuMs() - bigCpu0;
const peak = memoryOf("VmHWM");

const result = {
  benchmark:
    "whole system (gateway, repo-sync, registry, scheduler, launcher, NATS, kube-sim) against its floor",
  fan: { tasks: fanTasks, odin: fanOdin, floor: fanFloor, ratio: ratio(fanOdin.cost, fanFloor) },
  chain: {
    tasks: chainLength,
    odin: chainOdin,
    floor: chainFloor,
    ratio: ratio(chainOdin.cost, chainFloor),
  },
  many: {
    runs: concurrentRuns,
    tasksPerRun: 10,
    wallMs: round(manyWall),
    runOverheadMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: pct(100) },
  },
  big: {
    tasks: bigSize,
    state: common.runStateToJSON(big.state),
    wallMs: round(bigWall),
    cpuMsPerTask: round(bigCpu / bigSize),
    peakMemoryMB: peak,
  },
  idleMemoryMB: idle,
};
process.stdout.write(JSON.stringify(result, null, 2) + "\n");
console.log(
  `fan ${fanTasks}: Odin ${fanOdin.cost.cpuMsPerTask} CPU ms/task, ${fanOdin.cost.wallMsPerTask} wall ms/task; floor ${fanFloor.cpuMsPerTask} / ${fanFloor.wallMsPerTask}; ratio CPU ${result.fan.ratio.cpuPerTask}x, wall ${result.fan.ratio.wallPerTask}x`,
);
console.log(
  `chain ${chainLength}: Odin ${chainOdin.cost.cpuMsPerTask} CPU ms/task, ${chainOdin.cost.wallMsPerTask} wall ms/task; floor ${chainFloor.cpuMsPerTask} / ${chainFloor.wallMsPerTask}; ratio CPU ${result.chain.ratio.cpuPerTask}x, wall ${result.chain.ratio.wallPerTask}x`,
);
console.log(
  `${concurrentRuns} concurrent 10-task runs: overhead p50 ${pct(50)} ms, p99 ${pct(99)} ms`,
);

grpc.close();
scheduler.close();
await nc.close();
await stack.stop();
process.exit(0);
