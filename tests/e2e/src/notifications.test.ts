// Notifications through `odin server` and the real CLI: a run's end is posted once to the
// pipeline's webhook (a real HTTP server on loopback) with the run, its failed tasks, the link and a
// Slack text; a failing or unknown webhook shows on `odin status`, never on the run's state; the
// webhook's URL appears in no output. Then the production shape: two dag-scheduler processes on
// NATS with the webhooks as a mounted Secret's files (one post per run end; a name added later is
// found without a restart).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  eventually,
  odin,
  startOdinServer,
  startStack,
  tempDir,
  type OdinServer,
  type Stack,
} from "@odin/test-stack";

interface Post {
  path: string;
  body: {
    text: string;
    event: string;
    url: string;
    run: Record<string, unknown>;
    failedTasks: Record<string, unknown>[];
  };
}

const posts: Post[] = [];
/** Statuses the receiver answers with, one per request, per path prefix (then 200). */
const answers: Record<string, number[]> = {};
let receiver: Server;
let base = "";
let dir: { path: string; cleanup(): Promise<void> };
let server: OdinServer;
const cli = (args: string[]) => odin(["--server", server.address, ...args]);

const pipeline = `name: nightly
parameters:
  fail: {type: bool, default: false}
notify:
- webhook: {secret: team-slack}
- webhook: {secret: flaky}
  on: [failed]
- webhook: {secret: nobody-set-this}
  on: [failed]
tasks:
- name: prep
  image: busybox
  command: sh
  args: [-c, "echo prep"]
- name: train
  image: busybox
  command: sh
  args: [-c, 'echo train; test "\${{ params.fail }}" = false']
  depends: prep
`;

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "";
      posts.push({
        path,
        body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Post["body"],
      });
      const key = Object.keys(answers).find((k) => path.startsWith(k));
      res.statusCode = (key && answers[key]!.shift()) || 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  dir = await tempDir("odin-e2e-notify-");
  const repo = join(dir.path, "pipelines");
  await mkdir(join(repo, "nightly"), { recursive: true });
  await writeFile(join(repo, "nightly", "main.yml"), pipeline);
  const webhooks = join(dir.path, "webhooks.yml");
  await writeFile(
    webhooks,
    `team-slack: ${base}/services/T01/B02/SLACKSECRET\nflaky: ${base}/flaky/FLAKYSECRET\n`,
  );
  server = await startOdinServer(
    ["--repo", repo, "--data", join(dir.path, "data"), "--public-url", "https://odin.example.com"],
    { ODIN_WEBHOOKS_FILE: webhooks },
  );
});

after(async () => {
  await server?.stop();
  await dir?.cleanup();
  await new Promise((resolve) => receiver?.close(resolve));
});

async function settledStatus(runId: string): Promise<{
  run: {
    state: string;
    notifications?: { webhookSecret: string; state: string; attempts?: number; error?: string }[];
  };
}> {
  let json: Awaited<ReturnType<typeof settledStatus>> | undefined;
  await eventually(
    async () => {
      const r = await cli(["-o", "json", "status", runId]);
      assert.equal(r.code, 0, r.stderr);
      json = JSON.parse(r.stdout) as typeof json;
      return (
        ["SUCCEEDED", "FAILED"].includes(json!.run.state) &&
        (json!.run.notifications ?? []).length > 0 &&
        !json!.run.notifications!.some((n) => n.state === "pending")
      );
    },
    120_000,
    `run ${runId}'s notifications`,
  );
  return json!;
}

describe("notifications", () => {
  test("a run that succeeds is posted once to its webhook: the run, the link and a Slack text", async () => {
    const r = await cli(["run", "nightly", "-f"]);
    assert.equal(r.code, 0, r.stderr);
    const runId = /^run (nightly-\w+):/m.exec(r.stdout)![1]!;
    const status = await settledStatus(runId);
    assert.equal(status.run.state, "SUCCEEDED");
    assert.deepEqual(
      status.run.notifications!.map((n) => [n.webhookSecret, n.state, n.attempts]),
      [["team-slack", "delivered", 1]],
      "flaky and nobody-set-this are only for failures",
    );
    const mine = posts.filter((p) => p.body.run.id === runId);
    assert.equal(mine.length, 1);
    const { path, body } = mine[0]!;
    assert.equal(path, "/services/T01/B02/SLACKSECRET");
    assert.equal(body.event, "run.ended");
    assert.equal(body.url, `https://odin.example.com/runs/${runId}`);
    assert.equal(body.run.state, "succeeded");
    assert.equal(body.run.pipeline, "nightly");
    assert.deepEqual(body.run.parameters, { fail: false });
    assert.equal(typeof body.run.submittedBy, "string");
    assert.ok(body.run.startTime && body.run.endTime && body.run.createTime);
    assert.deepEqual(body.failedTasks, []);
    assert.equal(
      body.text.split("\n")[0],
      `:white_check_mark: Odin run <https://odin.example.com/runs/${runId}|${runId}> of *nightly* succeeded`,
    );
  });

  test("a failed run: failed tasks in the body; a flaky webhook retried; an unknown name recorded; the run just FAILED", async () => {
    answers["/flaky"] = [503];
    const r = await cli(["run", "nightly", "--set", "fail=true", "-f"]);
    assert.equal(r.code, 1, r.stderr);
    const runId = /^run (nightly-\w+):/m.exec(r.stdout)![1]!;
    const status = await settledStatus(runId);
    assert.equal(status.run.state, "FAILED");
    const byName = Object.fromEntries(status.run.notifications!.map((n) => [n.webhookSecret, n]));
    assert.equal(byName["team-slack"]!.state, "delivered");
    assert.deepEqual([byName.flaky!.state, byName.flaky!.attempts], ["delivered", 2]);
    assert.equal(byName["nobody-set-this"]!.state, "failed");
    assert.match(
      byName["nobody-set-this"]!.error!,
      /^no webhook secret named nobody-set-this in the webhooks file .*webhooks\.yml; add it there/,
    );
    const mine = posts.filter((p) => p.body.run.id === runId);
    assert.deepEqual(
      mine.map((p) => p.path.split("/")[1]).sort(),
      ["flaky", "flaky", "services"],
      "team-slack once; flaky twice (503, then 200)",
    );
    const body = mine.find((p) => p.path.startsWith("/services"))!.body;
    assert.deepEqual(
      body.failedTasks.map((t) => [t.name, t.state, t.exitCode]),
      [["train", "failed", 1]],
    );
    assert.match(
      body.text,
      /^:x: Odin run <.*> of \*nightly\* failed\n1 of 2 tasks failed: `train`\nparameters: fail=true\n/,
    );

    const text = await cli(["status", runId]);
    assert.match(text.stdout, /^ {2}notify team-slack: delivered after 1 attempt$/m);
    assert.match(text.stdout, /^ {2}notify flaky: delivered after 2 attempts$/m);
    assert.match(
      text.stdout,
      /^ {2}notify nobody-set-this: failed — no webhook secret named nobody-set-this/m,
    );
    const json = await cli(["-o", "json", "status", runId]);
    const everything = [r.stdout, r.stderr, text.stdout, json.stdout, server.output()].join("\n");
    assert.match(server.output(), /webhook post failed; retrying/);
    assert.match(server.output(), /webhook not posted/);
    for (const secret of ["SLACKSECRET", "FLAKYSECRET", "/services/T01", base])
      assert.ok(!everything.includes(secret), `output holds ${secret}`);
  });
});

describe("notifications in the production shape: two dag-scheduler processes, NATS, kube-sim", () => {
  let stack: Stack;
  let hooks = "";

  before(async () => {
    // The layout of the odin-webhooks Secret mounted as files (deploy/): one file per name.
    hooks = join(dir.path, "mounted-secret");
    await mkdir(hooks, { recursive: true });
    await writeFile(join(hooks, "team-slack"), `${base}/services/T01/B02/SLACKSECRET\n`);
    stack = await startStack(
      {
        nightly: {
          "main.yml": [
            "name: nightly",
            "notify: {webhook: {secret: team-slack}}",
            "tasks:",
            "- {name: a, image: 'busybox:1', command: 'true'}",
            "- {name: b, image: 'busybox:1', command: 'true', depends: a}",
            "",
          ].join("\n"),
        },
        later: {
          "main.yml": [
            "name: later",
            "notify: {webhook: added-later}",
            "tasks:",
            "- {name: a, image: 'busybox:1', command: 'true'}",
            "",
          ].join("\n"),
        },
      },
      {
        replicas: 1,
        schedulers: 2,
        env: { ODIN_WEBHOOKS_DIR: hooks, ODIN_PUBLIC_URL: "https://odin.example.com" },
      },
    );
    await eventually(async () => (await stack.cli("ls")).stdout.includes("nightly"), 30_000);
  });

  after(async () => {
    await stack?.stop();
  });

  test("each run's end is posted once although both schedulers follow it; a name added to the Secret needs no restart", async () => {
    const runIds: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await stack.cli("run", "nightly");
      assert.equal(r.code, 0, r.stderr);
      runIds.push(r.stdout.trim());
    }
    for (const id of runIds) {
      await eventually(
        async () => {
          const r = await stack.cli("-o", "json", "status", id);
          const run = (JSON.parse(r.stdout) as { run: { notifications?: { state: string }[] } })
            .run;
          return run.notifications?.[0]?.state === "delivered";
        },
        120_000,
        `run ${id} delivered`,
      );
    }
    for (const id of runIds) {
      const mine = posts.filter((p) => p.body.run.id === id);
      assert.equal(mine.length, 1, `run ${id}: ${mine.length} posts`);
      assert.equal(mine[0]!.body.url, `https://odin.example.com/runs/${id}`);
      assert.equal(mine[0]!.body.run.state, "succeeded");
    }
    // Both schedulers ran: between them they logged every run's end, each end once.
    const ends = stack.schedulers.map(
      (s) => s.logs.filter((l) => l.includes('"msg":"run finished"')).length,
    );
    assert.equal(
      ends.reduce((a, b) => a + b, 0),
      runIds.length,
      `run ends logged per scheduler: ${ends.join(", ")}`,
    );

    // A name the Secret did not have: recorded failed; added, the next run's end finds it.
    const first = await stack.cli("run", "later", "-f");
    const firstId = /^run (later-\w+)/m.exec(first.stdout)![1]!;
    await eventually(async () => {
      const r = await stack.cli("status", firstId);
      return /notify added-later: failed — no webhook secret named added-later in the webhook secrets directory/.test(
        r.stdout,
      );
    }, 60_000);
    await writeFile(join(hooks, "added-later"), `${base}/later/LATERSECRET`);
    const second = await stack.cli("run", "later", "-f");
    const secondId = /^run (later-\w+)/m.exec(second.stdout)![1]!;
    await eventually(
      () =>
        Promise.resolve(
          posts.some((p) => p.body.run.id === secondId && p.path === "/later/LATERSECRET"),
        ),
      60_000,
    );
    const logs = stack.schedulers.flatMap((s) => s.logs).join("\n");
    for (const secret of ["SLACKSECRET", "LATERSECRET", base])
      assert.ok(!logs.includes(secret), `a scheduler logged ${secret}`);
  });
});
