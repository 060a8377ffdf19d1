// `odin server` with local processes: a task running past its `timeout` is stopped and ends
// FAILED/DeadlineExceeded. The scheduler's run engine is the one place that enforces a timeout
// (it cancels the attempt through the launcher and records the failure); the local backend keeps
// no timer of its own.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventually, odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

let server: OdinServer;
let address = "";
let dir: { path: string; cleanup(): Promise<void> };

before(async () => {
  dir = await tempDir("odin-e2e-timeout-");
  const repo = join(dir.path, "pipelines");
  await mkdir(join(repo, "slow"), { recursive: true });
  await writeFile(
    join(repo, "slow", "main.yml"),
    [
      "tasks:",
      "- name: slow",
      "  image: busybox:1.36",
      "  command: sh",
      "  args: [-c, 'echo pid=$$$$; exec sleep 60']",
      "  timeout: 1s",
      "",
    ].join("\n"),
  );
  server = await startOdinServer(["--repo", repo, "--data", join(dir.path, "data")], {
    HOME: dir.path,
  });
  address = server.address;
});

after(async () => {
  await server?.stop();
  await dir?.cleanup();
});

test("a local task past its timeout is stopped and fails with DeadlineExceeded", async () => {
  const r = await odin(["--server", address, "run", "slow", "--follow"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const runId = /^run (\S+):/m.exec(r.stdout)?.[1] ?? assert.fail(r.stdout + r.stderr);
  const status = await odin(["--server", address, "status", runId]);
  assert.match(status.stdout, /^slow\s+FAILED\s+1\s.*DeadlineExceeded/m, status.stdout);
  // The task's process is gone, not left running.
  const logs = await odin(["--server", address, "logs", `${runId}--slow`]);
  const pid = Number(/pid=(\d+)/.exec(logs.stdout)?.[1]);
  assert.ok(pid > 0, logs.stdout + logs.stderr);
  await eventually(() => {
    try {
      process.kill(pid, 0);
      return Promise.resolve(false);
    } catch {
      return Promise.resolve(true);
    }
  });
});
