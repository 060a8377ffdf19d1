// dag-scheduler reliability with real processes: SIGKILLed mid-run and restarted, and two replicas
// sharing 50 runs — counted by the pods kube-sim received.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DagSchedulerServiceClient, common } from "@odin/proto";
import { createClient, unary } from "@odin/service-kit";
import { startKubeSim, startNats, type KubeSim, type NatsServer } from "@odin/testing";
import { eventually, startService, tempDir, writeTokens, type ServiceProcess } from "./harness.js";

function wide(name: string, width: number): string {
  let yaml = `name: ${name}\ntasks:\n- {name: root, image: 'work:1', command: run}\n`;
  for (let i = 0; i < width; i++)
    yaml += `- {name: w${i}, image: 'work:1', command: run, depends: root}\n`;
  for (let i = 0; i < width; i++)
    yaml += `- {name: v${i}, image: 'work:1', command: run, depends: w${i}}\n`;
  yaml += `- {name: join, image: 'work:1', command: run, depends: [${Array.from({ length: width }, (_, i) => `v${i}`).join(", ")}]}\n`;
  return yaml;
}

describe("dag-scheduler survives SIGKILL and shares work between replicas", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let nats: NatsServer;
  let sim: KubeSim;
  let tokens: Awaited<ReturnType<typeof writeTokens>>;
  const services: ServiceProcess[] = [];
  let schedulerEnv: Record<string, string>;

  before(async () => {
    dir = await tempDir("odin-e2e-reliability-");
    nats = await startNats({ runtime: "binary" });
    sim = await startKubeSim({ defaultRunMs: [20, 80] });
    const kubeconfig = join(dir.path, "kubeconfig.json");
    await writeFile(kubeconfig, sim.kubeConfig().exportConfig());
    tokens = await writeTokens(dir.path);
    const remote = join(dir.path, "remote.git");
    const seed = join(dir.path, "seed");
    execFileSync("git", ["init", "-q", "--bare", "--initial-branch=main", remote]);
    execFileSync("git", ["clone", "-q", remote, seed], { stdio: "pipe" });
    for (const [name, text] of Object.entries({
      wide: wide("wide", 20),
      small: wide("small", 2),
    })) {
      await mkdir(join(seed, name), { recursive: true });
      await writeFile(join(seed, name, "main.yml"), text);
    }
    const g = (...a: string[]) =>
      execFileSync("git", ["-C", seed, "-c", "user.name=x", "-c", "user.email=x@y", ...a]);
    g("add", "-A");
    g("commit", "-qm", "pipelines");
    g("push", "-q", "origin", "HEAD:main");
    const common = {
      ODIN_TOKENS_FILE: tokens.file,
      ODIN_NATS_URL: nats.url,
      ODIN_SERVICE_TOKEN: tokens.admin,
    };
    const repoSync = await startService("repo-sync", {
      ...common,
      ODIN_REPO_URL: remote,
      ODIN_ROOT_PATH: join(dir.path, "root"),
      ODIN_SYNC_INTERVAL_SECONDS: "0",
    });
    const registry = await startService("pipeline-registry", {
      ...common,
      ODIN_REPO_SYNC_ADDRESS: repoSync.address,
    });
    const launcher = await startService("k8s-launcher", {
      ...common,
      ODIN_KUBECONFIG: kubeconfig,
      ODIN_DATA_PATH: join(dir.path, "data"),
      ODIN_RESOURCE_TYPES: "Pod",
    });
    services.push(repoSync, registry, launcher);
    schedulerEnv = {
      ...common,
      ODIN_REGISTRY_ADDRESS: registry.address,
      ODIN_REPO_SYNC_ADDRESS: repoSync.address,
      ODIN_LAUNCHER_ADDRESS: launcher.address,
      ODIN_DATA_PATH: "/data/odin",
    };
  });

  after(async () => {
    for (const s of services.reverse()) await s.stop("SIGKILL");
    await sim?.close();
    await nats?.stop();
    await dir?.cleanup();
  });

  function client(s: ServiceProcess) {
    return createClient(DagSchedulerServiceClient, {
      address: s.address,
      token: tokens.operator,
      retries: 4,
    });
  }

  async function state(s: ServiceProcess, runId: string): Promise<common.RunState> {
    const c = client(s);
    try {
      return (await unary(c, "getRun", { runId, taskPageSize: 1, taskPageToken: "" })).run!.state;
    } finally {
      c.close();
    }
  }

  /** Pods kube-sim received per run/task, across all attempts: every value must be 1. */
  function podsPerTask(runIds: readonly string[]): Map<string, number> {
    const out = new Map<string, number>();
    for (const p of sim.created("pods")) {
      const l = p.metadata.labels ?? {};
      const run = l["odin.dev/run"];
      if (!run || !runIds.includes(run)) continue;
      const key = `${run}/${l["odin.dev/task"]}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
    return out;
  }

  test("killed with SIGKILL at several points of a run and restarted, the scheduler finishes it with each task launched once", async () => {
    let scheduler = await startService("dag-scheduler", schedulerEnv);
    services.push(scheduler);
    const c = client(scheduler);
    const run = (
      await unary(c, "submitRun", {
        pipeline: "wide",
        commit: "",
        labels: {},
        requestId: "kill-test",
      })
    ).run!;
    c.close();
    for (const delay of [150, 400, 250]) {
      await new Promise((r) => setTimeout(r, delay));
      await scheduler.stop("SIGKILL");
      scheduler = await startService("dag-scheduler", schedulerEnv);
      services.push(scheduler);
    }
    await eventually(
      async () => (await state(scheduler, run.id)) === common.RunState.RUN_STATE_SUCCEEDED,
      60_000,
      "the run SUCCEEDED",
    );
    const pods = podsPerTask([run.id]);
    assert.equal(pods.size, 42, "every task ran");
    assert.deepEqual(
      [...pods].filter(([, n]) => n !== 1),
      [],
      "none twice",
    );
  });

  test("two replicas running 50 runs together: every run succeeds, no task launched twice", async () => {
    const a = await startService("dag-scheduler", schedulerEnv);
    const b = await startService("dag-scheduler", schedulerEnv);
    services.push(a, b);
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const c = client(i % 2 ? a : b);
        try {
          ids.push(
            (
              await unary(c, "submitRun", {
                pipeline: "small",
                commit: "",
                labels: {},
                requestId: `many-${i}`,
              })
            ).run!.id,
          );
        } finally {
          c.close();
        }
      }),
    );
    assert.equal(new Set(ids).size, 50);
    await eventually(
      async () => {
        for (const id of ids)
          if ((await state(a, id)) !== common.RunState.RUN_STATE_SUCCEEDED) return false;
        return true;
      },
      120_000,
      "all 50 runs SUCCEEDED",
    );
    const pods = podsPerTask(ids);
    assert.equal(pods.size, 50 * 6);
    assert.deepEqual(
      [...pods].filter(([, n]) => n !== 1),
      [],
    );
  });
});
