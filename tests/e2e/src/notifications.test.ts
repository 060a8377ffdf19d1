// Notifications through `odin server` and the real CLI: a run's end is posted once to the
// pipeline's webhook (a real HTTP server on loopback) with the run, its failed tasks, the link and a
// Slack text; a failing or unknown webhook shows on `odin status`, never on the run's state; the
// webhook's URL appears in no output.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventually, odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

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
