// Scale-out of dag-scheduler and k8s-launcher, measured side by side in one run on one machine:
// the same BENCH_TASKS (10,000) fan-out/fan-in tasks through 1 scheduler + 1 launcher, then through
// 2 + 2 — every part its own process as deployed (kube-sim, repo-sync, pipeline-registry, the
// schedulers and launchers as the real apps, NATS JetStream). Two workloads: one run of all the
// tasks (one replica drives a run, so the second only follows it), and BENCH_RUNS (10) concurrent
// runs sharing them out (the replicas split the runs). The shapes take turns BENCH_ROUNDS (3) times
// and each figure is the median of its rounds, so a change in the machine's load falls on both.
// Both workloads also go through a control: two independent 1 + 1 systems (each its own NATS and
// bucket) given half the tasks each (half the runs; for the one-run workload, a run of half the
// tasks each). It has as many busy processes as 2 + 2 but coordinates nothing, so 2 + 2 against it
// is the cost of coordination alone, and it against 1 + 1 the cost of more processes sharing the
// cores.
// Prints JSON: tasks/s and CPU ms per task (user + system of the scheduler and launcher processes,
// each one's share, and NATS's, from the submit until the work the runs caused is done: they have
// ended and the launchers have stopped calling the API, e.g. to save finished pods' logs), and the
// ratios between the shapes. On a machine with few cores the wall throughput cannot double; what
// must hold is that CPU per task does not grow with replicas (coordination overhead ≤ 10%).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { common, DagSchedulerServiceClient } from "@odin/proto";
import { createClient, unary } from "@odin/service-kit";
import { startKubeSim, startNats } from "@odin/testing";
import { childNamed, children, cpuMs, ioOf, startChild as start, stopChild } from "./processes.js";

const tasks = Number(process.env.BENCH_TASKS ?? 10_000);
const round = (x: number) => Math.round(x * 100) / 100;
/** How long without a Kubernetes API request counts as the launchers being done. */
const quietMs = 3000;
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const app = (name: string) => join(repoRoot, "apps", name, "dist", "main.js");
const readyLine = (name: string) => new RegExp(`"msg":"${name} ready"[^\\n]*"address":"([^"]+)"`);

const dir = mkdtempSync(join(tmpdir(), "odin-bench-scale-"));
const nats = await startNats({ runtime: "binary" });
/** The nats-server this benchmark started (a child of this process): its CPU is reported too. */
const natsPid = childNamed("nats-server");
// The control's second system has a NATS of its own: two deployments sharing a server would share
// its event stream and their schedulers' consumer of it.
const natsB = await startNats({ runtime: "binary" });
const natsBPid = childNamed("nats-server", [natsPid!]);

// kube-sim in this process: its request log gives the Kubernetes API requests per task.
const sim = await startKubeSim({ defaultRunMs: 0, maxRequestLog: 1_000_000 });
const kubeconfig = join(dir, "kubeconfig.json");
writeFileSync(kubeconfig, sim.kubeConfig().exportConfig());

// The pipelines repository: one fan-out/fan-in pipeline of `tasks` tasks.
const remote = join(dir, "remote.git");
const seed = join(dir, "seed");
execFileSync("git", ["init", "-q", "--bare", "--initial-branch=main", remote]);
execFileSync("git", ["clone", "-q", remote, seed], { stdio: "pipe" });
/** A fan-out/fan-in pipeline of `count` tasks: a root, `count - 2` workers, a join. */
function fan(name: string, count: number): void {
  const width = count - 2;
  let yaml = `name: ${name}\ntasks:\n- {name: root, image: 'busybox:1', command: 'true'}\n`;
  for (let i = 0; i < width; i++)
    yaml += `- {name: w${i}, image: 'busybox:1', command: 'true', depends: root}\n`;
  yaml += `- {name: join, image: 'busybox:1', command: 'true', depends: [${Array.from({ length: width }, (_, i) => `w${i}`).join(", ")}]}\n`;
  mkdirSync(join(seed, name));
  writeFileSync(join(seed, name, "main.yml"), yaml);
}
// The same workload two ways: one run of all the tasks (driven by one scheduler, whichever the
// shape), and BENCH_RUNS (10) concurrent runs sharing them out (the replicas split the runs).
const manyRuns = Number(process.env.BENCH_RUNS ?? 10);
const partSize = Math.floor(tasks / manyRuns);
/** Runs of `fan-part` each replica drives before a shape is measured. */
const warmUpRuns = Number(process.env.BENCH_WARM_UP_RUNS ?? 2);
fan("fan", tasks);
fan("fan-half", Math.floor(tasks / 2));
fan("fan-part", partSize);
const git = (...a: string[]) =>
  execFileSync("git", ["-C", seed, "-c", "user.name=b", "-c", "user.email=b@b", ...a], {
    stdio: "pipe",
  });
git("add", "-A");
git("commit", "-qm", "fan");
git("push", "-q", "origin", "HEAD:main");

const base = {
  ODIN_AUTH: "off",
  ODIN_GRPC_HOST: "127.0.0.1",
  ODIN_GRPC_PORT: "0",
  ODIN_METRICS_PORT: "0",
  ODIN_NATS_URL: nats.url,
  ODIN_LOG_LEVEL: "warn",
};
const info = { ...base, ODIN_LOG_LEVEL: "info" };
const repoSync = await start(
  [app("repo-sync")],
  { ...info, ODIN_REPO_URL: remote, ODIN_ROOT_PATH: join(dir, "root") },
  readyLine("repo-sync"),
);
const registry = await start(
  [app("pipeline-registry")],
  { ...info, ODIN_REPO_SYNC_ADDRESS: repoSync.match[1]! },
  readyLine("pipeline-registry"),
);

/**
 * One shape: `systems` deployments side by side, each of `n` schedulers and `n` launchers, fresh
 * (own namespace and run-state bucket; the second its own NATS). Two systems of 1 + 1 are the
 * control: as many busy processes as 2 + 2, sharing the machine's cores, with nothing coordinated
 * between them.
 */
async function shape(n: number, turn: number, runs: number, systems = 1) {
  const launchers = [];
  const system = (i: number) => Math.floor(i / n);
  const natsUrl = (i: number) => (system(i) === 0 ? nats.url : natsB.url);
  // Unique per workload too: a shape must not find the runs (request ids) of an earlier one.
  const tag = `${n}x${systems}-${runs}-${turn}`;
  const replicas = n * systems;
  for (let i = 0; i < replicas; i++) {
    launchers.push(
      await start(
        [app("k8s-launcher")],
        {
          ...info,
          ODIN_NATS_URL: natsUrl(i),
          ODIN_KUBECONFIG: kubeconfig,
          ODIN_K8S_NAMESPACE: `bench-${tag}-${system(i)}`,
          ODIN_RESOURCE_TYPES: "Pod",
          ODIN_K8S_QPS: "10000",
          ODIN_K8S_BURST: "10000",
          ODIN_DATA_PATH: join(dir, "data"),
        },
        readyLine("k8s-launcher"),
        `launcher-${tag}-${i}`,
      ),
    );
  }
  const schedulers = [];
  for (let i = 0; i < replicas; i++) {
    schedulers.push(
      await start(
        [app("dag-scheduler")],
        {
          ...info,
          ODIN_NATS_URL: natsUrl(i),
          ODIN_REGISTRY_ADDRESS: registry.match[1]!,
          ODIN_REPO_SYNC_ADDRESS: repoSync.match[1]!,
          // Each scheduler calls its own launcher, as a Service spreads connections.
          ODIN_LAUNCHER_ADDRESS: launchers[i]!.match[1]!,
          ODIN_DATA_PATH: join(dir, "data"),
          ODIN_KV_BUCKET: `bench-scale-${tag}-${system(i)}`,
          ODIN_MAX_RUNNING_TASKS: "100000",
        },
        readyLine("dag-scheduler"),
        `scheduler-${tag}-${i}`,
      ),
    );
  }
  // Runs are submitted to the schedulers in turn, as a Service spreads connections.
  const clients = schedulers.map((s) =>
    createClient(DagSchedulerServiceClient, { address: s.match[1]! }),
  );
  const procs = [...schedulers, ...launchers].map((s) => s.proc);
  const ended = [
    common.RunState.RUN_STATE_SUCCEEDED,
    common.RunState.RUN_STATE_FAILED,
    common.RunState.RUN_STATE_CANCELLED,
  ];
  /** Submits `count` runs of a pipeline and waits until all have ended; their end states. */
  const runAll = async (pipeline: string, count: number, what: string) => {
    const submitted = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const { run } = await unary(clients[i % replicas]!, "submitRun", {
          pipeline,
          commit: "",
          labels: {},
          requestId: `scale-${tag}-${what}-${i}`,
          noCache: false,
        });
        return run!.id;
      }),
    );
    const states: common.RunState[] = [];
    for (const [i, runId] of submitted.entries()) {
      for (;;) {
        const got = await unary(clients[i % replicas]!, "getRun", {
          runId,
          taskPageSize: 1,
          taskPageToken: "",
          tasks: [],
        });
        if (ended.includes(got.run!.state)) {
          states.push(got.run!.state);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return states;
  };
  /** Waits until the launchers have made no API request for a while. */
  const quiet = async () => {
    for (let seen = -1; seen !== sim.requests.length;) {
      seen = sim.requests.length;
      await new Promise((r) => setTimeout(r, quietMs));
    }
  };
  // Services run for days: what is measured is their steady state, not a new process's first
  // seconds (compiling its code, growing its heap), which the shape with more processes would pay
  // more of. Each replica first drives a few runs that are not counted.
  await runAll("fan-part", warmUpRuns * replicas, "warm-up");
  await quiet();
  const natsPids = systems === 1 ? [natsPid] : [natsPid, natsBPid];
  const natsCpuMs = (): number => {
    let sum = 0;
    for (const pid of natsPids) sum += cpuMs(pid);
    return sum;
  };
  const cpuBefore = procs.map((p) => cpuMs(p.pid));
  const natsBefore = natsCpuMs();
  const ioBefore = procs.map((p) => ioOf(p.pid));
  const loadBefore = loadavg()[0]!;
  const requestsBefore = sim.requests.length;
  const t0 = performance.now();
  // The one run, or in the control one run of half the tasks for each system.
  const [pipeline, count, size] =
    runs > 1
      ? ["fan-part", runs, partSize]
      : systems > 1
        ? ["fan-half", systems, Math.floor(tasks / 2)]
        : ["fan", 1, tasks];
  const states = await runAll(pipeline, count, "measured");
  const ms = performance.now() - t0;
  const total = size * count;
  // Work the runs left behind (saving finished pods' logs) is theirs too.
  await quiet();
  const settled = performance.now() - t0;
  const cpu = procs.map((p, i) => cpuMs(p.pid) - cpuBefore[i]!);
  const natsCpu = natsCpuMs() - natsBefore;
  const io = procs.map((p, i) => {
    const now = ioOf(p.pid);
    return { bytes: now.bytes - ioBefore[i]!.bytes, calls: now.calls - ioBefore[i]!.calls };
  });
  const ioBytes = io.reduce((a, x) => a + x.bytes, 0);
  const ioCalls = io.reduce((a, x) => a + x.calls, 0);
  const byVerb: Record<string, number> = {};
  for (const r of sim.requests.slice(requestsBefore)) {
    const verb = `${r.method} ${r.path.includes("/log") ? "log" : r.path.split("/").at(-1) === "pods" ? "pods" : "pod"}`;
    byVerb[verb] = (byVerb[verb] ?? 0) + 1;
  }
  for (const c of clients) c.close();
  await Promise.all(procs.map((p) => stopChild(p)));
  const schedulerCpu = cpu.slice(0, replicas).reduce((a, b) => a + b, 0);
  const launcherCpu = cpu.slice(replicas).reduce((a, b) => a + b, 0);
  return {
    systems,
    schedulers: n,
    launchers: n,
    runs,
    states: [...new Set(states.map((x) => common.RunState[x]))],
    tasks: total,
    seconds: round(ms / 1000),
    settledSeconds: round(settled / 1000),
    tasksPerSecond: Math.round((total * 1000) / ms),
    cpuMsPerTask: round((schedulerCpu + launcherCpu) / total),
    schedulerCpuMsPerTask: round(schedulerCpu / total),
    launcherCpuMsPerTask: round(launcherCpu / total),
    // Each process's share: the first scheduler is the one the run was submitted to.
    cpuMsPerTaskByProcess: [
      ...cpu.slice(0, replicas).map((c) => round(c / total)),
      ...cpu.slice(replicas).map((c) => round(c / total)),
    ],
    natsCpuMsPerTask: round(natsCpu / total),
    // Work counted rather than timed: bytes the schedulers and launchers read and wrote (NATS,
    // gRPC, the Kubernetes API, saved logs) and the read/write calls they took, per task.
    ioBytesPerTask: Math.round(ioBytes / total),
    ioCallsPerTask: round(ioCalls / total),
    kubernetesRequestsPerTask: round((sim.requests.length - requestsBefore) / total),
    kubernetesRequests: byVerb,
    // The machine's 1-minute load average at the submit and at the end: CPU per task is only
    // comparable between shapes measured under similar load.
    loadAverage: [round(loadBefore), round(loadavg()[0]!)],
  };
}

// The shapes take turns, BENCH_ROUNDS times (default 3), so that a change in the machine's load
// falls on both; each figure is the median of its rounds.
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
type Shape = Awaited<ReturnType<typeof shape>>;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** The median round of a shape by CPU per task (of an even number, the nearer the lower). */
const summary = (shapes: Shape[]) => {
  const mid = median(shapes.map((y) => y.cpuMsPerTask));
  const nearest = [...shapes].sort(
    (a, b) => Math.abs(a.cpuMsPerTask - mid) - Math.abs(b.cpuMsPerTask - mid),
  )[0]!;
  return {
    ...nearest,
    cpuMsPerTask: round(mid),
    tasksPerSecond: Math.round(median(shapes.map((x) => x.tasksPerSecond))),
    ioBytesPerTask: Math.round(median(shapes.map((x) => x.ioBytesPerTask))),
    ioCallsPerTask: round(median(shapes.map((x) => x.ioCallsPerTask))),
    rounds: shapes.map((x) => ({
      cpuMsPerTask: x.cpuMsPerTask,
      tasksPerSecond: x.tasksPerSecond,
      loadAverage: x.loadAverage,
    })),
  };
};
/**
 * One workload through both shapes, which take turns `rounds` times so the machine's load falls on
 * both, and through the control, two independent systems of 1 + 1 each given half the tasks: it
 * separates what sharing two cores between more processes costs (control against 1 + 1) from what
 * coordinating replicas costs (2 + 2 against the control).
 */
async function workload(runs: number) {
  const ones: Shape[] = [];
  const twos: Shape[] = [];
  const controls: Shape[] = [];
  for (let r = 0; r < rounds; r++) {
    ones.push(await shape(1, r, runs));
    twos.push(await shape(2, r, runs));
    controls.push(await shape(1, r, runs, 2));
  }
  const one = summary(ones);
  const two = summary(twos);
  const control = summary(controls);
  return {
    one,
    two,
    throughputRatio: round(two.tasksPerSecond / one.tasksPerSecond),
    cpuPerTaskRatio: round(two.cpuMsPerTask / one.cpuMsPerTask),
    ioBytesPerTaskRatio: round(two.ioBytesPerTask / one.ioBytesPerTask),
    ioCallsPerTaskRatio: round(two.ioCallsPerTask / one.ioCallsPerTask),
    cpuPerTaskRatioByRound: twos.map((x, i) => round(x.cpuMsPerTask / ones[i]!.cpuMsPerTask)),
    twoIndependentSystems: control,
    // What more processes on the same cores cost, coordinating nothing.
    contentionCpuPerTaskRatio: round(control.cpuMsPerTask / one.cpuMsPerTask),
    // What coordinating the replicas costs, on equal terms for the machine.
    coordinationCpuPerTaskRatio: round(two.cpuMsPerTask / control.cpuMsPerTask),
    coordinationIoBytesPerTaskRatio: round(two.ioBytesPerTask / control.ioBytesPerTask),
    coordinationCpuPerTaskRatioByRound: twos.map((x, i) =>
      round(x.cpuMsPerTask / controls[i]!.cpuMsPerTask),
    ),
  };
}
const oneRun = await workload(1);
const concurrentRuns = manyRuns > 1 ? await workload(manyRuns) : undefined;
process.stdout.write(
  JSON.stringify(
    {
      benchmark: `scale-out: ${tasks} tasks through 1 scheduler + 1 launcher, then 2 + 2 (processes, NATS, kube-sim), as one run and as ${manyRuns} concurrent runs of ${partSize}, each also through two independent 1 + 1 systems given half; ${rounds} rounds of each taking turns, medians`,
      oneRun,
      concurrentRuns,
      // The coordination overhead (at most 10 %): 2 + 2 against the control, which has as
      // many processes on the same cores. cpuPerTaskRatio (against 1 + 1) also counts those
      // processes sharing the cores, which replicas on a cluster's own CPUs do not.
      target: { coordinationCpuPerTaskRatioAtMost: 1.1 },
    },
    null,
    2,
  ) + "\n",
);
for (const c of children) c.kill("SIGTERM");
await sim.close();
await nats.stop();
await natsB.stop();
rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
process.exit(0);
