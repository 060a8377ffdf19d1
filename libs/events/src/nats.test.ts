import { test } from "node:test";
import assert from "node:assert/strict";
import { startNats, type NatsServer } from "@odin/testing";
import { eventBusContract } from "./testing/contract.js";
import { NatsEventBus } from "./nats.js";

let server: NatsServer | undefined;
const serverReady = startNats({ runtime: "binary" }).then((s) => (server = s));

eventBusContract(
  "NATS JetStream",
  async () => NatsEventBus.connect({ servers: (await serverReady).url, name: "contract-test" }),
  async () => {
    await server?.stop();
  },
);

test("connecting to a NATS that is not there fails fast with a clear message", async () => {
  await assert.rejects(
    NatsEventBus.connect({ servers: "nats://127.0.0.1:1", connectTimeoutMs: 2000 }),
    (err: Error) =>
      err.name === "EventBusUnavailableError" &&
      /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/.test(err.message),
  );
});
