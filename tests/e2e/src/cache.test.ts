// The task cache end to end through the real CLI: `odin server` with local processes (files hashed
// on its own filesystem), and `odin server --kube` against kube-sim (the image digest read from
// the pods' imageID).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startKubeSim, type KubeSim } from "@odin/testing";
import { eventually, odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

const pipeline = `name: cached
tasks:
- name: prep
  image: busybox
  command: sh
  args: [-c, 'mkdir -p \${TASK_PATH} && cat \${DATA_PATH}/in/a.txt > \${TASK_PATH}/data.txt']
  inputs: ['\${DATA_PATH}/in/a.txt']
  outputs: {data: '\${TASK_PATH}/data.txt'}
- name: train
  image: busybox
  command: sh
  args: [-c, 'mkdir -p \${TASK_PATH} && (cat \${RUN_PATH}/prep/data.txt; echo trained) > \${TASK_PATH}/model.txt && echo "{\\"model\\": \\"\${TASK_PATH}/model.txt\\"}" > \${TASK_PATH}/outputs.json']
  depends: [prep]
  outputs: {model: '\${TASK_PATH}/model.txt'}
`;

interface TaskJson {
  task: string;
  state: string;
  reason?: string;
  cachedFrom?: { runId: string; attempt: number; key: string };
}

describe("odin server (local processes)", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let server: OdinServer;
  let data = "";
  const cli = (args: string[]) => odin(["--server", server.address, ...args]);

  before(async () => {
    dir = await tempDir("odin-e2e-cache-");
    const repo = join(dir.path, "pipelines");
    data = join(dir.path, "data");
    await mkdir(join(repo, "cached"), { recursive: true });
    await writeFile(join(repo, "cached", "main.yml"), pipeline);
    await mkdir(join(data, "in"), { recursive: true });
    await writeFile(join(data, "in", "a.txt"), "input v1\n");
    server = await startOdinServer(["--repo", repo, "--data", data]);
  });
  after(async () => {
    await server?.stop();
    await dir?.cleanup();
  });

  /** Runs the pipeline to its end; its id, its tasks, and the lines `--follow` printed. */
  async function run(
    extra: string[] = [],
  ): Promise<{ id: string; tasks: Map<string, TaskJson>; out: string }> {
    const r = await cli(["run", "cached", "--follow", ...extra]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const id = /^run (cached-[a-z0-9]{8})/m.exec(r.stdout)![1]!;
    const status = await cli(["-o", "json", "status", id]);
    const tasks = (JSON.parse(status.stdout) as { tasks: TaskJson[] }).tasks;
    // A launched task's result is recorded just after it succeeded.
    const launched = tasks.filter((t) => !t.cachedFrom).length;
    if (launched > 0)
      await eventually(
        async () => (await entries()).filter((e) => e.runId === id).length >= launched,
        30_000,
        "the run's results recorded",
      );
    return { id, tasks: new Map(tasks.map((t) => [t.task, t])), out: r.stdout };
  }

  async function entries(): Promise<{ key: string; task: string; runId: string }[]> {
    const r = await cli(["-o", "json", "cache", "ls"]);
    assert.equal(r.code, 0, r.stderr);
    return (
      (JSON.parse(r.stdout) as { entries?: { key: string; task: string; runId: string }[] })
        .entries ?? []
    );
  }

  test("a second run reuses both tasks, shows where from, and finds the outputs in its own RUN_PATH", async () => {
    const first = await run();
    assert.ok([...first.tasks.values()].every((t) => t.state === "SUCCEEDED" && !t.cachedFrom));
    await eventually(async () => (await entries()).length === 2, 30_000, "two cache entries");

    const second = await run();
    for (const name of ["prep", "train"]) {
      const t = second.tasks.get(name)!;
      assert.equal(t.state, "SUCCEEDED");
      assert.equal(t.reason, "Cached");
      assert.equal(t.cachedFrom?.runId, first.id);
    }
    assert.match(second.out, new RegExp(`prep SUCCEEDED \\(cached from ${first.id}\\)`));
    assert.match(second.out, /SUCCEEDED.*: 2 succeeded \(2 cached\)/);
    // The cached outputs are linked where this run's tasks would have written them.
    const model = await readFile(join(data, second.id, "train", "model.txt"), "utf8");
    assert.equal(model, "input v1\ntrained\n");
    const table = await cli(["status", second.id]);
    assert.match(table.stdout, new RegExp(`Cached: cached from run ${first.id}`));
    const ls = await cli(["cache", "ls"]);
    assert.match(ls.stdout, /KEY\s+PIPELINE\s+TASK\s+FROM RUN/);
    assert.match(ls.stdout, new RegExp(`cached\\s+train\\s+${first.id}`));
  });

  test("one byte of an input changes: both run again (train's upstream output changed)", async () => {
    await writeFile(join(data, "in", "a.txt"), "input v2\n");
    const r = await run();
    assert.equal(r.tasks.get("prep")!.cachedFrom, undefined);
    assert.equal(r.tasks.get("train")!.cachedFrom, undefined);
    const again = await run();
    assert.equal(again.tasks.get("prep")!.cachedFrom?.runId, r.id);
    assert.equal(again.tasks.get("train")!.cachedFrom?.runId, r.id);

    // An output file of the source run deleted: that task runs again; its upstream is reused.
    await rm(join(data, r.id, "train", "model.txt"));
    const third = await run();
    assert.equal(third.tasks.get("prep")!.cachedFrom?.runId, r.id);
    assert.equal(third.tasks.get("train")!.cachedFrom, undefined);
  });

  test("--no-cache runs everything; odin cache rm forgets results", async () => {
    const r = await run(["--no-cache"]);
    assert.ok([...r.tasks.values()].every((t) => !t.cachedFrom));
    const usage = await cli(["cache", "rm"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /say which results to forget/);
    const removed = await cli(["cache", "rm", "--all"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /^\d+ cached results? removed$/m);
    assert.equal((await entries()).length, 0);
    const after = await run();
    assert.ok([...after.tasks.values()].every((t) => !t.cachedFrom));
  });
});

describe("odin server --kube against kube-sim", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let sim: KubeSim;
  let server: OdinServer;
  let data = "";
  const cli = (args: string[]) => odin(["--server", server.address, ...args]);
  const pods = (run: string) =>
    sim.created("pods").filter((p) => p.metadata.labels?.["odin.dev/run"] === run).length;

  before(async () => {
    dir = await tempDir("odin-e2e-cache-kube-");
    data = join(dir.path, "data");
    const repo = join(dir.path, "pipelines");
    // Pods in kube-sim write no files: the output is a file the test makes on the data volume.
    await mkdir(join(repo, "kcache"), { recursive: true });
    await writeFile(
      join(repo, "kcache", "main.yml"),
      `name: kcache
tasks:
- name: train
  image: registry.example/train:latest
  command: [train]
  args: [--epochs, "3"]
  outputs: {model: '\${DATA_PATH}/models/model.bin'}
`,
    );
    await mkdir(join(repo, "other"), { recursive: true });
    await writeFile(
      join(repo, "other", "main.yml"),
      `name: other
tasks:
- name: probe
  image: registry.example/train:latest
  command: [true]
`,
    );
    await mkdir(join(data, "models"), { recursive: true });
    await writeFile(join(data, "models", "model.bin"), "weights");
    sim = await startKubeSim({ defaultRunMs: [5, 20] });
    const kubeconfig = join(dir.path, "kubeconfig.json");
    await writeFile(kubeconfig, sim.kubeConfig().exportConfig());
    server = await startOdinServer(
      ["--kube", "--namespace", "cache", "--repo", repo, "--data", data],
      { HOME: dir.path, KUBECONFIG: kubeconfig },
    );
  });
  after(async () => {
    await server?.stop();
    await sim?.close();
    await dir?.cleanup();
  });

  async function run(pipeline = "kcache"): Promise<{ id: string; train?: TaskJson }> {
    const r = await cli(["run", pipeline, "--follow"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const id = new RegExp(`^run (${pipeline}-[a-z0-9]{8})`, "m").exec(r.stdout)![1]!;
    const status = await cli(["-o", "json", "status", id]);
    const tasks = (JSON.parse(status.stdout) as { tasks: TaskJson[] }).tasks;
    return { id, train: tasks.find((t) => t.task === "train") };
  }

  const entryOf = async (run: string) => {
    const r = await cli(["-o", "json", "cache", "ls", "kcache", "train"]);
    const list = (JSON.parse(r.stdout) as { entries?: { runId: string; image: string }[] }).entries;
    return list?.find((e) => e.runId === run);
  };

  test("the digest kube-sim reports is the key: reused while the tag runs as it did, run again once it moved", async () => {
    const first = await run();
    assert.equal(pods(first.id), 1);
    await eventually(async () => (await entryOf(first.id)) !== undefined, 30_000, "an entry");
    assert.match((await entryOf(first.id))!.image, /^sha256:[0-9a-f]{64}$/);

    const second = await run();
    assert.equal(second.train?.cachedFrom?.runId, first.id);
    assert.equal(pods(second.id), 0, "no pod, no probe pod");

    // The tag moves in the registry, and the cluster runs it as the new digest.
    const moved = `sha256:${"e".repeat(64)}`;
    sim.pushImage("registry.example/train:latest", moved);
    await run("other");
    const third = await run();
    assert.equal(third.train?.cachedFrom, undefined, "the tag now names another image");
    assert.equal(pods(third.id), 1);
    await eventually(async () => (await entryOf(third.id)) !== undefined, 30_000, "an entry");
    assert.equal((await entryOf(third.id))!.image, moved);
    const fourth = await run();
    assert.equal(fourth.train?.cachedFrom?.runId, third.id);
  });
});
