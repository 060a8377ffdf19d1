// Early exit, run data, the GPU inventory and templated pipelines in the production shape: the
// services as processes behind the gateway, NATS, kube-sim with GPU nodes; the CLI talks only to
// the gateway.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventually, startStack, type Stack } from "@odin/test-stack";

const pipelines = {
  stopper: {
    "main.yml": `name: stopper
tasks:
- {name: check, image: "stopper:1", command: check}
- {name: train, image: "busybox:1.36", command: train, depends: check}
`,
  },
  tpl: {
    "main.yml": `name: tpl
parameters:
  lr: {type: number, default: 0.1}
tasks:
- {name: train, image: "tplshow:1", command: train, args: [--config, "\${WORK_PATH}/conf.yml"]}
`,
    "conf.yml.jinja2": "lr: {{ lr }}\n",
  },
  gputrain: {
    "main.yml": `name: gputrain
tasks:
- {name: train, image: "trainer:1", command: train, num_gpus: 2}
`,
  },
};

let stack: Stack;
const cli = (...args: string[]) => stack.cli(...args);

before(async () => {
  stack = await startStack(pipelines, {
    simOptions: {
      defaultRunMs: [5, 20],
      gpuNodes: [{ name: "gpu-a", gpus: 8, product: "NVIDIA-H100" }],
    },
  });
  stack.sim.script({ image: "stopper:*", terminationMessage: '{"odin": {"early_exit": true}}' });
  stack.sim.script({ image: "trainer:*", runForever: true });
  stack.sim.script({ image: "tplshow:*", runForever: true });
  await eventually(async () => (await cli("ls")).stdout.includes("stopper"), 15_000, "odin ls");
});

after(async () => {
  await stack?.stop();
});

test("a pod's early exit ends the run SUCCEEDED through the deployed services", async () => {
  const r = await cli("run", "stopper", "--follow");
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /SUCCEEDED.*early exit requested by task "check"/);
  const runId = /^run (stopper-[a-z0-9]{8})/m.exec(r.stdout)![1]!;
  const json = JSON.parse((await cli("-o", "json", "status", runId)).stdout) as {
    run: { reason: string };
    tasks: { task: string; state: string }[];
  };
  assert.equal(json.run.reason, 'early exit requested by task "check"');
  assert.equal(json.tasks.find((t) => t.task === "train")!.state, "SKIPPED");
});

test("odin data reads RUN_PATH on the launcher's volume through the gateway", async () => {
  const r = await cli("run", "stopper", "--follow");
  const runId = /^run (stopper-[a-z0-9]{8})/m.exec(r.stdout)![1]!;
  // What the task's pod would have written on the shared data volume.
  const taskDir = join(stack.dir, "data", runId, "check");
  await mkdir(taskDir, { recursive: true });
  await writeFile(join(taskDir, "result.txt"), "best model: m7\n");
  const listed = await cli("data", runId, "--recursive");
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /check\/result\.txt\s+file\s+15 B/);
  const to = join(stack.dir, "downloaded");
  const got = await cli("data", runId, "check", "--download", "--to", to);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(await readFile(join(to, "check", "result.txt"), "utf8"), "best model: m7\n");
  const out = await cli("data", runId, "../../..");
  assert.equal(out.code, 1);
  assert.match(out.stderr, /contains "\.\.": only paths inside the run's RUN_PATH/);
});

test("odin gpus lists kube-sim's GPU node and the task holding GPUs, through the gateway", async () => {
  const started = await cli("run", "gputrain");
  assert.equal(started.code, 0, started.stderr);
  const runId = started.stdout.trim();
  await eventually(
    async () => (await cli("gpus")).stdout.includes(`${runId}--train(2)`),
    30_000,
    "the task in odin gpus",
  );
  const text = (await cli("gpus")).stdout;
  assert.match(text, /gpu-a\s+8\s+NVIDIA-H100\s+8\s+2\s+6\s+Ready/);
  await cli("cancel", runId);
});

test("a templated pipeline's pod is given the config repo-sync rendered for its run", async () => {
  const started = await cli("run", "tpl", "--set", "lr=0.25");
  assert.equal(started.code, 0, started.stderr);
  const runId = started.stdout.trim();
  const podArgs = (): string[] => {
    const pod = stack.sim
      .objects("pods")
      .find((p) => p.metadata.labels?.["odin.dev/run"] === runId) as
      { spec?: { containers?: { args?: string[] }[] } } | undefined;
    return pod?.spec?.containers?.[0]?.args ?? [];
  };
  await eventually(() => Promise.resolve(podArgs().length > 0), 30_000, "the task's pod");
  const args = podArgs();
  // The path as pods see it on the shared volume, where repo-sync wrote the rendering.
  const config = args[1]!;
  assert.match(config, new RegExp(`/renders/[0-9a-f]{40}/${runId}/conf\\.yml$`));
  assert.equal(await readFile(config, "utf8"), "lr: 0.25\n");
  assert.equal((await cli("cancel", runId)).code, 0);
  await eventually(
    () =>
      access(config).then(
        () => false,
        () => true,
      ),
    30_000,
    "the rendering removed when the run ended",
  );
});
