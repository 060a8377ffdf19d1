// `odin server` on the local backend, killed with SIGKILL while a task runs and started again on
// the same NATS and data directory: the restart is invisible — the new server adopts the task's
// process, serves its log, records its end, and the run goes on to succeed with every task run once.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startNats, type NatsServer } from "@odin/testing";
import { eventually, odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

let dir: { path: string; cleanup(): Promise<void> };
let nats: NatsServer;
const servers: OdinServer[] = [];
let release = async (): Promise<void> => {};

before(async () => {
  dir = await tempDir("odin-e2e-restart-");
  nats = await startNats({ runtime: "binary" });
});

after(async () => {
  await release(); // a task left waiting ends
  for (const s of servers) await s.stop("SIGKILL");
  await nats?.stop();
  await dir?.cleanup();
});

test("odin server killed with SIGKILL during a task and restarted: the task is adopted, the run succeeds, each task ran once", async () => {
  const runs = join(dir.path, "runs.txt");
  const go = join(dir.path, "go");
  release = () => writeFile(go, "");
  const repo = join(dir.path, "pipelines");
  await mkdir(join(repo, "survive"), { recursive: true });
  // `work` counts its runs, then waits for the test's signal (a file), with no clock involved.
  await writeFile(
    join(repo, "survive", "main.yml"),
    `name: survive
tasks:
- name: work
  image: busybox:1.36
  command: sh
  args: [-c, 'echo work >> "$0"; echo started; while [ ! -e "$1" ]; do sleep 0.1; done; echo finished', ${JSON.stringify(runs)}, ${JSON.stringify(go)}]
- name: after
  image: busybox:1.36
  command: sh
  args: [-c, 'echo after >> "$0"', ${JSON.stringify(runs)}]
  depends: work
`,
  );
  const args = ["--repo", repo, "--data", join(dir.path, "data"), "--nats", nats.url];
  const first = await startOdinServer(args, { HOME: dir.path });
  servers.push(first);
  const submitted = await odin(["--server", first.address, "-o", "json", "run", "survive"]);
  assert.equal(submitted.code, 0, submitted.stderr);
  const runId = (JSON.parse(submitted.stdout) as { id: string }).id;
  const task = async (server: OdinServer, name: string) => {
    const r = await odin(["--server", server.address, "-o", "json", "status", `${runId}--${name}`]);
    return JSON.parse(r.stdout) as { state: string; attempt: number };
  };
  await eventually(
    async () => (await task(first, "work")).state === "RUNNING",
    60_000,
    "work RUNNING",
  );
  await eventually(() => Promise.resolve(existsSync(runs)), 60_000, "work to start");

  await first.stop("SIGKILL");
  const second = await startOdinServer(args, { HOME: dir.path });
  servers.push(second);
  assert.equal((await task(second, "work")).state, "RUNNING", "adopted, not lost");
  await release();

  await eventually(
    async () => {
      const r = await odin(["--server", second.address, "-o", "json", "status", runId]);
      return (JSON.parse(r.stdout) as { run: { state: string } }).run.state === "SUCCEEDED";
    },
    60_000,
    "the run to succeed",
  );
  const status = JSON.parse(
    (await odin(["--server", second.address, "-o", "json", "status", runId])).stdout,
  ) as { tasks: { task: string; state: string; attempt: number }[] };
  assert.deepEqual(
    status.tasks.map((t) => [t.task, t.state, t.attempt]),
    [
      ["work", "SUCCEEDED", 1],
      ["after", "SUCCEEDED", 1],
    ],
  );
  assert.equal(await readFile(runs, "utf8"), "work\nafter\n", "each task ran once");
  const logs = await odin(["--server", second.address, "logs", `${runId}--work`]);
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /started\n(.*\n)?.*finished/);
});
