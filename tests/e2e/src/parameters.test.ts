// Parametrized runs through the real CLI and `odin server`: --set, --values, --same-as, retry,
// status and JSON output, a Jinja2 template given its context by odin-run --x:key value.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventually, odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

const pipelines: Record<string, string> = {
  "sweep/main.yml": `name: sweep
parameters:
  lr: {type: number, default: 0.1, description: learning rate}
  model:
    type: string
    description: which model to train
  layers: {type: list, default: [64, 32]}
  fail: {type: bool, default: false}
tasks:
- name: train
  image: busybox
  command: sh
  args:
  - -c
  - 'echo "lr=\${{ params.lr }} model=\${{ params.model }} layers=\${{ params.layers }} path=\${PIPE_ID}"; test "\${{ params.fail }}" = false'
`,
  "tpl/main.yml.jinja2": `name: {{ name }}
tasks:
{% for i in range(shards | default(1)) %}
- name: shard-{{ i }}
  image: busybox
  command: sh
  args: [-c, 'echo backend={{ backend }} shard={{ i }}']
{% endfor %}
`,
};

let dir: { path: string; cleanup(): Promise<void> };
let server: OdinServer;
const cli = (args: string[], as?: string) =>
  odin(as ? args : ["--server", server.address, ...args], as ? { as } : {});

async function status(runId: string): Promise<{ run: { state: string; parameters?: unknown } }> {
  const r = await cli(["-o", "json", "status", runId]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { run: { state: string; parameters?: unknown } };
}

before(async () => {
  dir = await tempDir("odin-e2e-params-");
  const repo = join(dir.path, "pipelines");
  for (const [path, text] of Object.entries(pipelines)) {
    await mkdir(join(repo, path, ".."), { recursive: true });
    await writeFile(join(repo, path), text);
  }
  server = await startOdinServer(["--repo", repo, "--data", join(dir.path, "data")]);
});

after(async () => {
  await server?.stop();
  await dir?.cleanup();
});

describe("parametrized runs", () => {
  test("a missing required parameter is refused before the run, at its line", async () => {
    const r = await cli(["run", "sweep"]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /^odin: pipeline sweep at commit \w{12} cannot run: parameter "model" has no default/m,
    );
    assert.match(r.stderr, /sweep\/main\.yml:5:\d+.*"model" has no default and no value was given/);
    const wrong = await cli([
      "run",
      "sweep",
      "--set",
      "model=m",
      "--set",
      "lr=fast",
      "--set",
      "x=1",
    ]);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /parameter lr is a number; "fast" is not/);
    assert.match(wrong.stderr, /parameter "x" was given, but the pipeline does not declare it/);
    const listed = await cli(["-o", "json", "status"]);
    assert.deepEqual((JSON.parse(listed.stdout) as unknown[]).length, 0, "nothing was started");
  });

  test("--set and --values reach the task typed; status and JSON show them; --same-as reuses them", async () => {
    const values = join(dir.path, "values.yml");
    await writeFile(values, "model: bert\nlr: 0.01\nlayers: [128, 64, 32]\n");
    const r = await cli(["run", "sweep", "--values", values, "--set", "lr=0.5", "-f"]);
    assert.equal(r.code, 0, r.stderr);
    const runId = /^run (sweep-\w+):/m.exec(r.stdout)![1]!;
    const logs = await cli(["logs", runId]);
    assert.match(logs.stdout, new RegExp(`lr=0.5 model=bert layers=\\[128,64,32\\] path=${runId}`));
    assert.deepEqual((await status(runId)).run.parameters, {
      fail: false,
      layers: [128, 64, 32],
      lr: 0.5,
      model: "bert",
    });
    const text = await cli(["status", runId]);
    assert.match(text.stdout, /parameters: fail=false layers=\[128,64,32\] lr=0\.5 model=bert/);

    const again = await cli(["run", "--same-as", runId, "--set", "lr=0.9", "-f"]);
    assert.equal(again.code, 0, again.stderr);
    const secondId = /^run (sweep-\w+):/m.exec(again.stdout)![1]!;
    assert.notEqual(secondId, runId);
    assert.deepEqual((await status(secondId)).run.parameters, {
      fail: false,
      layers: [128, 64, 32],
      lr: 0.9,
      model: "bert",
    });
  });

  test("odin retry runs again with the run's parameters", async () => {
    const r = await cli(["run", "sweep", "--set", "model=gpt", "--set", "fail=true", "-f"]);
    assert.equal(r.code, 1, r.stderr);
    const runId = /^run (sweep-\w+):/m.exec(r.stdout)![1]!;
    assert.equal((await cli(["retry", runId])).code, 0);
    await eventually(async () => (await status(runId)).run.state === "FAILED", 30_000);
    for (const attempt of ["1", "2"]) {
      const logs = await cli(["logs", `${runId}--train`, "--attempt", attempt]);
      assert.match(logs.stdout, /lr=0.1 model=gpt/, `attempt ${attempt}: ${logs.stdout}`);
    }
  });

  test("odin show lists the parameters; odin validate checks every use", async () => {
    const show = await cli(["show", "sweep"]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^model +string +\(required\) +which model to train$/m);
    assert.match(show.stdout, /^lr +number +0\.1 +learning rate$/m);
    const local = join(dir.path, "local", "p");
    await mkdir(local, { recursive: true });
    await writeFile(
      join(local, "main.yml"),
      "parameters: {lr: 0.1}\ntasks:\n- name: a\n  image: i\n  command: c\n  args: ['--lr=${{ params.lrr }}']\n",
    );
    const v = await odin(["validate", local]);
    assert.equal(v.code, 1, v.stdout + v.stderr);
    assert.match(
      v.stdout + v.stderr,
      /main\.yml:6:10: a: .*uses parameter "lrr", which the pipeline does not declare \(did you mean "lr"\?\)/,
    );
  });

  test("a Jinja2 template runs with odin-run's --x:key value as its context", async () => {
    const [host, port] = server.address.split(":") as [string, string];
    const r = await cli(
      ["tpl", "--host", host, "--port", port, "--x:backend", "tf", "--x:shards", "2"],
      "odin-run",
    );
    assert.equal(r.code, 0, r.stderr);
    const runId = /^run (tpl-\w+):/m.exec(r.stdout)![1]!;
    const logs = await cli(["logs", runId]);
    assert.match(logs.stdout, /backend=tf shard=0/);
    assert.match(logs.stdout, /backend=tf shard=1/);
    assert.deepEqual((await status(runId)).run.parameters, { backend: "tf", shards: "2" });
  });
});
