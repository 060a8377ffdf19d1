// `odin server --kube` against kube-sim: embedded mode with the Kubernetes backend, the way anyone
// tries the Kubernetes path without a cluster.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startKubeSim, type KubeSim } from "@odin/testing";
import { odin, repoRoot, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

let sim: KubeSim;
let server: OdinServer;
let address = "";
let dir: { path: string; cleanup(): Promise<void> };

before(async () => {
  dir = await tempDir("odin-e2e-kube-");
  sim = await startKubeSim({
    defaultRunMs: [5, 20],
    gpuNodes: [
      { name: "gpu-a", gpus: 4, product: "NVIDIA-A100-SXM4-80GB" },
      { name: "gpu-b", gpus: 8 },
    ],
  });
  sim.script({ image: "trainer:*", runForever: true });
  sim.script({ image: "busybox*", terminationMessage: '{"words": 7}', logs: ["ran on kube-sim"] });
  sim.script({ image: "stopper:*", terminationMessage: '{"odin": {"early_exit": true}}' });
  const kubeconfig = join(dir.path, "kubeconfig.json");
  await writeFile(kubeconfig, sim.kubeConfig().exportConfig());
  // A copy of the examples: `odin push` writes pushed pipelines back into the served directory.
  const repo = join(dir.path, "pipelines");
  await cp(join(repoRoot, "examples", "pipelines"), repo, { recursive: true });
  server = await startOdinServer(
    ["--kube", "--namespace", "trial", "--repo", repo, "--data", join(dir.path, "data")],
    { HOME: dir.path, KUBECONFIG: kubeconfig },
  );
  address = server.address;
  assert.match(
    server.output(),
    /tasks run on Kubernetes: context kube-sim \(http:\/\/127\.0\.0\.1:\d+\), namespace trial/,
  );
});

after(async () => {
  await server?.stop();
  await sim?.close();
  await dir?.cleanup();
});

test("the diamond example runs as pods in kube-sim, outputs passed through termination messages", async () => {
  const r = await odin(["--server", address, "run", "diamond", "--follow"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const runId = /^run (diamond-[a-z0-9]{8}):/m.exec(r.stdout)![1]!;
  const pods = sim.created("pods").filter((p) => p.metadata.labels?.["odin.dev/run"] === runId);
  assert.equal(pods.length, 4);
  assert.ok(pods.every((p) => p.metadata.namespace === "trial"));
  const logs = await odin(["--server", address, "logs", `${runId}--right`]);
  assert.equal(logs.stdout.trim(), "ran on kube-sim");
  const right = pods.find((p) => p.metadata.labels?.["odin.dev/task"] === "right") as unknown as {
    spec: { containers: { args: string[] }[] };
  };
  assert.ok(
    right.spec.containers[0]!.args.includes("7"),
    "^prepare.outputs.words was resolved from prepare's termination message",
  );
});

test("a pod whose termination message asks for an early exit ends the run SUCCEEDED", async () => {
  const local = join(dir.path, "work", "stopper");
  await mkdir(local, { recursive: true });
  await writeFile(
    join(local, "main.yml"),
    "name: stopper\ntasks:\n- {name: check, image: 'stopper:1', command: check}\n- {name: train, image: 'busybox:1', command: train, depends: check}\n",
  );
  const pushed = await odin(["--server", address, "push", local]);
  assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout);
  const r = await odin(["--server", address, "run", "stopper", "--follow"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCEEDED.*early exit requested by task "check"/);
  const runId = /^run (stopper-[a-z0-9]{8})/m.exec(r.stdout)![1]!;
  const train = await odin(["--server", address, "-o", "json", "status", `${runId}--train`]);
  assert.equal((JSON.parse(train.stdout) as { state: string }).state, "SKIPPED");
  const pods = sim.created("pods").filter((p) => p.metadata.labels?.["odin.dev/run"] === runId);
  assert.equal(pods.length, 1, "only the task that asked for the early exit ran");
});

test("odin gpus lists kube-sim's GPU nodes from the informers, with the Odin tasks holding GPUs", async () => {
  const local = join(dir.path, "work", "gputrain");
  await mkdir(local, { recursive: true });
  await writeFile(
    join(local, "main.yml"),
    "name: gputrain\ntasks:\n- {name: train, image: 'trainer:1', command: train, num_gpus: 3}\n",
  );
  const pushed = await odin(["--server", address, "push", local]);
  assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout);
  const started = await odin(["--server", address, "run", "gputrain"]);
  assert.equal(started.code, 0, started.stderr);
  const runId = started.stdout.trim();
  type Listed = {
    backend: string;
    nodes: {
      name: string;
      allocated: number;
      free: number;
      tasks?: { task: string; gpus: number }[];
    }[];
  };
  let listed: Listed | undefined;
  for (let i = 0; i < 200; i++) {
    const r = await odin(["--server", address, "-o", "json", "gpus"]);
    assert.equal(r.code, 0, r.stderr);
    listed = JSON.parse(r.stdout) as Listed;
    if (listed.nodes.some((n) => (n.allocated ?? 0) > 0)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(listed!.backend, "kubernetes");
  assert.deepEqual(
    listed!.nodes.map((n) => [n.name, n.allocated ?? 0, n.free ?? 0]),
    [
      ["gpu-a", 3, 1],
      ["gpu-b", 0, 8],
    ],
  );
  assert.deepEqual(
    listed!.nodes[0]!.tasks!.map((t) => [t.task, t.gpus]),
    [["train", 3]],
  );
  const text = await odin(["--server", address, "gpus"]);
  assert.match(text.stdout, /^NODE\s+GPU\s+TYPE/);
  assert.match(
    text.stdout,
    new RegExp(
      `gpu-a\\s+4\\s+NVIDIA-A100-SXM4-80GB\\s+4\\s+3\\s+1\\s+Ready\\s+${runId}--train\\(3\\)`,
    ),
  );
  const all = await odin(["--server", address, "gpus", "--all"]);
  assert.match(all.stdout, /kube-sim-node\s+0/);
  await odin(["--server", address, "cancel", runId]);
});
