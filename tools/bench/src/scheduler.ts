// Benchmark of dag-scheduler through NATS and gRPC, with one scheduler and one launcher
// (KubernetesBackend behind LaunchTask on loopback gRPC) against kube-sim with pods that finish at
// once. Prints JSON:
//   chain   — BENCH_CHAIN (1,000) tasks in a line: the delay from an upstream task's terminal event
//             arriving on NATS to its dependent's LaunchTask request (p50, p99)
//   fan     — BENCH_FAN (10,000) tasks between a root and a join: tasks per second end to end
//   submit  — a BENCH_BIG (100,000)-task run: SubmitRun time and the scheduler's memory for it
// As deployed, each part is its own process: kube-sim (`odin kube-sim`) and the k8s-launcher app
// are child processes; the scheduler runs in this one (its launches are timed here).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NatsEventBus, subjects } from "@odin/events";
import { loadPipeline, type LaunchSpec, type Pipeline } from "@odin/pipeline-spec";
import { common, events, K8sLauncherServiceClient } from "@odin/proto";
import { NatsKeyValueStore } from "@odin/run-store";
import { GrpcLauncher, Scheduler, SchedulerStore } from "@odin/scheduler";
import { createClient, silentLogger } from "@odin/service-kit";
import { startNats } from "@odin/testing";
import { children, cpuMs, startChild } from "./processes.js";

const chainLength = Number(process.env.BENCH_CHAIN ?? 1000);
const fanWidth = Number(process.env.BENCH_FAN ?? 10_000);
const bigSize = Number(process.env.BENCH_BIG ?? 100_000);
const round = (x: number) => Math.round(x * 100) / 100;
const now = () => Number(process.hrtime.bigint()) / 1e6;
function stats(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN);
  return {
    count: s.length,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: round(s[s.length - 1] ?? NaN),
  };
}

function pipelineOf(yaml: string): Pipeline {
  const loaded = loadPipeline(yaml);
  if (!loaded.valid) throw new Error(JSON.stringify(loaded.problems.slice(0, 3)));
  return loaded.pipeline!;
}

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "odin-bench-scheduler-"));
const nats = await startNats();
const { match: sim } = await startChild(
  [
    join(repoRoot, "apps/cli/dist/main.js"),
    "kube-sim",
    "--port",
    "0",
    "--run-ms",
    "0",
    "--script",
    'hang*={"runForever":true}',
  ],
  {},
  /kubeconfig: (\S+)/,
);
const { match: launcherReady } = await startChild(
  [join(repoRoot, "apps/k8s-launcher/dist/main.js")],
  {
    ODIN_AUTH: "off",
    ODIN_GRPC_HOST: "127.0.0.1",
    ODIN_GRPC_PORT: "0",
    ODIN_METRICS_PORT: "0",
    ODIN_NATS_URL: nats.url,
    ODIN_KUBECONFIG: sim[1]!,
    ODIN_K8S_NAMESPACE: "bench",
    ODIN_RESOURCE_TYPES: "Pod",
    ODIN_K8S_QPS: "10000",
    ODIN_K8S_BURST: "10000",
    ODIN_DATA_PATH: join(dir, "data"),
    ODIN_LOG_LEVEL: "info",
  },
  /"msg":"k8s-launcher ready"[^\n]*"address":"([^"]+)"/,
);
const launcherAddress = launcherReady[1]!;

// The scheduler: JetStream KV and events, the launcher over gRPC.
const pipelines = new Map<string, Pipeline>();
const launchAt = new Map<string, number>();
class TimedLauncher extends GrpcLauncher {
  override launch(r: LaunchSpec) {
    launchAt.set(`${r.runId}/${r.task.name}`, now());
    return super.launch(r);
  }
}
const schedulerBus = await NatsEventBus.connect({ servers: nats.url, name: "bench-scheduler" });
const kv = await NatsKeyValueStore.connect({ servers: nats.url, name: "bench-scheduler" });
const scheduler = new Scheduler({
  store: new SchedulerStore(kv),
  bus: schedulerBus,
  pipelines: {
    getPipeline: (path) =>
      Promise.resolve({
        commit: "c".repeat(40),
        pipeline: pipelines.get(path)!,
        problems: [],
        parameters: {},
      }),
  },
  checkouts: {
    acquire: (commit) => Promise.resolve({ commit, path: "/data/pipelines/commits/x" }),
    release: () => Promise.resolve(),
  },
  launcher: new TimedLauncher(createClient(K8sLauncherServiceClient, { address: launcherAddress })),
  dataPath: "/data/odin",
  maxRunningTasks: 100_000,
  logger: silentLogger,
});
await scheduler.start();

// When each terminal task event arrived on NATS (a plain subscription, as the consumer sees it).
const terminalAt = new Map<string, number>();
const observer = await NatsEventBus.connect({ servers: nats.url, name: "bench-observer" });
await observer.subscribe(subjects.allTasks, (m) => {
  const e = events.TaskEvent.decode(m.data);
  if (e.state === common.TaskState.TASK_STATE_SUCCEEDED)
    terminalAt.set(`${e.runId}/${e.task}`, now());
});

async function finish(runId: string, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const run = await kv.get(`runs.${runId}`);
    const state = run
      ? (JSON.parse(new TextDecoder().decode(run.value)) as { state: string }).state
      : "";
    if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(state)) return state;
    if (Date.now() > until) throw new Error(`run ${runId} still ${state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// 1. A chain: each task's launch follows its upstream's terminal event.
let yaml = "name: chain\ntasks:\n- {name: t0, image: 'busybox:1', command: 'true'}\n";
for (let i = 1; i < chainLength; i++)
  yaml += `- {name: t${i}, image: 'busybox:1', command: 'true', depends: t${i - 1}}\n`;
pipelines.set("chain", pipelineOf(yaml));
const chainRun = await scheduler.submit({ pipeline: "chain", submittedBy: "bench" });
const chainStart = now();
const chainState = await finish(chainRun.id, 600_000);
const chainMs = now() - chainStart;
const delays: number[] = [];
for (let i = 1; i < chainLength; i++) {
  const up = terminalAt.get(`${chainRun.id}/t${i - 1}`);
  const launched = launchAt.get(`${chainRun.id}/t${i}`);
  if (up !== undefined && launched !== undefined) delays.push(launched - up);
}

// 2. Fan-out/fan-in.
yaml = "name: fan\ntasks:\n- {name: root, image: 'busybox:1', command: 'true'}\n";
for (let i = 0; i < fanWidth; i++)
  yaml += `- {name: w${i}, image: 'busybox:1', command: 'true', depends: root}\n`;
yaml += `- {name: join, image: 'busybox:1', command: 'true', depends: [${Array.from({ length: fanWidth }, (_, i) => `w${i}`).join(", ")}]}\n`;
pipelines.set("fan", pipelineOf(yaml));
const fanStart = now();
const fanRun = await scheduler.submit({ pipeline: "fan", submittedBy: "bench" });
const fanState = await finish(fanRun.id, 900_000);
const fanMs = now() - fanStart;
const cpuSeconds = (): Record<string, number> => {
  const ticks = (pid: number | undefined) => cpuMs(pid) / 1000;
  const u = process.cpuUsage();
  return {
    scheduler: round((u.user + u.system) / 1e6),
    kubeSim: ticks(children[0]?.pid),
    launcher: ticks(children[1]?.pid),
  };
};
const fanCpu = cpuSeconds();

// 3. A 100,000-task run: submit time and memory (the root hangs, so the run stays in memory).
yaml = "name: big\ntasks:\n- {name: t0, image: 'hang:1', command: 'true'}\n";
for (let i = 1; i < bigSize; i++)
  yaml += `- {name: t${i}, image: 'busybox:1', command: 'true', depends: t${Math.floor((i - 1) / 10)}}\n`;
pipelines.set("big", pipelineOf(yaml));
global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const submitStart = now();
const bigRun = await scheduler.submit({ pipeline: "big", submittedBy: "bench" });
const submitMs = now() - submitStart;
global.gc?.();
const heapAfter = process.memoryUsage().heapUsed;
await scheduler.cancel(bigRun.id);
await finish(bigRun.id, 300_000);

process.stdout.write(
  JSON.stringify(
    {
      benchmark: "dag-scheduler through NATS and gRPC, one scheduler, one launcher, kube-sim",
      chain: {
        tasks: chainLength,
        state: chainState,
        totalMs: round(chainMs),
        terminalEventToDependentLaunchMs: stats(delays),
      },
      fan: {
        tasks: fanWidth + 2,
        state: fanState,
        totalMs: round(fanMs),
        tasksPerSecond: Math.round(((fanWidth + 2) * 1000) / fanMs),
        cpuSecondsSoFar: fanCpu,
      },
      submit: {
        tasks: bigSize,
        submitMs: round(submitMs),
        schedulerHeapForRunMB: global.gc
          ? round((heapAfter - heapBefore) / 1e6)
          : "run node with --expose-gc",
        processRssMB: round(process.memoryUsage().rss / 1e6),
        processPeakRssMB: round(process.resourceUsage().maxRSS / 1024),
      },
      target: { p50Ms: 5, p99Ms: 25, tasksPerSecond: 1000, submitMs: 3000, memoryMB: 1000 },
    },
    null,
    2,
  ) + "\n",
);

await scheduler.close();
await observer.close();
await schedulerBus.close();
await kv.close();
for (const c of children) c.kill("SIGTERM");
await nats.stop();
rmSync(dir, { recursive: true, force: true });
