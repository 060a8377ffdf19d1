// Benchmark: 5,000 pods launched through the k8s-launcher's backend (KubernetesBackend.launch, or
// LaunchTask over loopback gRPC with BENCH_VIA=grpc) against kube-sim, whose pods finish at once,
// with a real nats-server. Measures launches per second, and the delay from the moment a pod turns
// Succeeded in kube-sim (sim.onChange) to its SUCCEEDED task event arriving on NATS — on a plain
// subscription (first arrival) and through a JetStream durable consumer (what dag-scheduler
// reads), both in an observer thread with its own NATS connection. Prints JSON.
//
// BENCH_TASKS (5000); BENCH_CONCURRENCY (launches in flight, 16); BENCH_RATE (launches per second,
// 0 = as fast as it goes); BENCH_VIA (`backend` | `grpc`); BENCH_QPS (client-side rate limit,
// 5000: the default 50/s would cap the launch rate by design); BENCH_SIM (`inline`: kube-sim in
// the launcher's event loop, as sim.onChange needs; `worker`: in a thread of its own).
// All times are on the process-wide monotonic clock, so they compare across threads.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { KubeConfig } from "@kubernetes/client-node";
import { NatsEventBus } from "@odin/events";
import {
  k8sLauncherService,
  KubernetesBackend,
  launchSpecFromRequest,
  publishStateEvents,
  type LaunchSpec,
} from "@odin/launcher";
import { taskWithDefaults } from "@odin/launcher/testing";
import { K8sLauncherServiceClient, taskToProto } from "@odin/proto";
import { createClient, silentLogger, startServer, unary } from "@odin/service-kit";
import { SCRIPT_ANNOTATION, startKubeSim, startNats, type KubeSimOptions } from "@odin/testing";

const tasks = Number(process.env.BENCH_TASKS ?? 5000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
const rate = Number(process.env.BENCH_RATE ?? 0);
const via = process.env.BENCH_VIA === "grpc" ? "grpc" : "backend";
const qps = Number(process.env.BENCH_QPS ?? 5000);
const simMode = process.env.BENCH_SIM === "worker" ? "worker" : "inline";
const namespace = "bench";

/** Monotonic milliseconds, the same clock in every thread of the process. */
function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? NaN),
  };
}

type Message = { type: string; url?: string; times?: [string, number][] } & Record<string, unknown>;

/** Request/answer over a worker's message port. */
function ask(worker: Worker, type: string, send = true): Promise<Message> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Message) => {
      if (m.type !== type) return;
      worker.off("message", onMessage);
      resolve(m);
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
    if (send) worker.postMessage({ type });
  });
}

/** kube-sim, inline or in a worker: its kubeconfig and when each pod turned Succeeded. */
interface Sim {
  kubeConfig: KubeConfig;
  succeededAt(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

const simOptions: KubeSimOptions = {
  defaultStartMs: 0,
  defaultRunMs: 0,
  watchHistorySize: 100_000,
};

async function inlineSim(): Promise<Sim> {
  const sim = await startKubeSim(simOptions);
  const times = new Map<string, number>();
  sim.onChange("pods", (_type, object) => {
    const phase = (object.status as { phase?: string } | undefined)?.phase;
    const name = object.metadata.name ?? "";
    if (phase === "Succeeded" && !times.has(name)) times.set(name, now());
  });
  return {
    kubeConfig: sim.kubeConfig(),
    succeededAt: () => Promise.resolve(times),
    close: () => sim.close(),
  };
}

async function workerSim(): Promise<Sim> {
  const worker = new Worker(new URL("./launcher-sim.js", import.meta.url), {
    workerData: simOptions,
  });
  const { url } = await ask(worker, "ready", false);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "kube-sim", server: url ?? "", skipTLSVerify: true }],
    users: [{ name: "kube-sim", token: "kube-sim" }],
    contexts: [{ name: "kube-sim", cluster: "kube-sim", user: "kube-sim" }],
    currentContext: "kube-sim",
  });
  return {
    kubeConfig,
    succeededAt: async () => new Map((await ask(worker, "times")).times ?? []),
    async close() {
      const closed = ask(worker, "closed", false);
      worker.postMessage({ type: "close" });
      await closed;
      await worker.terminate();
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), "odin-bench-launcher-"));
const sim = simMode === "worker" ? await workerSim() : await inlineSim();
const nats = await startNats();
const observer = new Worker(new URL("./launcher-observer.js", import.meta.url), {
  workerData: { url: nats.url },
});
await ask(observer, "ready", false);
const bus = await NatsEventBus.connect({ servers: nats.url, name: "bench" });
const backend = new KubernetesBackend({
  kubeConfig: sim.kubeConfig,
  manifest: { namespace },
  dataRoot: join(dir, "data"),
  logDir: join(dir, "logs"),
  qps,
  burst: Math.max(100, concurrency * 2),
  resourceTypes: ["Pod", "Job"],
  logger: silentLogger,
});

// When the backend handed each SUCCEEDED event over for publishing (splits the delay in two).
const reportedAt = new Map<string, number>();
const publish = publishStateEvents(bus);
await backend.start((e) => {
  if (e.state === "SUCCEEDED") reportedAt.set(e.objectName, now());
  return publish(e);
});

let launch: (spec: LaunchSpec) => Promise<unknown> = (spec) => backend.launch(spec);
let stopServer = async (): Promise<void> => {};
if (via === "grpc") {
  const server = await startServer({
    name: "k8s-launcher",
    host: "127.0.0.1",
    port: 0,
    auth: "off",
    services: [k8sLauncherService(backend)],
    logger: silentLogger,
  });
  const client = createClient(K8sLauncherServiceClient, { address: server.address });
  launch = (spec) =>
    unary(client, "launchTask", {
      runId: spec.runId,
      pipeline: spec.pipeline,
      commit: spec.commit,
      task: taskToProto(spec.task),
      taskId: `${spec.runId}--${spec.task.name}`,
      attempt: spec.attempt,
      paths: spec.paths,
    });
  stopServer = async () => {
    client.close();
    await server.close(0);
  };
}

const runId = `bench-${Date.now().toString(36)}`;
const specs: LaunchSpec[] = [];
for (let i = 0; i < tasks; i++) {
  const task = taskWithDefaults({
    name: `t${String(i).padStart(5, "0")}`,
    image: "registry.example/bench:1",
    command: ["true"],
    annotations: { [SCRIPT_ANNOTATION]: '{"runMs":0}' },
  });
  specs.push(
    launchSpecFromRequest({
      runId,
      pipeline: "bench",
      commit: "",
      task: taskToProto(task),
      taskId: "",
      attempt: 1,
      paths: {
        rootPath: "/data/pipelines",
        workPath: "/data/pipelines/bench",
        dataPath: "/data/odin",
        runPath: `/data/odin/${runId}`,
        taskPath: `/data/odin/${runId}/${task.name}`,
      },
    }),
  );
}

const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
const gcPauses: number[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauses.push(entry.duration);
});
gcObserver.observe({ entryTypes: ["gc"] });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < specs.length) {
      const i = next++;
      const spec = specs[i];
      if (rate > 0) {
        const wait = t0 + (i * 1000) / rate - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (spec) await launch(spec);
    }
  }),
);
const launchMs = performance.now() - t0;
const deadline = Date.now() + 60_000;
for (;;) {
  const counts = await ask(observer, "counts");
  if ((counts.core === tasks && counts.stream === tasks) || Date.now() > deadline) break;
  await new Promise((r) => setTimeout(r, 20));
}
const totalMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
loopDelay.disable();
gcObserver.disconnect();
const succeededAt = await sim.succeededAt();
const arrived = await ask(observer, "times");

const delays = (times: Iterable<[string, number]>) =>
  [...times].flatMap(([name, at]) => {
    const start = succeededAt.get(name);
    return start === undefined ? [] : [at - start];
  });
const arrivedStream = (arrived.stream as [string, number][] | undefined) ?? [];

console.log(
  JSON.stringify(
    {
      benchmark: "k8s-launcher: launch pods on kube-sim, SUCCEEDED events on NATS",
      via,
      sim: simMode,
      tasks,
      concurrency,
      targetRate: rate > 0 ? rate : "unlimited",
      clientQps: qps,
      launchSeconds: Math.round(launchMs) / 1000,
      launchesPerSecond: Math.round((tasks / launchMs) * 1000),
      allEventsSeconds: Math.round(totalMs) / 1000,
      succeededToNatsMs: summary(delays((arrived.core as [string, number][] | undefined) ?? [])),
      succeededToJetStreamConsumerMs: summary(delays(arrivedStream)),
      succeededToLauncherReportMs: summary(delays(reportedAt)),
      missingEvents: tasks - arrivedStream.length,
      launcherProcess: {
        eventLoopDelayP99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100,
        eventLoopDelayMaxMs: Math.round(loopDelay.max / 1e4) / 100,
        gcPauseTotalMs: Math.round(gcPauses.reduce((a, b) => a + b, 0)),
        gcPauseMaxMs: Math.round(Math.max(0, ...gcPauses) * 100) / 100,
        cpuSeconds: Math.round((cpu.user + cpu.system) / 1000) / 1000,
        rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      },
      apiRequests: backend.http.stats.requests,
      apiRetries: backend.http.stats.retries,
      note:
        simMode === "inline"
          ? "kube-sim and the launcher share one event loop (sim.onChange is synchronous); the observer is a worker thread; nats-server is a process beside them"
          : "kube-sim, the launcher and the observer each have a thread; nats-server is a process beside them",
    },
    null,
    2,
  ),
);

await stopServer();
await backend.close();
await bus.close();
const observerClosed = ask(observer, "closed", false);
observer.postMessage({ type: "close" });
await observerClosed;
await observer.terminate();
await sim.close();
await nats.stop();
rmSync(dir, { recursive: true, force: true });
