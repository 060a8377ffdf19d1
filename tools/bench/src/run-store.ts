// Benchmark: the JetStream KV run store against a private nats-server. 10,000 task keys of a
// realistic size: creates, reads, compare-and-set updates (each with 64 in flight, as a scheduler
// applying events), one-at-a-time latencies, prefix listings, and a contended counter through
// updateWithRetry. Prints JSON.
import { startNats } from "@odin/testing";
import {
  jsonCodec,
  MemoryKeyValueStore,
  NatsKeyValueStore,
  updateWithRetry,
  type KeyValueStore,
} from "@odin/run-store";
import { runKey, runTasksFilter, taskKey } from "@odin/scheduler";

const tasks = Number(process.env.BENCH_TASKS ?? 10_000);
const inFlight = Number(process.env.BENCH_IN_FLIGHT ?? 64);
const latencySamples = 1000;

/** A task record about the size the scheduler keeps (state, attempt, times, object name…). */
function taskRecord(i: number, state: string, attempt: number): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      name: `t${i}`,
      state,
      attempt,
      createdAt: "2026-01-01T00:00:00.000Z",
      startedAt: state === "pending" ? null : "2026-01-01T00:00:01.000Z",
      objectName: `bench-run-x7k2--t${i}-a${attempt}`,
      exitCode: null,
      reason: "",
      outputs: { accuracy: 0.9, rows: 1000 + i },
    }),
  );
}

/** Runs `op` for 0..count-1 with `inFlight` operations outstanding; returns operations per second. */
async function rate(count: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await op(next++);
    }),
  );
  return Math.round(count / ((performance.now() - started) / 1000));
}

/** One operation at a time; p50/p99 in ms. */
async function latency(op: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < latencySamples; i++) {
    const started = performance.now();
    await op(i);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => Number((samples[Math.floor(q * (samples.length - 1))] ?? 0).toFixed(3));
  return { p50: at(0.5), p99: at(0.99) };
}

async function timed(fn: () => Promise<number>): Promise<{ ms: number; count: number }> {
  const started = performance.now();
  const count = await fn();
  return { ms: Math.round(performance.now() - started), count };
}

async function measure(store: KeyValueStore): Promise<Record<string, unknown>> {
  const runId = "bench-run-x7k2";
  const key = (i: number) => taskKey(runId, `t${i}`);
  const revisions = new Array<number>(tasks);

  const createsPerSec = await rate(tasks, async (i) => {
    revisions[i] = await store.create(key(i), taskRecord(i, "pending", 1));
  });
  const getsPerSec = await rate(tasks, (i) => store.get(key(i)));
  const casUpdatesPerSec = await rate(tasks, async (i) => {
    revisions[i] = await store.update(key(i), taskRecord(i, "running", 1), revisions[i]!);
  });
  const getLatencyMs = await latency((i) => store.get(key(i % tasks)));
  const updateLatencyMs = await latency(async (i) => {
    const k = i % tasks;
    revisions[k] = await store.update(key(k), taskRecord(k, "succeeded", 1), revisions[k]!);
  });

  const listKeys = await timed(async () => {
    let n = 0;
    for await (const _ of store.keys(runTasksFilter(runId))) n++;
    return n;
  });
  const listEntries = await timed(async () => {
    let n = 0;
    for await (const _ of store.list(runTasksFilter(runId))) n++;
    return n;
  });

  // 20 writers each add 25 to one run record: conflicts are retried, none is lost.
  const codec = jsonCodec<{ finished: number }>();
  let attempts = 0;
  const contended = await timed(async () => {
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = 0; i < 25; i++) {
          const outcome = await updateWithRetry(
            store,
            runKey(runId),
            (r) => ({ finished: (r?.finished ?? 0) + 1 }),
            codec,
          );
          attempts += outcome.attempts;
        }
      }),
    );
    const entry = await store.get(runKey(runId));
    return entry === undefined ? 0 : codec.decode(entry.value).finished;
  });

  return {
    createsPerSec,
    getsPerSec,
    casUpdatesPerSec,
    getLatencyMs,
    updateLatencyMs,
    listKeys,
    listEntries,
    contendedCounter: {
      writers: 20,
      increments: 500,
      final: contended.count,
      ms: contended.ms,
      attemptsPerIncrement: Number((attempts / 500).toFixed(2)),
    },
  };
}

const server = await startNats({ runtime: "binary" });
try {
  const nats = await NatsKeyValueStore.connect({
    servers: server.url,
    name: "bench",
    bucket: "bench",
  });
  const natsFigures = await measure(nats);
  await nats.close();
  const memory = new MemoryKeyValueStore();
  const memoryFigures = await measure(memory);
  await memory.close();
  console.log(
    JSON.stringify(
      {
        benchmark: "run-store",
        tasks,
        inFlight,
        valueBytes: taskRecord(0, "running", 1).byteLength,
        nats: { server: "nats-server (file storage, history 1)", ...natsFigures },
        memory: memoryFigures,
      },
      null,
      2,
    ),
  );
} finally {
  await server.stop();
}
