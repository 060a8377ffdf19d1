import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startNats, type NatsServer } from "@odin/testing";
import { jsonCodec } from "./codec.js";
import { keyValueStoreContract } from "./testing/contract.js";
import { NatsKeyValueStore, StoreConfigError } from "./nats.js";
import { updateWithRetry } from "./retry.js";
import { RevisionMismatchError, StoreUnavailableError, type Change } from "./store.js";

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

let server: NatsServer | undefined;
const serverReady = startNats({ runtime: "binary" }).then((s) => (server = s));
let buckets = 0;

keyValueStoreContract("NATS JetStream KV", async () =>
  NatsKeyValueStore.connect({
    servers: (await serverReady).url,
    name: "contract-test",
    // A fresh bucket per test: each starts empty.
    bucket: `contract-${++buckets}`,
  }),
);

after(async () => {
  await server?.stop();
});

describe("NATS JetStream KV across connections", () => {
  let a: NatsKeyValueStore;
  let b: NatsKeyValueStore;
  before(async () => {
    const url = (await serverReady).url;
    a = await NatsKeyValueStore.connect({ servers: url, name: "replica-a", bucket: "replicas" });
    b = await NatsKeyValueStore.connect({ servers: url, name: "replica-b", bucket: "replicas" });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  test("a second replica sees the first one's writes, listings and changes", async () => {
    const changes: Change[] = [];
    const watch = await b.watch("run.shared.task.", (c) => changes.push(c));
    const keyOf = (c: Change) => (c.op === "reset" ? ["reset"] : [c.op, c.key, c.revision]);
    const revision = await a.create("run.shared.task.t1", text("from a"));
    const entry = await b.get("run.shared.task.t1");
    assert.deepEqual(entry && [decode(entry.value), entry.revision], ["from a", revision]);
    const keys: string[] = [];
    for await (const key of b.keys("run.shared.task.")) keys.push(key);
    assert.deepEqual(keys, ["run.shared.task.t1"]);
    while (changes.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(changes.map(keyOf), [["put", "run.shared.task.t1", revision]]);
    await watch.stop();
  });

  test("compare-and-set conflicts between two connections are detected", async () => {
    const key = "run.shared.task.cas";
    const r1 = await a.create(key, text("pending"));
    await assert.rejects(b.create(key, text("pending")), RevisionMismatchError);
    // Both replicas read r1; the first update wins, the second is refused.
    const r2 = await a.update(key, text("launched by a"), r1);
    await assert.rejects(b.update(key, text("launched by b"), r1), RevisionMismatchError);
    await assert.rejects(b.delete(key, r1), RevisionMismatchError);
    const entry = await b.get(key);
    assert.equal(entry?.revision, r2);
    assert.equal(decode(entry.value), "launched by a");
  });

  test("updateWithRetry on two replicas at once loses no increment", async () => {
    const codec = jsonCodec<number>();
    const key = "run.shared-counter";
    const bump = (n: number | undefined) => (n ?? 0) + 1;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => updateWithRetry(i % 2 ? a : b, key, bump, codec)),
    );
    const entry = await a.get(key);
    assert.equal(entry && codec.decode(entry.value), 20);
  });
});

describe("NATS JetStream KV failures", () => {
  // The watchdog timeouts turn a hang into a failure; what is asserted is the error, not speed.
  test(
    "an unreachable NATS fails with StoreUnavailableError and a hint",
    { timeout: 120_000 },
    async () => {
      await assert.rejects(
        NatsKeyValueStore.connect({ servers: "nats://127.0.0.1:1", connectTimeoutMs: 2000 }),
        (err: Error) =>
          err instanceof StoreUnavailableError &&
          err.message.includes("cannot reach NATS at nats://127.0.0.1:1") &&
          err.message.includes("-js"),
      );
    },
  );

  test("a value limit the server cannot carry is refused at connect", async () => {
    await assert.rejects(
      NatsKeyValueStore.connect({
        servers: (await serverReady).url,
        bucket: "too-big",
        maxValueBytes: 8 * 1024 * 1024,
      }),
      (err: Error) => err instanceof StoreConfigError && /max_payload/.test(err.message),
    );
  });

  test(
    "when the server goes away, operations fail within the time limit instead of hanging",
    { timeout: 120_000 },
    async () => {
      const lonely = await startNats({ runtime: "binary" });
      const store = await NatsKeyValueStore.connect({ servers: lonely.url, timeoutMs: 500 });
      await store.create("run.gone", text("x"));
      await lonely.stop();
      await assert.rejects(store.get("run.gone"), StoreUnavailableError);
      await assert.rejects(store.put("run.gone", text("y")), StoreUnavailableError);
      await assert.rejects(
        (async () => {
          for await (const _ of store.list("")) break;
        })(),
        StoreUnavailableError,
      );
      await store.close();
    },
  );
});

describe("NATS JetStream KV when NATS loses the bucket", () => {
  const until = async (cond: () => boolean, what: () => string) => {
    const deadline = Date.now() + 60_000;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting: ${what()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const shown = (list: Change[]) =>
    JSON.stringify(list.map((c) => (c.op === "reset" ? "reset" : `${c.op} ${c.key}`)));

  test(
    "a bucket deleted under a live store is created again by the next write; its watch hears a reset",
    { timeout: 120_000 },
    async () => {
      const url = (await serverReady).url;
      const store = await NatsKeyValueStore.connect({ servers: url, bucket: "lost-live" });
      try {
        const changes: Change[] = [];
        const watch = await store.watch("run.", (c) => changes.push(c));
        await store.create("run.before", text("old"));
        await until(
          () => changes.length === 1,
          () => shown(changes),
        );

        const nc = await connect({ servers: url });
        const jsm = await jetstreamManager(nc);
        await jsm.streams.delete("KV_lost-live");

        // The write finds no bucket, makes it again with the configured settings, and lands.
        const revision = await store.create("run.after", text("new"));
        assert.equal(revision, 1, "the new bucket starts again from revision 1");
        assert.equal(await store.get("run.before"), undefined, "what the old bucket held is gone");
        assert.equal(decode((await store.get("run.after"))!.value), "new");
        const { config } = await jsm.streams.info("KV_lost-live");
        assert.equal(config.num_replicas, 1);
        assert.equal(config.max_msgs_per_subject, 1);
        await nc.close();

        await until(
          () => changes.length === 3,
          () => shown(changes),
        );
        assert.equal(shown(changes), shown([changes[0]!, { op: "reset" }, changes[2]!]));
        assert.equal(changes[2]?.op === "put" && changes[2].key, "run.after");
        await watch.stop();
      } finally {
        await store.close();
      }
    },
  );

  test(
    "NATS restarted without its store: each replica makes the bucket again and its watch resumes",
    { timeout: 180_000 },
    async () => {
      const lonely = await startNats({ runtime: "binary" });
      const options = { servers: lonely.url, timeoutMs: 1000, bucket: "wiped" };
      const a = await NatsKeyValueStore.connect({ ...options, name: "replica-a" });
      const b = await NatsKeyValueStore.connect({ ...options, name: "replica-b" });
      try {
        const seen: Change[] = [];
        await b.watch("run.", (c) => seen.push(c));
        await a.create("run.lost", text("in flight"));
        await until(
          () => seen.length === 1,
          () => shown(seen),
        );

        await lonely.resume({ wipeStore: true });

        // Replica b only watches: it learns of the loss from the reconnect, not from a write.
        await until(
          () => seen.some((c) => c.op === "reset"),
          () => shown(seen),
        );
        let writes = 0;
        for (;;) {
          try {
            writes++;
            await a.create("run.new", text("after the loss"));
            break;
          } catch (err) {
            if (!(err instanceof StoreUnavailableError) || writes > 60) throw err;
            await new Promise((r) => setTimeout(r, 500));
          }
        }
        await until(
          () => seen.some((c) => c.op === "put" && c.key === "run.new"),
          () => shown(seen),
        );
        assert.equal(shown(seen), JSON.stringify(["put run.lost", "reset", "put run.new"]));
        assert.equal(await b.get("run.lost"), undefined);
        assert.equal(decode((await b.get("run.new"))!.value), "after the loss");
        console.log(`first write after the loss succeeded at attempt ${writes}`);
      } finally {
        await a.close();
        await b.close();
        await lonely.stop();
      }
    },
  );
});
