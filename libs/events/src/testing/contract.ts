// The contract every EventBus adapter passes; run by each adapter's test file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { BusMessage, EventBus } from "../bus.js";

const text = (s: string) => new TextEncoder().encode(s);
const decode = (m: BusMessage) => new TextDecoder().decode(m.data);

function waitFor(cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() - start > timeoutMs) reject(new Error("timed out waiting"));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

/** Registers the EventBus contract tests for one adapter. `open` gives a fresh bus per test. */
export function eventBusContract(
  name: string,
  open: () => Promise<EventBus>,
  teardown?: () => Promise<void>,
): void {
  describe(`EventBus contract: ${name}`, () => {
    const buses: EventBus[] = [];
    const fresh = async () => {
      const bus = await open();
      buses.push(bus);
      return bus;
    };
    before(() => undefined);
    after(async () => {
      for (const b of buses) await b.close();
      await teardown?.();
    });

    test("a durable consumer receives events published before and after it joined, in order", async () => {
      const bus = await fresh();
      const prefix = `c${Date.now()}`;
      await bus.publish(`odin.events.task.${prefix}`, text("1"));
      const got: string[] = [];
      const sub = await bus.consume(
        { durable: `${prefix}-d1`, filter: `odin.events.task.${prefix}` },
        (m) => {
          got.push(decode(m));
          return Promise.resolve();
        },
      );
      for (let i = 2; i <= 5; i++) await bus.publish(`odin.events.task.${prefix}`, text(String(i)));
      await waitFor(() => got.length === 5);
      assert.deepEqual(got, ["1", "2", "3", "4", "5"]);
      await sub.stop();
    });

    test("a repeated msg id is dropped", async () => {
      const bus = await fresh();
      const prefix = `m${Date.now()}`;
      const first = await bus.publish(`odin.events.task.${prefix}`, text("a"), {
        msgId: `${prefix}-x`,
      });
      const again = await bus.publish(`odin.events.task.${prefix}`, text("a"), {
        msgId: `${prefix}-x`,
      });
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.equal(again.sequence, first.sequence);
      const got: string[] = [];
      const sub = await bus.consume(
        { durable: `${prefix}-d`, filter: `odin.events.task.${prefix}` },
        (m) => {
          got.push(decode(m));
          return Promise.resolve();
        },
      );
      await bus.publish(`odin.events.task.${prefix}`, text("b"), { msgId: `${prefix}-y` });
      await waitFor(() => got.length >= 2);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(got, ["a", "b"]);
      await sub.stop();
    });

    test("members of one durable consumer share the work: each event is handled once", async () => {
      const bus = await fresh();
      const prefix = `s${Date.now()}`;
      const seen = new Map<string, number>();
      const count = (m: BusMessage) => {
        seen.set(decode(m), (seen.get(decode(m)) ?? 0) + 1);
        return Promise.resolve();
      };
      const a = await bus.consume(
        { durable: `${prefix}-shared`, filter: `odin.events.run.${prefix}` },
        count,
      );
      const b = await bus.consume(
        { durable: `${prefix}-shared`, filter: `odin.events.run.${prefix}` },
        count,
      );
      for (let i = 0; i < 50; i++) await bus.publish(`odin.events.run.${prefix}`, text(String(i)));
      await waitFor(() => seen.size === 50);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(
        [...seen.values()].every((n) => n === 1),
        "no event handled twice",
      );
      await a.stop();
      await b.stop();
    });

    test("an event whose handler fails is delivered again", async () => {
      const bus = await fresh();
      const prefix = `r${Date.now()}`;
      const deliveries: number[] = [];
      const sub = await bus.consume(
        { durable: `${prefix}-d`, filter: `odin.events.task.${prefix}`, retryDelayMs: 50 },
        (m) => {
          deliveries.push(m.deliveryCount);
          return deliveries.length < 3 ? Promise.reject(new Error("not yet")) : Promise.resolve();
        },
      );
      await bus.publish(`odin.events.task.${prefix}`, text("x"));
      await waitFor(() => deliveries.length === 3);
      assert.deepEqual(deliveries, [1, 2, 3]);
      await sub.stop();
    });

    test("an unacknowledged publish still reaches consumers, and its msg id still dedupes", async () => {
      const bus = await fresh();
      const prefix = `n${Date.now()}`;
      const got: string[] = [];
      const sub = await bus.consume(
        { durable: `${prefix}-d`, filter: `odin.events.run.${prefix}` },
        (m) => {
          got.push(decode(m));
          return Promise.resolve();
        },
      );
      await bus.publish(`odin.events.run.${prefix}`, text("a"), {
        msgId: `${prefix}-1`,
        noAck: true,
      });
      await bus.publish(`odin.events.run.${prefix}`, text("a"), {
        msgId: `${prefix}-1`,
        noAck: true,
      });
      await bus.publish(`odin.events.run.${prefix}`, text("b"), { noAck: true });
      await waitFor(() => got.length >= 2);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(got, ["a", "b"]);
      await sub.stop();
    });

    test("with concurrency, several events are handled at once, each once", async () => {
      const bus = await fresh();
      const prefix = `k${Date.now()}`;
      let inFlight = 0;
      let most = 0;
      const handled = new Set<string>();
      const sub = await bus.consume(
        { durable: `${prefix}-d`, filter: `odin.events.task.${prefix}`, concurrency: 4 },
        async (m) => {
          inFlight++;
          most = Math.max(most, inFlight);
          await new Promise((r) => setTimeout(r, 20));
          handled.add(decode(m));
          inFlight--;
        },
      );
      for (let i = 0; i < 12; i++) await bus.publish(`odin.events.task.${prefix}`, text(String(i)));
      await waitFor(() => handled.size === 12);
      assert.equal(most, 4);
      await sub.stop();
    });

    test("a consumer that leaves and rejoins resumes where it was", async () => {
      const bus = await fresh();
      const prefix = `p${Date.now()}`;
      const got: string[] = [];
      const handler = (m: BusMessage) => {
        got.push(decode(m));
        return Promise.resolve();
      };
      const options = { durable: `${prefix}-d`, filter: `odin.events.task.${prefix}` };
      let sub = await bus.consume(options, handler);
      await bus.publish(`odin.events.task.${prefix}`, text("1"));
      await waitFor(() => got.length === 1);
      await sub.stop();
      await bus.publish(`odin.events.task.${prefix}`, text("2"));
      sub = await bus.consume(options, handler);
      await waitFor(() => got.length === 2);
      assert.deepEqual(got, ["1", "2"]);
      await sub.stop();
    });

    test("subscribers see new events live; filters match subject tokens", async () => {
      const bus = await fresh();
      const prefix = `l${Date.now()}`;
      const all: string[] = [];
      const one: string[] = [];
      const s1 = await bus.subscribe(`odin.events.run.>`, (m) => all.push(m.subject));
      const s2 = await bus.subscribe(`odin.events.run.${prefix}a`, (m) => one.push(decode(m)));
      await new Promise((r) => setTimeout(r, 50));
      await bus.publish(`odin.events.run.${prefix}a`, text("A"));
      await bus.publish(`odin.events.run.${prefix}b`, text("B"));
      await bus.publish(`odin.events.task.${prefix}a`, text("T"));
      await waitFor(() => all.filter((s) => s.includes(prefix)).length === 2 && one.length === 1);
      assert.deepEqual(one, ["A"]);
      await s1.stop();
      await s2.stop();
    });
  });
}
