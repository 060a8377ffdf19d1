// Parametrized runs through the real CLI and `odin server`: --set, --values, --same-as, retry,
// status and JSON output, a Jinja2 template given its context by odin-run --x:key value, a
// pipeline directory's other templates rendered for each run.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, writeFile } from "node:fs/promises";
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
  // The original's shape: a templated main.yml whose task reads a config rendered beside it.
  "orig/main.yml.jinja2": `name: orig
tasks:
- name: train
  image: busybox
  command: sh
  args: [-c, 'cat \${WORK_PATH}/sst2.yml']
`,
  "orig/sst2.yml.jinja2": "backend: {{ backend }}\nname: {{ name }}\n",
  // A plain main.yml with declared parameters and a rendered config; `fail` makes it fail so a
  // retry can be seen reading the same file.
  "conf/main.yml": `name: conf
parameters:
  lr: {type: number, default: 0.1}
  fail: {type: bool, default: false}
tasks:
- name: show
  image: busybox
  command: sh
  args:
  - -c
  - 'echo "work=\${WORK_PATH}"; cat \${WORK_PATH}/conf.yml; cat \${WORK_PATH}/data/rows.csv; grep -q "fail: false" \${WORK_PATH}/conf.yml'
`,
  "conf/conf.yml.jinja2": "lr: {{ lr }}\nfail: {{ fail }}\n",
  "conf/data/rows.csv": "1,2\n",
  "badtpl/main.yml": `name: badtpl
tasks:
- {name: a, image: busybox, command: "true"}
`,
  "badtpl/conf.yml.jinja2": "ok: 1\nlr: {{ lr }\n",
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

  test("odin-run --x:key value renders the directory's other templates; the task reads them", async () => {
    const [host, port] = server.address.split(":") as [string, string];
    const r = await cli(["orig", "--host", host, "--port", port, "--x:backend", "tf"], "odin-run");
    assert.equal(r.code, 0, r.stderr);
    const runId = /^run (orig-\w+):/m.exec(r.stdout)![1]!;
    await eventually(async () => (await status(runId)).run.state === "SUCCEEDED", 30_000);
    const logs = await cli(["logs", runId]);
    assert.match(logs.stdout, /backend: tf\nname: orig/);
  });

  test("odin run --set renders conf.yml for the run; a retry reads the same file", async () => {
    const r = await cli(["run", "conf", "--set", "lr=0.01", "--set", "fail=true", "-f"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const runId = /^run (conf-\w+):/m.exec(r.stdout)![1]!;
    const first = await cli(["logs", `${runId}--show`, "--attempt", "1"]);
    assert.match(first.stdout, /lr: 0\.01\nfail: true\n1,2/, first.stdout);
    const work = /^work=(.+)$/m.exec(first.stdout)![1]!;
    // Not the checkout: a directory of the run's own, outside the commit's checkout.
    assert.match(work, new RegExp(`/renders/[0-9a-f]{40}/${runId}$`));
    assert.equal((await cli(["retry", runId])).code, 0);
    await eventually(async () => {
      const s = (await status(runId)).run.state;
      return s === "FAILED" || s === "SUCCEEDED";
    }, 30_000);
    const second = await cli(["logs", `${runId}--show`, "--attempt", "2"]);
    assert.match(second.stdout, /lr: 0\.01\nfail: true\n/, second.stdout);
    assert.equal(/^work=(.+)$/m.exec(second.stdout)![1], work, "the same directory");

    // Another run with other values gets its own rendering; the first one's is left alone.
    const other = await cli(["run", "conf", "--set", "lr=0.5", "-f"]);
    assert.equal(other.code, 0, other.stdout + other.stderr);
    const otherId = /^run (conf-\w+):/m.exec(other.stdout)![1]!;
    const logs = await cli(["logs", `${otherId}--show`]);
    assert.match(logs.stdout, /lr: 0\.5\nfail: false\n/);
    // A run that ended released its rendering.
    await eventually(
      () =>
        lstat(/^work=(.+)$/m.exec(logs.stdout)![1]!).then(
          () => false,
          () => true,
        ),
      30_000,
    );
  });

  test("a template that does not render refuses the run, at file:line:col; odin show says so", async () => {
    const r = await cli(["run", "badtpl"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot run: the template cannot be rendered/);
    assert.match(r.stderr, /badtpl\/conf\.yml\.jinja2:2:\d+: the template cannot be rendered/);
    const show = await cli(["show", "badtpl"]);
    assert.match(show.stdout + show.stderr, /badtpl\/conf\.yml\.jinja2:2:\d+/);
    const listed = await cli(["-o", "json", "status"]);
    const runs = JSON.parse(listed.stdout) as { pipeline?: string; run?: { pipeline: string } }[];
    assert.equal(
      runs.filter((x) => JSON.stringify(x).includes("badtpl")).length,
      0,
      "nothing was started",
    );
  });
});
