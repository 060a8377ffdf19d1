// The run store and the event bus on a real 3-node JetStream cluster: replicated buckets and
// streams ride through the loss of the node leading them; too few replicas are refused.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import {
  EventBusConfigError,
  EventBusUnavailableError,
  NatsEventBus,
  natsServers,
} from "@odin/events";
import { startNats, startNatsCluster, type NatsCluster } from "@odin/testing";
import { NatsKeyValueStore, StoreConfigError } from "./nats.js";
import { StoreUnavailableError } from "./store.js";

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * The name of the server leading a stream's replica group. Asked again while the cluster answers
 * slowly or not at all (a node was just killed, an election runs, the machine is busy).
 */
async function streamLeader(url: string, stream: string): Promise<string | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connect({ servers: natsServers(url), timeout: 2000 });
      try {
        const jsm = await jetstreamManager(nc, { timeout: 5000 });
        return (await jsm.streams.info(stream)).cluster?.leader;
      } finally {
        await nc.close();
      }
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Retries an operation the store reports as unavailable (what the services' callers do). */
async function retried<T>(op: () => Promise<T>, attempts: { count: number }): Promise<T> {
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || ++attempts.count > 60) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe("on a 3-node JetStream cluster", () => {
  let cluster: NatsCluster;
  before(async () => {
    cluster = await startNatsCluster({ nodes: 3 });
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a bucket with 3 replicas keeps every write and goes on after its leader node is SIGKILLed", async () => {
    // A leader moving to another node is not a lost store: nothing may be reported lost or reset.
    const warnings: string[] = [];
    const log = {
      info: () => undefined,
      warn: (msg: string) => void warnings.push(msg),
      error: (msg: string) => void warnings.push(msg),
    };
    const store = await NatsKeyValueStore.connect({
      servers: cluster.url,
      bucket: "ha",
      replicas: 3,
      timeoutMs: 2000,
      log,
    });
    const bus = await NatsEventBus.connect({ servers: cluster.url, replicas: 3, log });
    const changes: string[] = [];
    const watch = await store.watch("runs.", (c) => void changes.push(c.op));
    let restart: (() => Promise<void>) | undefined;
    try {
      const before = await store.create("runs.a", text("1"));
      const leader = await streamLeader(cluster.url, "KV_ha");
      const node = cluster.nodes.find((n) => n.name === leader);
      assert.ok(node, `the bucket's leader ${String(leader)} is a node of the cluster`);
      await node.kill("SIGKILL");
      restart = () => node.restart();
      const attempts = { count: 0 };
      const revision = await retried(() => store.update("runs.a", text("2"), before), attempts);
      assert.ok(revision > before);
      const entry = await retried(() => store.get("runs.a"), attempts);
      assert.equal(entry && decode(entry.value), "2");
      // A publisher retries as the launcher does: the stream may be electing a leader too.
      let ack;
      for (;;) {
        try {
          ack = await bus.publish("odin.events.task.r1", text("e"), { msgId: "r1.t.1.x" });
          break;
        } catch (err) {
          if (!(err instanceof EventBusUnavailableError) || ++attempts.count > 60) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      assert.ok(ack.sequence > 0);
      const newLeader = await streamLeader(cluster.url, "KV_ha");
      assert.notEqual(newLeader, leader, "another node leads the bucket");
      await node.restart();
      restart = undefined;
      // The restarted node catches up: written through it, read back through every node. Until
      // its JetStream has caught up with the cluster, connecting through it is unavailable (not
      // an error): asked again, as a service starting beside it would be restarted.
      for (const n of cluster.nodes) {
        const one = await retried(
          () => NatsKeyValueStore.connect({ servers: n.url, bucket: "ha", replicas: 3 }),
          { count: 0 },
        );
        try {
          const seen = await retried(() => one.get("runs.a"), attempts);
          assert.equal(seen && decode(seen.value), "2", `read through ${n.name}`);
        } finally {
          await one.close();
        }
      }
      assert.deepEqual(
        warnings.filter((w) => /was lost/.test(w)),
        [],
        "a moved leader is not reported as a lost bucket or stream",
      );
      assert.ok(!changes.includes("reset"), `the watch was not reset: ${changes.join(",")}`);
    } finally {
      await watch.stop();
      await restart?.();
      await bus.close();
      await store.close();
    }
  });

  test("reads of a replicated bucket are asked of its leader, never of any replica (which may lag)", async () => {
    // The store and the observer on one node: a subscription is known to that node once flushed,
    // while the other nodes learn of it over the routes a moment later (reads sent through them
    // would go uncounted).
    const node = cluster.nodes[0]!.url;
    const store = await NatsKeyValueStore.connect({ servers: node, bucket: "reads", replicas: 3 });
    // Count the read requests as the servers route them: leader gets and direct gets.
    const nc = await connect({ servers: natsServers(node) });
    const seen = { leader: 0, direct: 0 };
    const leaderGets = nc.subscribe("$JS.API.STREAM.MSG.GET.KV_reads", {
      callback: () => void seen.leader++,
    });
    const directGets = nc.subscribe("$JS.API.DIRECT.GET.KV_reads.>", {
      callback: () => void seen.direct++,
    });
    const directGetsOld = nc.subscribe("$JS.API.DIRECT.GET.KV_reads", {
      callback: () => void seen.direct++,
    });
    await nc.flush();
    try {
      await store.create("runs.a", text("1"));
      for (let i = 0; i < 5; i++) assert.equal(decode((await store.get("runs.a"))!.value), "1");
      await nc.flush();
      assert.equal(seen.direct, 0, "no read went to any replica");
      assert.ok(seen.leader >= 5, `${seen.leader} reads went to the leader`);
    } finally {
      leaderGets.unsubscribe();
      directGets.unsubscribe();
      directGetsOld.unsubscribe();
      await nc.close();
      await store.close();
    }
  });

  test("a bucket or stream made with fewer replicas than configured is refused, saying how to scale it", async () => {
    const single = await NatsKeyValueStore.connect({ servers: cluster.url, bucket: "r1" });
    await single.close();
    await assert.rejects(
      NatsKeyValueStore.connect({ servers: cluster.url, bucket: "r1", replicas: 3 }),
      (err: unknown) =>
        err instanceof StoreConfigError &&
        /KV_r1\) has 1 replica but 3 are configured/.test(err.message) &&
        /nats stream edit KV_r1 --replicas 3/.test(err.message) &&
        /ODIN_NATS_REPLICAS=1/.test(err.message),
    );
    // The event stream as a single-server deployment made it, before the cluster was scaled.
    const nc = await connect({ servers: natsServers(cluster.url) });
    await (await jetstreamManager(nc)).streams.delete("ODIN_EVENTS");
    await nc.close();
    const bus = await NatsEventBus.connect({ servers: cluster.url });
    await bus.close();
    await assert.rejects(
      NatsEventBus.connect({ servers: cluster.url, replicas: 3 }),
      (err: unknown) =>
        err instanceof EventBusConfigError &&
        /nats stream edit ODIN_EVENTS --replicas 3/.test(err.message),
    );
    // More replicas than configured is fine (a bucket scaled up by hand).
    const more = await NatsKeyValueStore.connect({
      servers: cluster.url,
      bucket: "ha",
      replicas: 1,
    });
    await more.close();
  });
});

test("asking one server for 3 replicas says the replica count exceeds the cluster", async () => {
  const server = await startNats({ runtime: "binary" });
  try {
    await assert.rejects(
      NatsKeyValueStore.connect({ servers: server.url, bucket: "r3", replicas: 3 }),
      (err: unknown) =>
        err instanceof StoreConfigError &&
        /must not exceed the number of JetStream servers/.test(err.message),
    );
    await assert.rejects(
      NatsEventBus.connect({ servers: server.url, replicas: 3 }),
      (err: unknown) =>
        err instanceof EventBusConfigError && /set ODIN_NATS_REPLICAS=1/.test(err.message),
    );
  } finally {
    await server.stop();
  }
});
