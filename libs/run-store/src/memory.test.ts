import { test } from "node:test";
import assert from "node:assert/strict";
import { keyValueStoreContract } from "./testing/contract.js";
import { MemoryKeyValueStore } from "./memory.js";
import { listLatest, type Entry, type KeyValueStore } from "./store.js";

keyValueStoreContract("in-memory", () => Promise.resolve(new MemoryKeyValueStore()));

test("listLatest gives each key once, at the newest revision a listing brought", async () => {
  const v = (s: string) => new TextEncoder().encode(s);
  // A listing as NATS gives one when keys are rewritten during it: a key again, newer last.
  const listed: Entry[] = [
    { key: "runs.a", value: v("a1"), revision: 1 },
    { key: "runs.b", value: v("b2"), revision: 2 },
    { key: "runs.a", value: v("a3"), revision: 3 },
  ];
  const kv = {
    list: async function* () {
      for (const entry of listed) yield await Promise.resolve(entry);
    },
  } as unknown as KeyValueStore;
  const got = await listLatest(kv, "runs.>");
  assert.deepEqual(got.map((e) => [e.key, new TextDecoder().decode(e.value)]).sort(), [
    ["runs.a", "a3"],
    ["runs.b", "b2"],
  ]);
});
