// Failover times, measured on real processes: a 3-node NATS JetStream cluster on loopback and two
// repo-sync replicas sharing one root (lease TTL ODIN_LEADER_LEASE_SECONDS, default 5). Each of
// BENCH_ROUNDS (5) rounds SIGKILLs
//   - the repo-sync leader, then pushes through the survivor until a push succeeds: the time from
//     the kill to the first successful push (what a user running `odin push` waits, at most);
//   - the NATS node leading the run-state bucket (3 copies), then updates a key until it works:
//     the time from the kill to the first successful write;
// and restarts what it killed. Prints JSON with each round's figures and their median and max.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsServers } from "@odin/events";
import { RepoSyncServiceClient } from "@odin/proto";
import { NatsKeyValueStore } from "@odin/run-store";
import { createClient, unary } from "@odin/service-kit";
import { startNatsCluster } from "@odin/testing";

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const leaseSeconds = process.env.ODIN_LEADER_LEASE_SECONDS ?? "5";
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const round = (x: number) => Math.round(x);
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});
const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return {
    ms: xs.map(round),
    median: round(s[Math.floor(s.length / 2)] ?? NaN),
    max: round(s[s.length - 1] ?? NaN),
  };
};

const dir = mkdtempSync(join(tmpdir(), "odin-bench-failover-"));
const cluster = await startNatsCluster({ nodes: 3 });
const remote = join(dir, "remote.git");
const seed = join(dir, "seed");
execFileSync("git", ["init", "-q", "--bare", "--initial-branch=main", remote]);
execFileSync("git", ["clone", "-q", remote, seed], { stdio: "pipe" });
execFileSync("git", [
  "-C",
  seed,
  "-c",
  "user.name=b",
  "-c",
  "user.email=b@b",
  "commit",
  "-q",
  "--allow-empty",
  "-m",
  "seed",
]);
execFileSync("git", ["-C", seed, "push", "-q", "origin", "HEAD:main"], { stdio: "pipe" });

const [portA, portB] = [await freePort(), await freePort()];
async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a repo-sync on a fixed port and waits for its ready line. */
function repoSync(port: number): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [join(repoRoot, "apps/repo-sync/dist/main.js")], {
    env: {
      PATH: process.env.PATH ?? "",
      ODIN_AUTH: "off",
      ODIN_GRPC_HOST: "127.0.0.1",
      ODIN_GRPC_PORT: String(port),
      ODIN_METRICS_PORT: "0",
      ODIN_NATS_URL: cluster.url,
      ODIN_NATS_REPLICAS: "3",
      ODIN_REPO_URL: remote,
      ODIN_ROOT_PATH: join(dir, "root"),
      ODIN_SYNC_INTERVAL_SECONDS: "0",
      ODIN_LEADER_LEASE_SECONDS: leaseSeconds,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(proc);
  proc.once("exit", () => children.delete(proc));
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('"msg":"repo-sync ready"')) {
        proc.stderr.off("data", onData);
        proc.stderr.resume();
        proc.stdout.resume();
        resolve(proc);
      }
    };
    proc.stderr.on("data", onData);
    proc.once("exit", (code) => reject(new Error(`repo-sync exited with ${code}:\n${out}`)));
  });
}

const replicas = new Map<number, ChildProcess>([
  [portA, await repoSync(portA)],
  [portB, await repoSync(portB)],
]);
const leases = await NatsKeyValueStore.connect({
  servers: cluster.url,
  bucket: "odin-leases",
  replicas: 3,
});
const runState = await NatsKeyValueStore.connect({
  servers: cluster.url,
  bucket: "odin-run-state",
  replicas: 3,
  timeoutMs: 1000,
});

async function leaderPort(): Promise<number> {
  for (;;) {
    const entry = await leases.get("repo-sync.leader").catch(() => undefined);
    if (entry) {
      const address = (JSON.parse(new TextDecoder().decode(entry.value)) as { address: string })
        .address;
      const port = Number(address.split(":").pop());
      if (replicas.has(port)) return port;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const pushMs: number[] = [];
const natsMs: number[] = [];
let pushes = 0;
for (let i = 0; i < rounds; i++) {
  // The repo-sync leader dies; a push goes to the survivor until it is accepted.
  const dead = await leaderPort();
  const survivor = dead === portA ? portB : portA;
  const client = createClient(RepoSyncServiceClient, {
    address: `127.0.0.1:${survivor}`,
    retries: 0,
  });
  const requestId = `failover-${i}`;
  const content = Buffer.from(`name: p${i}\ntasks:\n- {name: a, image: 'x:1', command: run}\n`);
  replicas.get(dead)!.kill("SIGKILL");
  const killedAt = performance.now();
  for (;;) {
    try {
      await unary(
        client,
        "push",
        {
          pipeline: `p${i}`,
          files: [{ path: "main.yml", content }],
          replace: true,
          message: `p${i}`,
          requestId,
        },
        { deadlineMs: 30_000 },
      );
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  pushMs.push(performance.now() - killedAt);
  pushes++;
  client.close();
  replicas.set(dead, await repoSync(dead));

  // The NATS node leading the run-state bucket dies; a write goes on until it is accepted.
  const nc = await connect({ servers: natsServers(cluster.url) });
  const leader = (await (await jetstreamManager(nc)).streams.info("KV_odin-run-state")).cluster
    ?.leader;
  await nc.close();
  const node = cluster.nodes.find((n) => n.name === leader)!;
  await node.kill("SIGKILL");
  const natsKilledAt = performance.now();
  for (;;) {
    try {
      await runState.put("runs.bench", new TextEncoder().encode(String(i)));
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  natsMs.push(performance.now() - natsKilledAt);
  await node.restart();
}

const history = execFileSync("git", ["--git-dir", remote, "log", "--format=%s", "main"], {
  encoding: "utf8",
});
const inHistory = Array.from(
  { length: pushes },
  (_, i) => history.split("\n").filter((l) => l === `p${i}`).length,
);
process.stdout.write(
  JSON.stringify(
    {
      benchmark: `failover on loopback: 3-node NATS cluster, 2 repo-syncs (lease ${leaseSeconds} s), ${rounds} rounds`,
      repoSyncLeaderKilledToPushAcceptedMs: summary(pushMs),
      natsLeaderNodeKilledToWriteAcceptedMs: summary(natsMs),
      pushesInRemoteHistoryOnce: inHistory.every((n) => n === 1),
    },
    null,
    2,
  ) + "\n",
);
await leases.close();
await runState.close();
for (const c of children) c.kill("SIGTERM");
await cluster.stop();
rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
process.exit(0);
