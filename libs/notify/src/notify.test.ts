// Delivery against a real HTTP server on loopback; waits between attempts are counted, not slept.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  deliverWebhook,
  DirectoryWebhookSecrets,
  FileWebhookSecrets,
  runEndBody,
  WebhookSecretChain,
  WebhookNotifier,
  type NotificationStatus,
} from "./index.js";

/** A webhook receiver answering each POST with the next status of `answers` (then 200). */
class Receiver {
  readonly bodies: unknown[] = [];
  answers: number[] = [];
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.bodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        res.statusCode = this.answers.shift() ?? 200;
        res.end("ok");
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${address.port}/services/T0/B0/SECRETPART`;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

const lines: string[] = [];
const log = {
  info: (msg: string, f?: Record<string, unknown>) =>
    lines.push(`info ${msg} ${JSON.stringify(f)}`),
  warn: (msg: string, f?: Record<string, unknown>) =>
    lines.push(`warn ${msg} ${JSON.stringify(f)}`),
  error: (msg: string, f?: Record<string, unknown>) =>
    lines.push(`error ${msg} ${JSON.stringify(f)}`),
};

describe("webhook delivery", () => {
  const receiver = new Receiver();
  let dir = "";
  before(async () => {
    await receiver.start();
    dir = await mkdtemp(join(tmpdir(), "odin-notify-"));
    await writeFile(join(dir, "slack-ml"), `${receiver.url}\n`);
    await writeFile(join(dir, "ftp"), "ftp://example.invalid/x");
    await writeFile(join(dir, "hooks.yml"), `team-b: ${receiver.url}\n`);
  });
  after(() => receiver.stop());

  test("retries 5xx and 429 with doubling waits, then delivers", async () => {
    receiver.bodies.length = 0;
    receiver.answers = [500, 429, 503];
    const waits: number[] = [];
    const result = await deliverWebhook(
      receiver.url,
      { text: "hi" },
      { backoffMs: 100, sleep: (ms) => Promise.resolve(void waits.push(ms)) },
    );
    assert.deepEqual(result, { delivered: true, attempts: 4 });
    assert.deepEqual(waits, [100, 200, 400]);
    assert.equal(receiver.bodies.length, 4);
    assert.deepEqual(receiver.bodies[3], { text: "hi" });
  });

  test("a 4xx other than 408/429, or a redirect, is not retried; giving up after the last attempt", async () => {
    receiver.bodies.length = 0;
    receiver.answers = [404];
    const once = await deliverWebhook(receiver.url, {}, { sleep: () => Promise.resolve() });
    assert.deepEqual(once, { delivered: false, attempts: 1, error: "HTTP 404 Not Found" });
    receiver.answers = [302];
    const moved = await deliverWebhook(receiver.url, {}, { sleep: () => Promise.resolve() });
    assert.deepEqual(moved, {
      delivered: false,
      attempts: 1,
      error: "HTTP 302 Found (redirects are not followed)",
    });
    receiver.answers = [500, 500, 500];
    const waits: number[] = [];
    const thrice = await deliverWebhook(
      receiver.url,
      {},
      { attempts: 3, backoffMs: 10, sleep: (ms) => Promise.resolve(void waits.push(ms)) },
    );
    assert.equal(thrice.delivered, false);
    assert.equal(thrice.attempts, 3);
    assert.deepEqual(waits, [10, 20]);
  });

  test("an unreachable receiver is an error that does not quote the URL", async () => {
    const closed = new Receiver();
    await closed.start();
    await closed.stop();
    const result = await deliverWebhook(
      closed.url,
      {},
      { attempts: 2, sleep: () => Promise.resolve() },
    );
    assert.equal(result.delivered, false);
    assert.equal(result.attempts, 2);
    assert.match(result.error!, /could not connect \(ECONNREFUSED\)/);
    assert.ok(!result.error!.includes("SECRETPART") && !result.error!.includes("127.0.0.1"));
  });

  test("names resolve from a Secret's directory, then a file; unknown and bad ones are errors without URLs", async () => {
    lines.length = 0;
    receiver.bodies.length = 0;
    const secrets = new WebhookSecretChain([
      new DirectoryWebhookSecrets(dir),
      new FileWebhookSecrets(join(dir, "hooks.yml")),
    ]);
    assert.equal(await secrets.resolve("slack-ml"), receiver.url);
    assert.equal(await secrets.resolve("team-b"), receiver.url);
    assert.equal(await secrets.resolve("nope"), undefined);
    await assert.rejects(secrets.resolve("../etc"), /is not a webhook secret name/);
    await assert.rejects(secrets.resolve("ftp"), /only http and https/);
    const notifier = new WebhookNotifier({
      secrets,
      log,
      delivery: { sleep: () => Promise.resolve() },
    });
    const progress: NotificationStatus[] = [];
    const unknown = await notifier.post("nope", {}, { run: "r1" }, (s) => progress.push(s));
    assert.equal(unknown.state, "failed");
    assert.equal(unknown.attempts, 0);
    assert.match(
      unknown.error!,
      /no webhook secret named nope in the webhook secrets directory .* or the webhooks file/,
    );
    assert.deepEqual(progress, [unknown]);
    receiver.answers = [502];
    const ok = await notifier.post("slack-ml", { text: "x" }, { run: "r1" }, (s) =>
      progress.push(s),
    );
    assert.equal(ok.state, "delivered");
    assert.equal(ok.attempts, 2);
    assert.deepEqual(
      progress.slice(1).map((s) => [s.state, s.attempts, s.error]),
      [
        ["pending", 1, "HTTP 502 Bad Gateway"],
        ["delivered", 2, undefined],
      ],
    );
    assert.equal(receiver.bodies.length, 2);
    assert.ok(lines.some((l) => l.startsWith("warn webhook post failed; retrying")));
    assert.ok(lines.some((l) => l.startsWith("error webhook not posted")));
    for (const line of lines) assert.ok(!line.includes("SECRETPART"), line);
  });
});

describe("the run-end body", () => {
  test("carries the run, its failed tasks and the link, with a Slack text", () => {
    const body = runEndBody(
      {
        id: "sst2-abc12",
        pipeline: "ml/sst2",
        pipelineName: "sst2",
        commit: "c0ffee",
        state: "failed",
        attempt: 1,
        submittedBy: "alice",
        parameters: { lr: 0.01, model: "<bert>" },
        labels: {},
        createTime: "2026-01-01T00:00:00.000Z",
        taskCounts: { succeeded: 1, failed: 1, skipped: 1 },
      },
      [{ name: "train", state: "failed", attempt: 2, exitCode: 1, reason: "Error" }],
      "https://odin.example.com/",
    );
    assert.equal(body.url, "https://odin.example.com/runs/sst2-abc12");
    assert.equal(body.failedTaskCount, 1);
    assert.equal(body.event, "run.ended");
    assert.equal(
      body.text,
      [
        ":x: Odin run <https://odin.example.com/runs/sst2-abc12|sst2-abc12> of *ml/sst2* failed",
        "1 of 3 tasks failed: `train`",
        'parameters: lr=0.01 model="&lt;bert&gt;"',
        "submitted by alice",
      ].join("\n"),
    );
  });
});
