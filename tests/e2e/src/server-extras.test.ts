// The original's extras against `odin server` (embedded mode, local processes): a task ending its
// run early, and a run's files (`odin data`).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

const pipelines: Record<string, string> = {
  // Leaves files under RUN_PATH for odin data.
  files: `name: files
tasks:
- name: train
  image: busybox
  command: sh
  args: [-c, 'mkdir -p "\${TASK_PATH}/ckpt" && echo "{\\"acc\\": 0.9}" > "\${TASK_PATH}/metrics.json" && head -c 100000 /dev/zero > "\${TASK_PATH}/ckpt/model.bin" && ln -s /etc/passwd "\${TASK_PATH}/passwd"']
`,
  // "check" asks for an early exit; "train" (after it) never starts; "side" runs meanwhile.
  early: `name: early
tasks:
- name: check
  image: busybox
  command: sh
  args: [-c, 'echo "{\\"odin\\": {\\"early_exit\\": true}, \\"acc\\": 0.99}" > "\${TASK_PATH}/outputs.json"']
- name: side
  image: busybox
  command: sh
  args: [-c, 'sleep 0.5; echo side done']
- name: train
  image: busybox
  command: echo
  args: [never]
  depends: check
`,
  // The original Odin's form: the task's record said request_early_exit.
  original: `name: original
tasks:
- name: check
  image: busybox
  command: sh
  args: [-c, 'echo "{\\"request_early_exit\\": true}" > "\${TASK_PATH}/outputs.json"']
- name: train
  image: busybox
  command: echo
  args: [never]
  depends: check
`,
};

let dir: { path: string; cleanup(): Promise<void> };
let server: OdinServer;
const cli = (...args: string[]) => odin(["--server", server.address, ...args]);

before(async () => {
  dir = await tempDir("odin-e2e-extras-");
  const repo = join(dir.path, "pipelines");
  for (const [name, text] of Object.entries(pipelines)) {
    await mkdir(join(repo, name), { recursive: true });
    await writeFile(join(repo, name, "main.yml"), text);
  }
  server = await startOdinServer(["--repo", repo, "--data", join(dir.path, "data")]);
});

after(async () => {
  await server?.stop();
  await dir?.cleanup();
});

describe("early exit", () => {
  test("a task reporting {odin: {early_exit: true}} ends the run SUCCEEDED; tasks not started are SKIPPED", async () => {
    const r = await cli("run", "early", "--follow");
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /SUCCEEDED.*early exit requested by task "check"/);
    const runId = /^run (early-[a-z0-9]{8})/m.exec(r.stdout)![1]!;
    const json = await cli("-o", "json", "status", runId);
    const view = JSON.parse(json.stdout) as {
      run: { state: string; reason: string };
      tasks: { task: string; state: string; message: string }[];
    };
    assert.equal(view.run.state, "SUCCEEDED");
    assert.equal(view.run.reason, 'early exit requested by task "check"');
    const states = Object.fromEntries(view.tasks.map((t) => [t.task, t.state]));
    assert.deepEqual(states, { check: "SUCCEEDED", side: "SUCCEEDED", train: "SKIPPED" });
    const text = await cli("status", runId);
    assert.match(text.stdout, /SUCCEEDED.*, early exit requested by task "check"/);
    assert.match(text.stdout, /train\s+SKIPPED.*Skipped: early exit requested by task "check"/);
  });

  test("the original Odin's request_early_exit works the same", async () => {
    const r = await cli("run", "original", "--follow");
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /SUCCEEDED.*early exit requested by task "check"/);
  });
});

describe("odin data", () => {
  let runId = "";
  before(async () => {
    const r = await cli("run", "files", "--follow");
    assert.equal(r.code, 0, r.stderr + r.stdout);
    runId = /^run (files-[a-z0-9]{8})/m.exec(r.stdout)![1]!;
  });

  test("lists RUN_PATH and a task's tree; -o json too", async () => {
    const top = await cli("data", runId);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /^PATH\s+TYPE\s+SIZE\s+MODIFIED\ntrain\/\s+directory/);
    const tree = await cli("-o", "json", "data", runId, "train", "--recursive");
    const listed = JSON.parse(tree.stdout) as {
      files: { path: string; type: string; size: number }[];
    };
    assert.deepEqual(
      listed.files.map((f) => `${f.path} ${f.type} ${f.size}`),
      [
        "train/ckpt directory 0",
        "train/ckpt/model.bin file 100000",
        "train/metrics.json file 13",
        "train/passwd symlink 0",
      ],
    );
  });

  test("downloads a file (to a directory or stdout) and a directory", async () => {
    const to = join(dir.path, "downloads");
    const one = await cli("data", runId, "train/metrics.json", "--download", "--to", to);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /downloaded 1 file \(13 B\)/);
    assert.equal(await readFile(join(to, "metrics.json"), "utf8"), '{"acc": 0.9}\n');
    const stdout = await cli("data", runId, "train/metrics.json", "-d", "--to", "-");
    assert.equal(stdout.stdout, '{"acc": 0.9}\n');
    const tree = await cli("data", runId, "train/ckpt", "--download", "--to", to);
    assert.equal(tree.code, 0, tree.stderr);
    assert.equal((await readFile(join(to, "ckpt", "model.bin"))).length, 100_000);
  });

  test("paths out of RUN_PATH and downloads over the limit are refused clearly", async () => {
    const up = await cli("data", runId, "../..");
    assert.equal(up.code, 1, up.stderr);
    assert.match(up.stderr, /contains "\.\."/);
    const abs = await cli("data", runId, "/etc/passwd");
    assert.match(abs.stderr, /is absolute; give a path relative to the run's RUN_PATH/);
    const link = await cli("data", runId, "train/passwd", "--download", "--to", "-");
    assert.notEqual(link.code, 0);
    assert.match(link.stderr, /leads out of the run's RUN_PATH/);
    assert.doesNotMatch(link.stdout, /root:/);
    const dirWithLink = await cli(
      "data",
      runId,
      "train",
      "--download",
      "--to",
      join(dir.path, "x"),
    );
    assert.match(dirWithLink.stderr, /train\/passwd is a symbolic link that leads out/);
    const big = await cli("data", runId, "train/ckpt", "-d", "--max-bytes", "1000", "--to", "-");
    assert.equal(big.code, 1, big.stderr);
    assert.match(big.stderr, /more than 1000 bytes, the download limit asked for \(--max-bytes\)/);
    const missing = await cli("data", "files-zz99zz99");
    assert.equal(missing.code, 4, missing.stderr);
    assert.match(missing.stderr, /run files-zz99zz99 has no data/);
  });

  test("the original's odin-data lists a task's files; odin gpus says the local backend has none", async () => {
    const r = await odin(["--server", server.address, `${runId}--train`], { as: "odin-data" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /train\/metrics\.json\s+file/);
    const gpus = await cli("gpus");
    assert.equal(gpus.code, 0, gpus.stderr);
    assert.match(gpus.stdout, /^no GPUs: the local backend .* has no GPU inventory/);
    const json = await cli("-o", "json", "gpus");
    assert.equal((JSON.parse(json.stdout) as { backend: string }).backend, "local");
  });
});
