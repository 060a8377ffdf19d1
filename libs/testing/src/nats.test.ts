// startNats gives a private JetStream server that really works and leaves nothing behind.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsUnavailableError, startNats } from "./nats.js";

test("startNats: a private JetStream server; publish to a stream; stop cleans up", async () => {
  const server = await startNats();
  try {
    assert.match(server.url, /^nats:\/\/[^:]+:\d+$/);
    assert.ok(server.port > 0);
    assert.ok(
      server.port !== 4222 || server.via === "container",
      "a private server, not the shared one",
    );
    if (server.via === "binary")
      assert.ok(server.dataDir !== undefined && existsSync(server.dataDir));
    const nc = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "TASKS", subjects: ["tasks.>"] });
      const js = jetstream(nc);
      const first = await js.publish("tasks.launched", "t1", { msgID: "t1-launched" });
      const dup = await js.publish("tasks.launched", "t1", { msgID: "t1-launched" });
      assert.equal(first.seq, 1);
      assert.equal(dup.duplicate, true, "message-id dedupe works");
      const info = await jsm.streams.info("TASKS");
      assert.equal(info.state.messages, 1);
    } finally {
      await nc.close();
    }
  } finally {
    await server.stop();
  }
  await server.stop(); // idempotent
  if (server.dataDir !== undefined)
    assert.equal(existsSync(server.dataDir), false, "its storage dir is removed");
  await assert.rejects(connect({ servers: server.url, reconnect: false, timeout: 500 }));
});

test("two suites get two independent servers", async () => {
  const [a, b] = await Promise.all([startNats(), startNats()]);
  try {
    assert.notEqual(a.port, b.port);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test("without a container runtime or binary, startNats says how to install nats-server", async () => {
  const missing = join(tmpdir(), "definitely-not-here", "nats-server");
  assert.equal(existsSync(missing), false);
  await assert.rejects(startNats({ runtime: "binary", binary: missing }), (error: unknown) => {
    assert.ok(error instanceof NatsUnavailableError, String(error));
    assert.match(error.message, /apt-get install -y nats-server/);
    return true;
  });
});

test("NATS_URL is used only when asked for", async () => {
  const shared = await startNats();
  const saved = process.env["NATS_URL"];
  process.env["NATS_URL"] = shared.url;
  try {
    const own = await startNats();
    try {
      assert.notEqual(own.url, shared.url, "default: a private server even when NATS_URL is set");
    } finally {
      await own.stop();
    }
    const external = await startNats({ useEnvUrl: true });
    assert.equal(external.url, shared.url);
    assert.equal(external.via, "external");
    await external.stop(); // must not stop the shared server
    const nc = await connect({ servers: shared.url });
    await nc.close();
  } finally {
    if (saved === undefined) delete process.env["NATS_URL"];
    else process.env["NATS_URL"] = saved;
    await shared.stop();
  }
});
