// Starting Odin's services as separate processes (their real main.js) and running the odin CLI:
// the harness of the e2e and failure-injection tiers.
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { credentials, makeClientConstructor } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import {
  freePorts,
  startKubeSim,
  startNats,
  startNatsCluster,
  type KubeSim,
  type KubeSimOptions,
  type NatsCluster,
  type NatsServer,
} from "@odin/testing";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is in tests/stack/dist/). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
/** The shared conformance corpus beside the checkout. */
export const conformance = join(repoRoot, "..", "shared", "conformance");

/** A service process and what it logged. */
export interface ServiceProcess {
  name: string;
  address: string;
  /** Its Prometheus endpoint (`http://127.0.0.1:PORT/metrics`), the same across restarts. */
  metricsUrl: string;
  logs: string[];
  /** Process id of the running instance (changes on `restart`). */
  readonly pid: number;
  /** Signals the process (SIGTERM by default) and resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Whether the process is still running. */
  readonly running: boolean;
  /** Starts the service again on the same address with the same environment (after `stop`). */
  restart(): Promise<void>;
}

interface Running {
  address: string;
  pid: number;
  exit: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
  readonly running: boolean;
}

/**
 * Starts `apps/<app>/dist/main.js` with `env` and waits for its "<app> ready" log line. Its
 * metrics are served on a free port unless `env` sets `ODIN_METRICS_PORT`.
 */
export async function startService(
  app: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  const logs: string[] = [];
  const metricsPort = env["ODIN_METRICS_PORT"] ?? String((await freePorts(1))[0]);
  env = { ODIN_METRICS_HOST: "127.0.0.1", ...env, ODIN_METRICS_PORT: metricsPort };
  let current = await spawnService(app, env, logs, timeoutMs);
  const port = current.address.slice(current.address.lastIndexOf(":") + 1);
  return {
    name: app,
    address: current.address,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    logs,
    get pid() {
      return current.pid;
    },
    get running() {
      return current.running;
    },
    stop: (signal = "SIGTERM") => {
      current.kill(signal);
      return current.exit;
    },
    restart: async () => {
      current = await spawnService(app, { ...env, ODIN_GRPC_PORT: port }, logs, timeoutMs);
    },
  };
}

function spawnService(
  app: string,
  env: Record<string, string>,
  logs: string[],
  timeoutMs: number,
): Promise<Running> {
  const script = join(repoRoot, "apps", app, "dist", "main.js");
  const child: ChildProcess = spawn(process.execPath, [script], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      ODIN_GRPC_HOST: "127.0.0.1",
      ODIN_GRPC_PORT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exit = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(`${app} did not become ready in ${timeoutMs} ms; it logged:\n${logs.join("\n")}`),
      );
    }, timeoutMs);
    void exit.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(`${app} exited with ${code} before it was ready; it logged:\n${logs.join("\n")}`),
      );
    });
    let buffered = "";
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; address?: string };
          if (entry.msg === `${app} ready` && entry.address) {
            clearTimeout(timer);
            resolve({
              address: entry.address,
              pid: child.pid!,
              exit,
              kill: (signal) => {
                if (child.exitCode === null && child.signalCode === null) child.kill(signal);
              },
              get running() {
                return child.exitCode === null && child.signalCode === null;
              },
            });
          }
        } catch {
          // Not a JSON log line.
        }
      }
    };
    child.stderr!.on("data", onData);
    child.stdout!.on("data", onData);
  });
}

/** Result of one CLI invocation. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The `odin` command as npm installs it (bin/odin.js, running the bundled CLI). */
export const odinBin = join(repoRoot, "apps", "cli", "bin", "odin.js");

/**
 * Runs the built `odin` CLI with arguments, in `cwd`, with extra environment; `as` runs it under
 * another name (an original `odin-*` command), through a link named so, as npm installs them.
 */
export function odin(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; as?: string } = {},
): Promise<CliResult> {
  let cli = odinBin;
  if (options.as) {
    // One directory per checkout: links of another checkout would run that checkout's CLI.
    const dir = join(
      tmpdir(),
      `odin-e2e-bin-${createHash("sha256").update(odinBin).digest("hex").slice(0, 12)}`,
    );
    mkdirSync(dir, { recursive: true });
    cli = join(dir, options.as);
    if (!existsSync(cli)) symlinkSync(odinBin, cli);
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { cwd: options.cwd, env: { PATH: process.env.PATH ?? "", ...options.env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A temp directory removed by `cleanup`. */
export async function tempDir(prefix: string): Promise<{ path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Writes a tokens file with one token per role and returns the tokens. */
export async function writeTokens(
  dir: string,
): Promise<{ file: string; admin: string; operator: string; viewer: string; service: string }> {
  const tokens = {
    admin: "adm-0123456789abcdef",
    operator: "op-0123456789abcdef",
    viewer: "view-0123456789abcdef",
    service: "svc-0123456789abcdef",
  };
  const file = join(dir, "tokens.json");
  await writeFile(
    file,
    JSON.stringify({
      tokens: [
        { token: tokens.admin, subject: "root", role: "admin" },
        { token: tokens.operator, subject: "alice@example.com", role: "operator" },
        { token: tokens.viewer, subject: "bob", role: "viewer" },
        { token: tokens.service, subject: "pipeline-registry", role: "viewer" },
      ],
    }),
  );
  return { file, ...tokens };
}

/** Polls `check` until it returns true or the time is up. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
  what = "condition",
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A gRPC target reaching any of several replicas (grpc-js's `ipv4:` resolver with pick-first), as
 * a Kubernetes Service does: when one is down, calls go to the next.
 */
export function anyOf(addresses: readonly string[]): string {
  return addresses.length === 1 ? addresses[0]! : `ipv4:${addresses.join(",")}`;
}

/** One replica of a stack: its process now, and how to kill and restart it on the same port. */
export interface Replica {
  readonly app: string;
  readonly address: string;
  process: ServiceProcess;
  /** Starts it again with the same environment and port (after a kill). */
  restart(): Promise<ServiceProcess>;
}

/** A whole Odin deployment as processes: NATS, kube-sim, a git remote, and every service. */
export interface Stack {
  /** The NATS server; with `natsCluster`, the cluster seen as one (its URL lists every node; see `cluster`). */
  nats: NatsServer;
  /** The NATS cluster when the stack was started with `natsCluster`. */
  cluster: NatsCluster | undefined;
  /** Every repo-sync, dag-scheduler and k8s-launcher replica, restartable on its port. */
  replicas: Replica[];
  sim: KubeSim;
  tokens: Awaited<ReturnType<typeof writeTokens>>;
  services: ServiceProcess[];
  repoSync: ServiceProcess;
  registry: ServiceProcess;
  launchers: ServiceProcess[];
  schedulers: ServiceProcess[];
  gateway: ServiceProcess;
  /** The git remote (bare) the stack serves pipelines from. */
  remote: string;
  /** The environment a dag-scheduler of this stack needs (to start more, or again). */
  schedulerEnv: Record<string, string>;
  /** A clone of the remote, to commit to it as someone else would. */
  seed: string;
  /** The temp directory everything lives in. */
  dir: string;
  /** Runs the odin CLI against the gateway as an operator. */
  cli(...args: string[]): Promise<CliResult>;
  stop(): Promise<void>;
}

/**
 * Starts NATS, kube-sim, a git remote holding `pipelines` (directory → files) and repo-sync,
 * pipeline-registry, `replicas` dag-schedulers and k8s-launchers and the gateway as processes.
 */
export async function startStack(
  pipelines: Record<string, Record<string, string>>,
  options: {
    replicas?: number;
    schedulers?: number;
    simOptions?: KubeSimOptions;
    /** repo-sync replicas sharing one root (default 1). */
    repoSyncs?: number;
    /** A 3-node NATS cluster with 3 copies of everything, instead of one server. */
    natsCluster?: boolean;
    /** Environment added to every service. */
    env?: Record<string, string>;
  } = {},
): Promise<Stack> {
  const dir = await tempDir("odin-e2e-stack-");
  const cluster = options.natsCluster ? await startNatsCluster({ nodes: 3 }) : undefined;
  const nats: NatsServer = cluster
    ? {
        url: cluster.url,
        port: Number(cluster.url.split(",")[0]!.split(":").pop()),
        via: "binary",
        dataDir: undefined,
        stop: () => cluster.stop(),
        // A cluster loses nodes one at a time: use `cluster.nodes[i].kill()` and `restart()`.
        pause: () => Promise.reject(new Error("pause a node of stack.cluster instead")),
        resume: () => Promise.reject(new Error("restart a node of stack.cluster instead")),
      }
    : await startNats({ runtime: "binary" });
  const sim = await startKubeSim(options.simOptions ?? { defaultRunMs: [5, 20] });
  const kubeconfig = join(dir.path, "kubeconfig.json");
  await writeFile(kubeconfig, sim.kubeConfig().exportConfig());
  const tokens = await writeTokens(dir.path);
  const remote = join(dir.path, "remote.git");
  const seed = join(dir.path, "seed");
  execFileSync("git", ["init", "-q", "--bare", "--initial-branch=main", remote]);
  execFileSync("git", ["clone", "-q", remote, seed], { stdio: "pipe" });
  for (const [path, files] of Object.entries(pipelines)) {
    for (const [name, text] of Object.entries(files)) {
      await mkdir(join(seed, path, name, ".."), { recursive: true });
      await writeFile(join(seed, path, name), text);
    }
  }
  const git = (...a: string[]) =>
    execFileSync("git", ["-C", seed, "-c", "user.name=x", "-c", "user.email=x@y", ...a], {
      stdio: "pipe",
    });
  git("add", "-A");
  git("commit", "-qm", "pipelines", "--allow-empty");
  git("push", "-q", "origin", "HEAD:main");
  const data = join(dir.path, "data");
  await mkdir(data, { recursive: true });
  const common = {
    ODIN_TOKENS_FILE: tokens.file,
    ODIN_NATS_URL: nats.url,
    ODIN_SERVICE_TOKEN: tokens.admin,
    ...(cluster ? { ODIN_NATS_REPLICAS: "3" } : {}),
    ...options.env,
  };
  const services: ServiceProcess[] = [];
  const replicaList: Replica[] = [];
  const stopAll = async (): Promise<void> => {
    // Replicas may have been restarted: stop what runs now.
    for (const s of [...services].reverse()) if (s.running) await s.stop();
    for (const r of replicaList) if (r.process.running) await r.process.stop();
    await sim.close();
    await nats.stop();
    await dir.cleanup();
  };
  // A stack that fails to start stops what it started, so the test file does not hang on it.
  try {
    const replicated = options.repoSyncs !== undefined || cluster !== undefined;
    /** Starts a replica on a fixed port (when replicated) so a restart keeps its address. */
    const startReplica = async (app: string, env: Record<string, string>): Promise<Replica> => {
      const [port] = replicated ? await freePorts(1) : [0];
      const full = { ...env, ODIN_GRPC_PORT: String(port) };
      const first = await startService(app, full);
      const replica: Replica = {
        app,
        address: first.address,
        process: first,
        // A restart may wait for NATS to elect leaders, on a busy machine: give it time.
        restart: async () => (replica.process = await startService(app, full, 120_000)),
      };
      replicaList.push(replica);
      return replica;
    };
    const repoSyncs: Replica[] = [];
    for (let i = 0; i < (options.repoSyncs ?? 1); i++) {
      repoSyncs.push(
        await startReplica("repo-sync", {
          ...common,
          ODIN_REPO_URL: remote,
          ODIN_ROOT_PATH: join(dir.path, "root"),
          ODIN_SYNC_INTERVAL_SECONDS: "0",
        }),
      );
    }
    const repoSync = { address: anyOf(repoSyncs.map((r) => r.address)) };
    services.push(...repoSyncs.map((r) => r.process));
    const registry = await startService("pipeline-registry", {
      ...common,
      ODIN_REPO_SYNC_ADDRESS: repoSync.address,
    });
    services.push(registry);
    const replicas = options.replicas ?? 1;
    const schedulerReplicas = options.schedulers ?? replicas;
    const launchers: Replica[] = [];
    for (let i = 0; i < replicas; i++) {
      launchers.push(
        await startReplica("k8s-launcher", {
          ...common,
          ODIN_KUBECONFIG: kubeconfig,
          ODIN_DATA_PATH: data,
          ODIN_PENDING_TIMEOUT_SECONDS: "30",
        }),
      );
    }
    const schedulerEnv = {
      ...common,
      ODIN_REGISTRY_ADDRESS: registry.address,
      ODIN_REPO_SYNC_ADDRESS: repoSync.address,
      ODIN_LAUNCHER_ADDRESS: replicated
        ? anyOf(launchers.map((l) => l.address))
        : launchers[0]!.address,
      ODIN_DATA_PATH: data,
    };
    const schedulers: Replica[] = [];
    for (let i = 0; i < schedulerReplicas; i++) {
      schedulers.push(
        await startReplica("dag-scheduler", {
          ...schedulerEnv,
          ...(replicated ? {} : { ODIN_LAUNCHER_ADDRESS: launchers[i % replicas]!.address }),
        }),
      );
    }
    const gateway = await startService("gateway", {
      // Stacks run side by side (test packages in parallel): no fixed web UI port.
      ODIN_HTTP_PORT: "0",
      ...options.env,
      ODIN_REPO_SYNC_ADDRESS: repoSync.address,
      ODIN_REGISTRY_ADDRESS: registry.address,
      ODIN_SCHEDULER_ADDRESS: replicated
        ? anyOf(schedulers.map((s) => s.address))
        : (schedulers[0]?.address ?? "127.0.0.1:1"),
      ODIN_LAUNCHER_ADDRESS: replicated
        ? anyOf(launchers.map((l) => l.address))
        : launchers[0]!.address,
    });
    services.push(...launchers.map((l) => l.process), ...schedulers.map((s) => s.process), gateway);
    return {
      nats,
      cluster,
      replicas: replicaList,
      sim,
      tokens,
      services,
      repoSync: repoSyncs[0]!.process,
      registry,
      launchers: launchers.map((l) => l.process),
      schedulers: schedulers.map((s) => s.process),
      gateway,
      remote,
      schedulerEnv,
      seed,
      dir: dir.path,
      cli: (...args) =>
        odin(["--server", gateway.address, ...args], { env: { ODIN_TOKEN: tokens.operator } }),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

/** A running `odin server` and what it printed. */
export interface OdinServer {
  address: string;
  /** Its /metrics port, when started with --metrics-port. */
  metricsPort: number | undefined;
  /** The server's process id. */
  pid: number;
  output(): string;
  /** Signals the server (SIGTERM by default) and resolves once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `odin server --port 0 --http-port 0 …args` through the installed bin (the bundled CLI),
 * waits until it has printed its whole start-up message, and stops it with `stop`. Later
 * arguments win, so `args` may pick the ports.
 */
export function startOdinServer(
  args: string[],
  env: Record<string, string> = {},
): Promise<OdinServer> {
  const child = spawn(
    process.execPath,
    [odinBin, "server", "--port", "0", "--http-port", "0", ...args],
    {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m && /^try:/m.test(out)) {
        const metrics = /metrics: +http:\/\/[^:]+:(\d+)\/metrics/.exec(out);
        resolve({
          address: m[1]!,
          metricsPort: metrics ? Number(metrics[1]) : undefined,
          pid: child.pid!,
          output: () => out,
          stop: async (signal = "SIGTERM") => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            await exited;
          },
        });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then(() => reject(new Error(`odin server exited before it was ready: ${out}`)));
  });
}

/**
 * The standard grpc.health.v1 Check of one service name (`""`: the server itself) at an address,
 * without a token: SERVING, NOT_SERVING, or the gRPC error (NOT_FOUND for an unknown name).
 */
export function grpcHealth(address: string, service: string): Promise<string> {
  const Health = makeClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Health(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const check = (
      client as unknown as Record<
        string,
        (
          request: { service: string },
          options: { deadline: number },
          callback: (err: Error | null, response?: { status: string }) => void,
        ) => void
      >
    )["Check"]!;
    check.call(client, { service }, { deadline: Date.now() + 10_000 }, (err, response) => {
      client.close();
      if (err) reject(err);
      else resolve(response?.status ?? "");
    });
  });
}

/** The services a server lists through gRPC reflection, as `grpcurl list` does. */
export { reflectedServices } from "@odin/testing";

/** One scrape of a Prometheus endpoint: its families (from `# TYPE`) and each sample's value. */
export interface Scrape {
  /** Names of the metric families served. */
  families: Set<string>;
  /** Each sample's value by its name and labels as written (`odin_runs{state="RUNNING"}`). */
  samples: Map<string, number>;
}

/** Scrapes a Prometheus endpoint once. */
export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  const families = new Set<string>();
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) families.add(type[1]!);
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { families, samples };
}

/** The sum of every sample named `name` whose labels include all of `labels` (0 when none). */
export function metricSum(
  { samples }: Scrape,
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  for (const [key, value] of samples) {
    const brace = key.indexOf("{");
    if ((brace === -1 ? key : key.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}
