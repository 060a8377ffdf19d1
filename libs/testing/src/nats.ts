// A private JetStream-enabled NATS server per test suite: a container where a container runtime
// exists, otherwise the local `nats-server` binary on a free port. Never skipped silently.
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type * as Testcontainers from "testcontainers";

/** A NATS server for one test suite. */
export interface NatsServer {
  /** Client URL, e.g. `nats://127.0.0.1:41234`. */
  readonly url: string;
  /** Client port. */
  readonly port: number;
  /** How it runs: a container, a local child process, or an external server from `NATS_URL`. */
  readonly via: "container" | "binary" | "external";
  /** JetStream storage directory of a local `nats-server` (removed by `stop`); else undefined. */
  readonly dataDir: string | undefined;
  /** Stops it and removes its storage; idempotent. A no-op for an external server. */
  stop(): Promise<void>;
  /**
   * Kills the server (SIGKILL) but keeps its port and storage, to `resume` later: an outage.
   * Local `nats-server` only.
   */
  pause(): Promise<void>;
  /** Starts a paused server again on the same port, with its storage or (`wipeStore`) without. */
  resume(options?: { wipeStore?: boolean }): Promise<void>;
}

/** Options of `startNats`. */
export interface StartNatsOptions {
  /** `auto` (default): container if a runtime exists, else the binary. */
  runtime?: "auto" | "container" | "binary";
  /** Use the server in the `NATS_URL` environment variable when it is set (default false). */
  useEnvUrl?: boolean;
  /** Path of the `nats-server` binary (default: found on PATH, /usr/sbin, /usr/local/bin). */
  binary?: string;
  /** Container image (default `nats:2.10-alpine`). */
  image?: string;
  /** How long to wait for the server to accept connections, in ms (default 15,000). */
  startupTimeoutMs?: number;
}

/** Thrown when neither a container runtime nor a nats-server binary is available. */
export class NatsUnavailableError extends Error {
  override readonly name = "NatsUnavailableError";
}

const INSTALL_HINT =
  "Install the NATS server: on Debian/Ubuntu `sudo apt-get install -y nats-server` " +
  "(puts /usr/sbin/nats-server), or download it from https://github.com/nats-io/nats-server/releases " +
  "and put it on PATH; or start Docker/Podman so a container can be used.";

/** Starts a private JetStream-enabled NATS server and waits until JetStream answers. */
export async function startNats(options: StartNatsOptions = {}): Promise<NatsServer> {
  const timeoutMs = options.startupTimeoutMs ?? 15_000;
  if (options.useEnvUrl === true) {
    const envUrl = process.env["NATS_URL"];
    if (envUrl !== undefined && envUrl !== "") {
      await waitForJetStream(envUrl, timeoutMs);
      const port = Number(new URL(envUrl.replace(/^nats:/, "http:")).port || 4222);
      return {
        url: envUrl,
        port,
        via: "external",
        dataDir: undefined,
        stop: () => Promise.resolve(),
        pause: () => Promise.reject(new Error("cannot pause an external NATS server")),
        resume: () => Promise.reject(new Error("cannot resume an external NATS server")),
      };
    }
  }
  const runtime = options.runtime ?? "auto";
  if (runtime !== "binary") {
    const tc = await import("testcontainers");
    let available = true;
    try {
      await tc.getContainerRuntimeClient();
    } catch (error) {
      available = false;
      if (runtime === "container") {
        throw new NatsUnavailableError(
          `no container runtime: ${(error as Error).message}. ${INSTALL_HINT}`,
          { cause: error },
        );
      }
    }
    if (available) return startContainer(tc, options.image ?? "nats:2.10-alpine", timeoutMs);
  }
  const binary = options.binary ?? (await findBinary());
  if (binary === undefined) {
    throw new NatsUnavailableError(
      `cannot start NATS for tests: no container runtime and no nats-server binary on PATH, /usr/sbin or /usr/local/bin. ${INSTALL_HINT}`,
    );
  }
  return startBinary(binary, timeoutMs);
}

type Testcontainers = typeof Testcontainers;

async function startContainer(
  tc: Testcontainers,
  image: string,
  timeoutMs: number,
): Promise<NatsServer> {
  const container = await new tc.GenericContainer(image)
    .withCommand(["-js"])
    .withExposedPorts(4222)
    .withWaitStrategy(tc.Wait.forLogMessage(/Server is ready/))
    .withStartupTimeout(timeoutMs)
    .start();
  const port = container.getMappedPort(4222);
  const url = `nats://${container.getHost()}:${port}`;
  try {
    await waitForJetStream(url, timeoutMs);
  } catch (error) {
    await container.stop();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    via: "container",
    dataDir: undefined,
    stop: () => (stopping ??= container.stop().then(() => undefined)),
    pause: () => Promise.reject(new Error("pause needs the local nats-server (runtime: binary)")),
    resume: () => Promise.reject(new Error("resume needs the local nats-server (runtime: binary)")),
  };
}

async function findBinary(): Promise<string | undefined> {
  const dirs = [
    ...(process.env["PATH"] ?? "").split(delimiter),
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/bin",
  ];
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, "nats-server");
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const LISTENING = /Listening for client connections on [^\s]*?:(\d+)/;

async function startBinary(binary: string, timeoutMs: number): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "odin-nats-"));
  const store = join(dir, "store");
  const launch = (port: number) =>
    spawn(binary, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  let child = launch(-1);
  let port: number;
  try {
    port = await readPort(child, timeoutMs);
    await waitForJetStream(`nats://127.0.0.1:${port}`, timeoutMs);
  } catch (error) {
    await stopper(child, dir)();
    throw error;
  }
  let stop = stopper(child, dir);
  const killChild = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    via: "binary",
    dataDir: dir,
    stop: () => stop(),
    pause: killChild,
    resume: async (options = {}) => {
      await killChild();
      if (options.wipeStore === true) await rm(store, { recursive: true, force: true });
      child = launch(port);
      stop = stopper(child, dir);
      await readPort(child, timeoutMs);
      await waitForJetStream(`nats://127.0.0.1:${port}`, timeoutMs);
    },
  };
}

function readPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = "";
    const finish = (error: Error | undefined, port?: number): void => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
      child.off("error", onError);
      // Keep draining the pipes so a chatty server never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
      if (error !== undefined) reject(error);
      else resolve(port ?? 0);
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString("utf8");
      const m = LISTENING.exec(output);
      if (m?.[1] !== undefined) finish(undefined, Number(m[1]));
    };
    const onExit = (code: number | null, signal: string | null): void =>
      finish(
        new Error(`nats-server exited (${code ?? signal ?? "?"}) before listening:\n${output}`),
      );
    const onError = (error: Error): void =>
      finish(
        new NatsUnavailableError(`cannot run nats-server: ${error.message}. ${INSTALL_HINT}`, {
          cause: error,
        }),
      );
    const timer = setTimeout(
      () =>
        finish(new Error(`nats-server did not report its port within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", onExit);
    child.on("error", onError);
  });
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    })());
}

async function waitForJetStream(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const nc = await connect({ servers: url.split(","), timeout: 1000, reconnect: false });
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2000 });
        await jsm.getAccountInfo();
        return;
      } finally {
        await nc.close();
      }
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(
    `NATS at ${url} did not offer JetStream within ${timeoutMs} ms: ${String(lastError)}`,
  );
}

/** One node of a test NATS cluster; it keeps its ports and storage across kills and restarts. */
export interface NatsClusterNode {
  /** Server name (`n1`, `n2`, …). */
  readonly name: string;
  /** Client URL of this node. */
  readonly url: string;
  /** Whether the node's process is running. */
  readonly running: boolean;
  /** Sends a signal (default SIGKILL) and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the node again with the same name, ports and storage; waits until it listens. */
  restart(): Promise<void>;
}

/** A JetStream cluster of local `nats-server` processes on loopback, for failure tests. */
export interface NatsCluster {
  /** Every node's client URL, comma-separated (what `ODIN_NATS_URL` takes). */
  readonly url: string;
  readonly nodes: readonly NatsClusterNode[];
  /** Stops every node and removes their storage; idempotent. */
  stop(): Promise<void>;
}

/** Free TCP ports on 127.0.0.1 (bound, then released, so a server started next can take them). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/**
 * Starts a JetStream cluster of `nodes` (default 3) `nats-server` processes on loopback, each with
 * its own client and route port and store directory, routed to each other, and waits until the
 * cluster has a JetStream meta leader (streams can be created).
 */
export async function startNatsCluster(
  options: { nodes?: number; binary?: string; startupTimeoutMs?: number } = {},
): Promise<NatsCluster> {
  const count = options.nodes ?? 3;
  const timeoutMs = options.startupTimeoutMs ?? 30_000;
  const binary = options.binary ?? (await findBinary());
  if (binary === undefined) {
    throw new NatsUnavailableError(
      `cannot start a NATS cluster: no nats-server binary. ${INSTALL_HINT}`,
    );
  }
  const root = await mkdtemp(join(tmpdir(), "odin-nats-cluster-"));
  const ports = await freePorts(count * 2);
  const clientPorts = ports.slice(0, count);
  const routePorts = ports.slice(count);
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const nodes = clientPorts.map((port, i) => {
    const name = `n${i + 1}`;
    const args = [
      ...["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", join(root, name)],
      ...["--server_name", name, "--cluster_name", "odin-test"],
      ...["--cluster", `nats://127.0.0.1:${routePorts[i]}`, "--routes", routes],
    ];
    let child: ChildProcess | undefined;
    const start = async (): Promise<void> => {
      const c = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
      child = c;
      await readPort(c, timeoutMs);
    };
    const node = {
      name,
      url: `nats://127.0.0.1:${port}`,
      get running() {
        return child !== undefined && child.exitCode === null && child.signalCode === null;
      },
      async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
        const c = child;
        if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
        c.kill(signal);
        await exited;
      },
      async restart(): Promise<void> {
        await node.kill();
        await start();
      },
      start,
    };
    return node;
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(nodes.map((n) => n.kill("SIGTERM")));
      await rm(root, { recursive: true, force: true });
    })());
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await waitForJetStream(nodes.map((n) => n.url).join(","), timeoutMs);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: nodes.map((n) => n.url).join(","),
    nodes,
    stop,
  };
}
