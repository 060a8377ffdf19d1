// Replicas splitting work over a real NATS server: they see each other, every key has one owner,
// a replica that leaves hands its keys over at once and one that falls silent after the TTL.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { startNats, type NatsServer } from "@odin/testing";
import { Membership, membershipSubject, ownerOf } from "./membership.js";
import { NatsEventBus } from "./nats.js";

let server: NatsServer | undefined;
const serverReady = startNats({ runtime: "binary" }).then((s) => (server = s));
const buses: NatsEventBus[] = [];
after(async () => {
  for (const b of buses) await b.close();
  await server?.stop();
});

async function bus(): Promise<NatsEventBus> {
  const b = await NatsEventBus.connect({ servers: (await serverReady).url });
  buses.push(b);
  return b;
}

/** Resolves once `m` sees exactly `n` members. */
async function until(m: Membership, n: number): Promise<void> {
  while (m.members().length !== n) {
    await new Promise<void>((resolve) => {
      const stop = m.onChange(() => {
        stop();
        resolve();
      });
    });
  }
}

const keys = Array.from({ length: 1000 }, (_, i) => `run-${i}`);

test("rendezvous: each key has one owner, and a member leaving moves only its own keys", () => {
  const three = ["a", "b", "c"];
  const before = new Map(keys.map((k) => [k, ownerOf(k, three)]));
  const counts = new Map<string, number>();
  for (const o of before.values()) counts.set(o!, (counts.get(o!) ?? 0) + 1);
  // Spread over all three (each gets a fair share, not all or nothing).
  for (const m of three) assert.ok((counts.get(m) ?? 0) > 200, `${m}: ${counts.get(m)}`);
  for (const k of keys) {
    const now = ownerOf(k, ["a", "c"]);
    if (before.get(k) !== "b") assert.equal(now, before.get(k), `${k} moved without cause`);
  }
  assert.equal(ownerOf("x", []), undefined);
});

test("two replicas split the keys; one leaving hands its keys over at once", async () => {
  const group = "split";
  const a = await Membership.join(await bus(), { group, heartbeatMs: 100 });
  const b = await Membership.join(await bus(), { group, heartbeatMs: 100 });
  await Promise.all([until(a, 2), until(b, 2)]);
  assert.deepEqual(a.members(), b.members());
  let ownedByA = 0;
  for (const k of keys) {
    assert.notEqual(a.owns(k), b.owns(k), `${k} has exactly one owner`);
    if (a.owns(k)) ownedByA++;
  }
  assert.ok(ownedByA > 300 && ownedByA < 700, `a owns ${ownedByA} of 1000`);
  // Leaving is said, not waited for: the TTL (10 s by default) plays no part.
  await b.close();
  await until(a, 1);
  assert.ok(keys.every((k) => a.owns(k)));
  await a.close();
});

test("a replica that falls silent is taken for gone after the TTL", async () => {
  const group = "silent";
  const raw = await bus();
  const a = await Membership.join(await bus(), { group, heartbeatMs: 50, ttlMs: 400 });
  // A replica that says hello once and is then killed: it never says it leaves.
  await raw.publish(
    membershipSubject(group),
    new TextEncoder().encode(JSON.stringify({ id: "killed", state: "hello" })),
    { noAck: true },
  );
  await until(a, 2);
  assert.ok(a.members().includes("killed"));
  assert.ok(
    keys.some((k) => !a.owns(k)),
    "the silent replica owns keys while it counts as alive",
  );
  await until(a, 1);
  assert.deepEqual(a.members(), [a.id]);
  assert.ok(keys.every((k) => a.owns(k)));
  await a.close();
});

test("a group name that is not one subject token is refused", async () => {
  await assert.rejects(
    Membership.join(await bus(), { group: "a.b" }),
    /membership group "a.b" must be one token/,
  );
});
