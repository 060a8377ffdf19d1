// The original's extras against `odin server` (embedded mode, local processes): a task ending its
// run early, and a run's files (`odin data`).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

const pipelines: Record<string, string> = {
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
