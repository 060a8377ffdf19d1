// The contract every KeyValueStore adapter passes; run by each adapter's test file.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { jsonCodec } from "../codec.js";
import { updateWithRetry } from "../retry.js";
import {
  InvalidKeyError,
  KeyExistsError,
  RevisionMismatchError,
  StoreClosedError,
  ValueTooLargeError,
  type Change,
  type KeyChange,
  type KeyRevision,
  type KeyValueStore,
} from "../store.js";

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function waitFor(cond: () => boolean, state: () => unknown, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() - start > timeoutMs) {
        reject(new Error(`timed out waiting; got ${JSON.stringify(state())}`));
      } else setTimeout(tick, 5);
    };
    tick();
  });
}

const settle = () => new Promise((r) => setTimeout(r, 150));

/** A watch handler collecting key changes; a reset (the store lost everything) fails the test. */
const into =
  (list: KeyChange[]) =>
  (c: Change): void => {
    if (c.op === "reset") throw new Error("the store reset under a watch that expected none");
    list.push(c);
  };

/** Writes `count` keys with bounded concurrency (a pipeline, as the scheduler submits a run). */
async function createMany(
  store: KeyValueStore,
  keys: string[],
  value: (key: string) => Uint8Array,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      await store.create(key, value(key));
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

/**
 * Registers the KeyValueStore contract tests for one adapter. `open` gives a fresh, empty store per
 * test; `teardown` runs after the suite.
 */
export function keyValueStoreContract(
  name: string,
  open: () => Promise<KeyValueStore>,
  teardown?: () => Promise<void>,
): void {
  describe(`KeyValueStore contract: ${name}`, () => {
    const stores: KeyValueStore[] = [];
    const fresh = async () => {
      const store = await open();
      stores.push(store);
      return store;
    };
    after(async () => {
      for (const s of stores) await s.close();
      await teardown?.();
    });

    test("create writes a new key; creating it again fails with KeyExistsError", async () => {
      const store = await fresh();
      const key = "run.r1";
      const revision = await store.create(key, text("first"));
      assert.ok(revision >= 1);
      const again = await store.create(key, text("second")).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(again instanceof KeyExistsError, `got ${String(again)}`);
      assert.ok(again instanceof RevisionMismatchError, "a kind of revision mismatch");
      const entry = await store.get(key);
      assert.deepEqual(entry && { ...entry, value: decode(entry.value) }, {
        key,
        value: "first",
        revision,
      });
      assert.equal(await store.get("run.nobody"), undefined);
    });

    test("update with the current revision writes and returns a higher revision", async () => {
      const store = await fresh();
      const key = "run.r1.task.train";
      const r1 = await store.create(key, text("pending"));
      const r2 = await store.update(key, text("running"), r1);
      assert.ok(r2 > r1);
      const r3 = await store.update(key, text("succeeded"), r2);
      assert.ok(r3 > r2);
      const entry = await store.get(key);
      assert.equal(entry?.revision, r3);
      assert.equal(decode(entry.value), "succeeded");
    });

    test("update with a stale revision fails with RevisionMismatchError and changes nothing", async () => {
      const store = await fresh();
      const key = "run.r1.task.train";
      const r1 = await store.create(key, text("pending"));
      const r2 = await store.update(key, text("running"), r1);
      await assert.rejects(
        store.update(key, text("lost"), r1),
        (err: Error) =>
          err instanceof RevisionMismatchError &&
          err.key === key &&
          err.expectedRevision === r1 &&
          err.message.includes(key),
      );
      // Another key's revision does not count either.
      const other = await store.create("run.r1.task.eval", text("x"));
      await assert.rejects(store.update(key, text("lost"), other), RevisionMismatchError);
      const entry = await store.get(key);
      assert.equal(entry?.revision, r2);
      assert.equal(decode(entry.value), "running");
      await assert.rejects(
        store.update("run.r1.task.missing", text("x"), r2),
        RevisionMismatchError,
      );
      await assert.rejects(store.update(key, text("x"), 0), RangeError);
    });

    test("updateWithRetry from 20 concurrent writers loses no update", async () => {
      const store = await fresh();
      const codec = jsonCodec<{ count: number }>();
      const key = "run.counter";
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, () =>
          updateWithRetry(store, key, (c) => ({ count: (c?.count ?? 0) + 1 }), codec),
        ),
      );
      assert.ok(outcomes.every((o) => o.written));
      const entry = await store.get(key);
      assert.ok(entry);
      assert.deepEqual(codec.decode(entry.value), { count: 20 });
      assert.deepEqual(
        outcomes.map((o) => o.value?.count).sort((a, b) => a! - b!),
        Array.from({ length: 20 }, (_, i) => i + 1),
        "each writer saw its own increment land",
      );
      // Returning undefined leaves the value alone.
      const same = await updateWithRetry(store, key, () => undefined, codec);
      assert.deepEqual(same, {
        value: { count: 20 },
        revision: entry.revision,
        written: false,
        attempts: 1,
      });
      assert.equal((await store.get(key))?.revision, entry.revision);
    });

    test("keys and list return exactly the keys under a prefix or matching a pattern", async () => {
      const store = await fresh();
      const all = [
        "run.a",
        "run.a.task.x",
        "run.a.task.y",
        "run.ab",
        "run.ab.task.x",
        "run.b.task.z",
        "other.a.task.x",
      ];
      for (const key of all) await store.create(key, text(`v:${key}`));
      const sorted = async (it: AsyncIterable<string>) => (await collect(it)).sort();

      assert.deepEqual(await sorted(store.keys("run.a.")), ["run.a.task.x", "run.a.task.y"]);
      assert.deepEqual(await sorted(store.keys("run.a.task.")), ["run.a.task.x", "run.a.task.y"]);
      assert.deepEqual(await sorted(store.keys("run.*")), ["run.a", "run.ab"]);
      assert.deepEqual(await sorted(store.keys("run.*.task.x")), ["run.a.task.x", "run.ab.task.x"]);
      assert.deepEqual(await sorted(store.keys("run.>")), all.slice(0, 6).sort());
      assert.deepEqual(await sorted(store.keys("")), [...all].sort());
      assert.deepEqual(await sorted(store.keys("run.c.")), []);

      const entries = await collect(store.list("run.a."));
      assert.deepEqual(entries.map((e) => [e.key, decode(e.value)]).sort(), [
        ["run.a.task.x", "v:run.a.task.x"],
        ["run.a.task.y", "v:run.a.task.y"],
      ]);
      for (const e of entries) assert.equal((await store.get(e.key))?.revision, e.revision);
      assert.deepEqual(await collect(store.list("run.zzz.")), []);
    });

    test("delete removes a key from get, keys and list; a conditional delete checks the revision", async () => {
      const store = await fresh();
      const a = "run.d.task.a";
      const b = "run.d.task.b";
      const ra = await store.create(a, text("a"));
      const rb = await store.create(b, text("b"));
      await store.delete(a);
      assert.equal(await store.get(a), undefined);
      assert.deepEqual(await collect(store.keys("run.d.task.")), [b]);
      assert.deepEqual(
        (await collect(store.list("run.d.task."))).map((e) => e.key),
        [b],
      );
      await assert.rejects(store.update(a, text("a2"), ra), RevisionMismatchError);

      const rb2 = await store.update(b, text("b2"), rb);
      await assert.rejects(store.delete(b, rb), RevisionMismatchError);
      assert.equal(decode((await store.get(b))!.value), "b2");
      await store.delete(b, rb2);
      assert.equal(await store.get(b), undefined);

      // A deleted key can be created again, with a higher revision.
      const ra2 = await store.create(a, text("again"));
      assert.ok(ra2 > rb2);
      assert.equal(decode((await store.get(a))!.value), "again");
      await store.delete("run.d.task.never-written");
    });

    test("watch sees puts, updates and deletes made after it started, under its filter only", async () => {
      const store = await fresh();
      await store.create("run.w.task.before", text("old"));
      const seen: KeyChange[] = [];
      const watch = await store.watch("run.w.task.", into(seen));
      const runsSeen: KeyChange[] = [];
      const runsWatch = await store.watch("run.*", into(runsSeen));
      const plain = (c: KeyChange) => (c.op === "put" ? { ...c, value: decode(c.value) } : c);
      const until = (n: number) =>
        waitFor(
          () => seen.length >= n,
          () => seen.map(plain),
        );

      const key = "run.w.task.a";
      const r1 = await store.create(key, text("1"));
      await until(1);
      const r2 = await store.update(key, text("2"), r1);
      await until(2);
      await store.put("run.w2.task.a", text("elsewhere"));
      await store.put("run.w", text("run record"));
      await store.delete(key);
      await until(3);
      // Distinct keys written back to back each arrive, in revision order.
      const burst: number[] = [];
      for (let i = 0; i < 20; i++) {
        burst.push(await store.put(`run.w.task.b${i}`, text(String(i))));
      }
      await until(23);
      await waitFor(
        () => runsSeen.length >= 1,
        () => runsSeen.map(plain),
      );
      await settle();

      assert.deepEqual(seen.slice(0, 2).map(plain), [
        { op: "put", key, value: "1", revision: r1 },
        { op: "put", key, value: "2", revision: r2 },
      ]);
      assert.equal(seen[2]?.op, "delete");
      assert.equal(seen[2]?.key, key);
      assert.ok(seen[2].revision > r2);
      assert.deepEqual(
        seen.slice(3).map((c) => c.revision),
        burst,
      );
      assert.equal(seen.length, 23, "nothing from before the watch or outside its filter");
      assert.deepEqual(
        runsSeen.map((c) => [c.op, c.key]),
        [["put", "run.w"]],
      );

      await watch.stop();
      await runsWatch.stop();
      await store.put("run.w.task.c", text("after stop"));
      await settle();
      assert.equal(seen.length, 23, "nothing after stop");
    });

    test("watchKeys sees each write and delete under its filter, with its revision and no value", async () => {
      const store = await fresh();
      await store.create("run.k.task.before", text("old"));
      const seen: KeyRevision[] = [];
      const watch = await store.watchKeys("run.k.task.", (c) => void seen.push(c));
      const a = await store.create("run.k.task.a", text("a value"));
      await store.put("run.k2.task.a", text("elsewhere"));
      const b = await store.update("run.k.task.a", text("another"), a);
      await store.delete("run.k.task.a");
      await waitFor(
        () => seen.length >= 3,
        () => seen,
      );
      await settle();
      assert.deepEqual(seen.slice(0, 2), [
        { op: "put", key: "run.k.task.a", revision: a },
        { op: "put", key: "run.k.task.a", revision: b },
      ]);
      const deleted = seen[2];
      assert.ok(deleted?.op === "delete" && deleted.key === "run.k.task.a" && deleted.revision > b);
      assert.equal(seen.length, 3, "nothing from before the watch or outside its filter");
      await watch.stop();
    });

    test("a key rewritten faster than a watch reads it ends at its latest revision", async () => {
      // JetStream KV keeps one revision per key, so a watch may skip superseded ones; never the last.
      const store = await fresh();
      const key = "run.hot.task.t";
      const seen: KeyChange[] = [];
      const watch = await store.watch("run.hot.task.", into(seen));
      let revision = await store.create(key, text("0"));
      for (let i = 1; i <= 50; i++) revision = await store.update(key, text(String(i)), revision);
      await waitFor(
        () => seen.at(-1)?.revision === revision,
        () => seen.map((c) => c.revision),
      );
      const last = seen.at(-1);
      assert.equal(last?.op === "put" && decode(last.value), "50");
      const revisions = seen.map((c) => c.revision);
      assert.deepEqual(
        revisions,
        [...revisions].sort((a, b) => a - b),
        "in revision order",
      );
      assert.equal(new Set(revisions).size, revisions.length, "none twice");
      await watch.stop();
    });

    test("values up to the size limit round-trip byte for byte; larger ones are refused", async () => {
      const store = await fresh();
      const max = store.maxValueBytes;
      assert.ok(max >= 512 * 1024, `limit ${max} is at least 512 KiB`);
      const big = new Uint8Array(randomBytes(max));
      const key = "run.big.task.max";
      const revision = await store.create(key, big);
      const entry = await store.get(key);
      assert.equal(entry?.revision, revision);
      assert.ok(Buffer.from(entry.value).equals(Buffer.from(big)), "get returns the same bytes");
      const [listed] = await collect(store.list("run.big.task."));
      assert.ok(listed && Buffer.from(listed.value).equals(Buffer.from(big)), "list too");

      await store.create("run.big.task.empty", new Uint8Array(0));
      assert.equal((await store.get("run.big.task.empty"))?.value.byteLength, 0);

      await assert.rejects(
        store.create("run.big.task.over", new Uint8Array(max + 1)),
        (err: Error) => err instanceof ValueTooLargeError && err.message.includes(String(max)),
      );
      await assert.rejects(
        store.update(key, new Uint8Array(max + 1), revision),
        ValueTooLargeError,
      );
      assert.equal((await store.get("run.big.task.over")) === undefined, true);
    });

    test("a 10,000-key listing returns every key once", async () => {
      const store = await fresh();
      const keys = Array.from({ length: 10_000 }, (_, i) => `run.wide.task.t${i}`);
      await createMany(store, keys, (k) => text(k));
      await store.create("run.wide", text("run"));
      await store.create("run.wider.task.t0", text("other run"));

      const listedKeys = await collect(store.keys("run.wide.task."));
      assert.equal(listedKeys.length, 10_000);
      assert.deepEqual(new Set(listedKeys), new Set(keys));
      let count = 0;
      for await (const entry of store.list("run.wide.task.")) {
        assert.equal(decode(entry.value), entry.key);
        count++;
      }
      assert.equal(count, 10_000);
    });

    test("a listing can stop early", async () => {
      const store = await fresh();
      await createMany(
        store,
        Array.from({ length: 50 }, (_, i) => `run.early.task.t${i}`),
        (k) => text(k),
      );
      let n = 0;
      for await (const _ of store.list("run.early.task.")) if (++n === 3) break;
      assert.equal(n, 3);
      assert.equal((await collect(store.keys("run.early.task."))).length, 50);
    });

    test("invalid keys and filters fail with a clear InvalidKeyError", async () => {
      const store = await fresh();
      for (const key of ["", "run..a", ".run", "run.", "run.a b", "run.*", "run.>", "run.ä"]) {
        await assert.rejects(
          store.create(key, text("x")),
          (err: Error) => err instanceof InvalidKeyError && err.message.includes("invalid key"),
          `key ${JSON.stringify(key)}`,
        );
      }
      await assert.rejects(store.get("run..a"), InvalidKeyError);
      await assert.rejects(collect(store.keys("run.>.a")), InvalidKeyError);
      await assert.rejects(collect(store.list("run..")), InvalidKeyError);
      await assert.rejects(
        store.watch("run.a b.", () => undefined),
        InvalidKeyError,
      );
    });

    test("a closed store refuses operations with StoreClosedError", async () => {
      const store = await fresh();
      await store.create("run.c", text("x"));
      await store.close();
      await assert.rejects(store.get("run.c"), StoreClosedError);
      await assert.rejects(store.put("run.c", text("y")), StoreClosedError);
      await assert.rejects(collect(store.keys("")), StoreClosedError);
      await store.close();
    });
  });
}
