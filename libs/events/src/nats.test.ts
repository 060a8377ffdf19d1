import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startNats, type NatsServer } from "@odin/testing";
import { EventBusUnavailableError, subjects } from "./bus.js";
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

describe("NATS event bus when NATS loses the stream", () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const until = async (cond: () => boolean, what: () => string) => {
    const deadline = Date.now() + 90_000;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting: ${what()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  /** Publishes, retrying while the bus reports NATS unavailable (as the launcher does). */
  const publish = async (bus: NatsEventBus, subject: string, data: string): Promise<number> => {
    for (let tries = 1; ; tries++) {
      try {
        await bus.publish(subject, text(data), { msgId: data });
        return tries;
      } catch (err) {
        if (!(err instanceof EventBusUnavailableError) || tries > 60) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };

  test(
    "a stream deleted under a live bus is created again by the next publish; its consumer resumes",
    { timeout: 120_000 },
    async () => {
      const own = await startNats({ runtime: "binary" });
      const bus = await NatsEventBus.connect({ servers: own.url, name: "lost-live" });
      try {
        const got: string[] = [];
        const sub = await bus.consume(
          { durable: "d", filter: subjects.allTasks, retryDelayMs: 100 },
          (m) => {
            got.push(new TextDecoder().decode(m.data));
            return Promise.resolve();
          },
        );
        await bus.publish(subjects.task("r1"), text("before"), { msgId: "before" });
        await until(
          () => got.length === 1,
          () => got.join(","),
        );
        const nc = await connect({ servers: own.url });
        const jsm = await jetstreamManager(nc);
        await jsm.streams.delete("ODIN_EVENTS");

        const ack = await bus.publish(subjects.task("r2"), text("after"), { msgId: "after" });
        assert.equal(ack.sequence, 1, "the publish made the stream again and landed first in it");
        const { config } = await jsm.streams.info("ODIN_EVENTS");
        assert.equal(config.num_replicas, 1);
        assert.deepEqual(config.subjects, [subjects.all]);
        await nc.close();
        await until(
          () => got.length === 2,
          () => got.join(","),
        );
        assert.deepEqual(got, ["before", "after"]);
        await sub.stop();
      } finally {
        await bus.close();
        await own.stop();
      }
    },
  );

  test(
    "NATS restarted without its store: publishers and consumers go on with a new stream",
    { timeout: 180_000 },
    async () => {
      const own = await startNats({ runtime: "binary" });
      const warnings: string[] = [];
      const log = {
        info: () => undefined,
        warn: (msg: string) => void warnings.push(msg),
        error: (msg: string) => void warnings.push(msg),
      };
      const consumer = await NatsEventBus.connect({ servers: own.url, name: "consumer", log });
      const publisher = await NatsEventBus.connect({ servers: own.url, name: "publisher" });
      try {
        const got: string[] = [];
        await consumer.consume({ durable: "scheduler", filter: subjects.allTasks }, (m) => {
          got.push(new TextDecoder().decode(m.data));
          return Promise.resolve();
        });
        await publish(publisher, subjects.task("r1"), "lost-1");
        await until(
          () => got.length === 1,
          () => got.join(","),
        );

        await own.resume({ wipeStore: true });
        const tries = await publish(publisher, subjects.task("r2"), "new-1");
        await until(
          () => got.includes("new-1"),
          () => got.join(","),
        );
        assert.deepEqual(got, ["lost-1", "new-1"]);
        // Once per state change, not once per retry.
        assert.equal(warnings.filter((w) => /was lost/.test(w)).length, 1, warnings.join("\n"));
        assert.ok(
          warnings.filter((w) => /consumer scheduler stopped/.test(w)).length <= 1,
          warnings.join("\n"),
        );
        console.log(`first publish after the loss succeeded at attempt ${tries}`);
      } finally {
        await consumer.close();
        await publisher.close();
        await own.stop();
      }
    },
  );
});
