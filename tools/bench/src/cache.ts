// What a cache miss adds to a launch (docs/caching.md). One scheduler (in-memory store and bus,
// as in `odin server`) launches a fan of BENCH_CACHE_TASKS (2,000) independent tasks into a
// launcher that only counts, in alternating rounds of two shapes, side by side in one process:
//   baseline — tasks without `outputs` (the cache is never consulted; the store holds the same
//              BENCH_CACHE_ENTRIES entries as for missNew)
//   missNew      — the same tasks declaring an input and an output, caching on, with
//                  BENCH_CACHE_ENTRIES (10,000) entries of another pipeline in the cache
//   missChanged  — the same, but every task has an entry (its earlier version, with other args):
//                  each launch computes its key, and misses
// and prints, per shape, the median over BENCH_CACHE_ROUNDS (7) of the time from SubmitRun to the
// last task's launch call, per task, and each miss shape's ratio to the baseline.
import { MemoryEventBus } from "@odin/events";
import { loadPipeline, type LaunchSpec } from "@odin/pipeline-spec";
import { MemoryKeyValueStore } from "@odin/run-store";
import { Scheduler, SchedulerStore, type LauncherPort } from "@odin/scheduler";
import { silentLogger } from "@odin/service-kit";

const tasks = Number(process.env.BENCH_CACHE_TASKS ?? 2000);
const entries = Number(process.env.BENCH_CACHE_ENTRIES ?? 10_000);
const rounds = Number(process.env.BENCH_CACHE_ROUNDS ?? 7);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const round = (x: number) => Math.round(x * 1000) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function yaml(cached: boolean): string {
  const lines = ["name: fan", "tasks:"];
  for (let i = 0; i < tasks; i++) {
    lines.push(
      `- name: t${i}`,
      "  image: registry.example/train:latest",
      "  command: [train]",
      `  args: ["--shard", "${i}", "--out", "\${TASK_PATH}/model"]`,
      "  env: {SEED: '1'}",
    );
    if (cached) {
      lines.push(
        "  inputs: ['${DATA_PATH}/in/data.txt']",
        "  outputs: {model: '${TASK_PATH}/model'}",
      );
    }
  }
  return lines.join("\n");
}

/** Counts launches; hashes nothing (a miss must not wait for hashing anyway). */
class CountingLauncher implements LauncherPort {
  launched = 0;
  hashed = 0;
  lastAt = 0;
  onAll: (() => void) | undefined;
  launch(_spec: LaunchSpec): Promise<{ objectName: string }> {
    this.launched++;
    this.lastAt = now();
    if (this.launched === tasks) this.onAll?.();
    return Promise.resolve({ objectName: "x" });
  }
  cancel(): Promise<void> {
    return Promise.resolve();
  }
  deleteRun(): Promise<{ deleted: number; dataPurged: boolean }> {
    return Promise.resolve({ deleted: 0, dataPurged: false });
  }
  hashFiles(paths: readonly string[]): Promise<string[]> {
    this.hashed += paths.length;
    return Promise.resolve(paths.map(() => `sha256:${"0".repeat(64)}`));
  }
}

type Shape = "baseline" | "missNew" | "missChanged";

async function once(shape: Shape): Promise<{ ms: number; hashedBeforeLastLaunch: number }> {
  const cached = shape !== "baseline";
  const kv = new MemoryKeyValueStore();
  const encoder = new TextEncoder();
  {
    // The same store for every shape (its size changes its own costs): entries of another
    // pipeline, or of these tasks' earlier version; a digest known for the image.
    for (let i = 0; i < entries; i++) {
      const key = i.toString(16).padStart(64, "0");
      await kv.put(
        `cache.${key}`,
        encoder.encode(
          JSON.stringify({
            key,
            partial: key,
            pipeline: shape === "missChanged" ? "fan" : "other",
            task: `t${i % tasks}`,
            runId: "other-00000000",
            attempt: 1,
            createTime: Date.now(),
            image: `sha256:${"1".repeat(64)}`,
            inputs: [],
            outputs: [],
            resultDigest: key,
          }),
        ),
      );
    }
    await kv.put(
      "images.bench",
      encoder.encode(
        JSON.stringify({
          image: "registry.example/train:latest",
          digest: `sha256:${"2".repeat(64)}`,
          time: Date.now(),
        }),
      ),
    );
  }
  const bus = new MemoryEventBus();
  const launcher = new CountingLauncher();
  const text = yaml(cached);
  const loaded = loadPipeline(text, { path: "fan" });
  if (!loaded.valid) throw new Error(JSON.stringify(loaded.problems.slice(0, 2)));
  const scheduler = new Scheduler({
    store: new SchedulerStore(kv),
    bus,
    pipelines: {
      getPipeline: () =>
        Promise.resolve({
          commit: "c".repeat(40),
          pipeline: loaded.pipeline!,
          problems: [],
          parameters: {},
        }),
    },
    checkouts: {
      acquire: (commit) => Promise.resolve({ commit, path: "/data/pipelines/commits/c" }),
      release: () => Promise.resolve(),
    },
    launcher,
    dataPath: "/data/odin",
    logger: silentLogger,
  });
  await scheduler.start();
  const all = new Promise<void>((resolve) => (launcher.onAll = resolve));
  const hashedAtStart = launcher.hashed;
  const t0 = now();
  await scheduler.submit({ pipeline: "fan", submittedBy: "bench" });
  await all;
  const ms = launcher.lastAt - t0;
  const hashed = launcher.hashed - hashedAtStart;
  await scheduler.close();
  await bus.close();
  await kv.close();
  return { ms, hashedBeforeLastLaunch: hashed };
}

// One warm-up of each, then alternating rounds.
const shapes: Shape[] = ["baseline", "missNew", "missChanged"];
for (const shape of shapes) await once(shape);
const times: Record<Shape, number[]> = { baseline: [], missNew: [], missChanged: [] };
for (let i = 0; i < rounds; i++)
  for (const shape of shapes) times[shape].push((await once(shape)).ms);
const base = median(times.baseline);
const result = (ms: number) => ({
  msToLastLaunch: round(ms),
  usPerTask: round((ms * 1000) / tasks),
  ratio: round(ms / base),
  addedUsPerLaunch: round(((ms - base) * 1000) / tasks),
});
console.log(
  JSON.stringify(
    {
      tasks,
      cacheEntries: entries,
      rounds,
      baseline: { msToLastLaunch: round(base), usPerTask: round((base * 1000) / tasks) },
      missNew: result(median(times.missNew)),
      missChanged: result(median(times.missChanged)),
    },
    null,
    2,
  ),
);
