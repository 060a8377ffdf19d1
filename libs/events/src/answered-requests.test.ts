import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startNats, type NatsServer } from "@odin/testing";
import { answeredRequestsPatched } from "./answered-requests.js";

// The client's own error module (not in its exports map): its RequestError is what `cancel()`
// builds, looked up at each call, so counting its constructions counts the errors built.
const require = createRequire(import.meta.url);
const errors = require(join(dirname(require.resolve("@nats-io/nats-core")), "errors.js")) as {
  RequestError: new (message?: string, options?: ErrorOptions) => Error;
};
const Original = errors.RequestError;
let built = 0;
errors.RequestError = class extends Original {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    built++;
  }
};

let server: NatsServer;
let nc: NatsConnection;
before(async () => {
  server = await startNats({ runtime: "binary" });
  nc = await connect({ servers: server.url, noAsyncTraces: true });
  nc.subscribe("echo", {
    callback: (_err, m) => {
      m.respond(m.data);
    },
  });
  nc.subscribe("silent", { callback: () => undefined });
});
after(async () => {
  errors.RequestError = Original;
  await nc.close();
  await server.stop();
});

test("answered requests end without building an error", async () => {
  assert.equal(answeredRequestsPatched(), true);
  built = 0;
  const answers = await Promise.all(
    Array.from({ length: 50 }, (_, i) => nc.request("echo", `m${i}`, { timeout: 5000 })),
  );
  assert.deepEqual(
    answers.map((m) => m.string()),
    Array.from({ length: 50 }, (_, i) => `m${i}`),
  );
  assert.equal(built, 0);
});

test("a request nobody listens to still fails with no responders", async () => {
  await assert.rejects(
    nc.request("nobody.here", "x", { timeout: 5000 }),
    (err: Error & { isNoResponders?: () => boolean }) => err.isNoResponders?.() === true,
  );
});

test("a request nobody answers still times out", async () => {
  await assert.rejects(
    nc.request("silent", "x", { timeout: 200 }),
    (err: Error) => err.name === "TimeoutError",
  );
});

test("a request in flight when the connection closes still fails", async () => {
  const other = await connect({ servers: server.url, noAsyncTraces: true });
  const pending = other.request("silent", "x", { timeout: 10_000 });
  await other.close();
  await assert.rejects(pending);
});
