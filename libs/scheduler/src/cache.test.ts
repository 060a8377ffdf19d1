// The task cache (docs/caching.md) through the scheduler: one thing changed → the task runs again;
// nothing changed → it is reused; an earlier result that is gone or altered → it runs again.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryEventBus } from "@odin/events";
import { MemoryKeyValueStore } from "@odin/run-store";
import { loadPipeline } from "@odin/pipeline-spec";
import { silentLogger } from "@odin/service-kit";
import { cacheKey } from "./cache.js";
import type { RunRecord, TaskRecord } from "./records.js";
import { Scheduler } from "./scheduler.js";
import { SchedulerStore } from "./store.js";
import { checkouts, runRecord, ScriptedLauncher, YamlPipelines } from "./testing/fixtures.js";

const digestA = `sha256:${"a".repeat(64)}`;
const digestB = `sha256:${"b".repeat(64)}`;

/** prep (reads an input file, writes data.bin) → train (writes its model directory entry). */
function pipeline(o: { lr?: string; seed?: string; trainImage?: string; extra?: string } = {}) {
  return `
name: p
parameters:
  lr: {type: string, default: "${o.lr ?? "0.1"}"}
tasks:
  - name: prep
    image: prep:1
    command: [prep]
    inputs: [/data/in/a.txt]
    outputs: {data: "\${TASK_PATH}/data.bin"}
  - name: train
    image: ${o.trainImage ?? "trainer:latest"}
    command: [train]
    args: ["--data", "\${RUN_PATH}/prep/data.bin", "--lr", "\${{ params.lr }}"]
    env: {SEED: "${o.seed ?? "1"}"}
    depends: [prep]
    outputs: {model: "\${TASK_PATH}/model.pt"}
${o.extra ?? ""}`;
}

interface World {
  texts: Record<string, string>;
  launcher: ScriptedLauncher;
  scheduler: Scheduler;
  clock: { skew: number };
  run(options?: { noCache?: boolean; pipeline?: string }): Promise<Map<string, TaskRecord>>;
}

async function world(text = pipeline()): Promise<World> {
  const kv = new MemoryKeyValueStore();
  const bus = new MemoryEventBus();
  const launcher = new ScriptedLauncher(bus);
  const texts: Record<string, string> = { p: text };
  const clock = { skew: 0 };
  const scheduler = new Scheduler({
    store: new SchedulerStore(kv),
    bus,
    pipelines: new YamlPipelines(texts),
    checkouts,
    launcher,
    dataPath: "/data/odin",
    logger: silentLogger,
    now: () => Date.now() + clock.skew,
  });
  await scheduler.start();
  after(async () => {
    await scheduler.close();
    await bus.close();
  });
  launcher.files.set("/data/in/a.txt", "input v1");
  launcher.scripts = {
    prep: { writes: { "${TASK_PATH}/data.bin": "data v1" } },
    train: { writes: { "${TASK_PATH}/model.pt": "model v1" }, outputs: { accuracy: 0.9 } },
  };
  const run = async (options: { noCache?: boolean; pipeline?: string } = {}) => {
    const record = await scheduler.submit({
      pipeline: options.pipeline ?? "p",
      submittedBy: "test",
      ...(options.noCache ? { noCache: true } : {}),
    });
    const until = Date.now() + 60_000;
    for (;;) {
      const view = await scheduler.get(record.id);
      if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(view.run.state)) {
        assert.equal(view.run.state, "SUCCEEDED", JSON.stringify(view.tasks));
        // Results are recorded just after success.
        await scheduler.cacheIdle();
        const records = await scheduler.get(record.id);
        return new Map(records.tasks.map((t) => [t.name, t.record]));
      }
      if (Date.now() > until) throw new Error(`run ${record.id} is still ${view.run.state}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { texts, launcher, scheduler, clock, run };
}

const cached = (t: TaskRecord | undefined): string | undefined => t?.cachedFrom?.runId;

test("nothing changed: every task is reused, nothing is launched, and the run links to the source", async () => {
  const w = await world();
  const first = await w.run();
  const firstRun = first.get("prep")!.cachedFrom;
  assert.equal(firstRun, undefined);
  const entries = await w.scheduler.listCache({});
  assert.deepEqual(entries.map((e) => e.task).sort(), ["prep", "train"]);
  const launches = w.launcher.launches.length;
  const second = await w.run();
  assert.equal(w.launcher.launches.length, launches, "nothing launched");
  const source = entries[0]!.runId;
  for (const name of ["prep", "train"]) {
    const t = second.get(name)!;
    assert.equal(t.state, "SUCCEEDED");
    assert.equal(t.reason, "Cached");
    assert.equal(cached(t), source);
  }
  // The reported outputs are reused, and the outputs are where this run's dependents look.
  assert.equal(second.get("train")!.outputsJson, JSON.stringify({ accuracy: 0.9 }));
  const runId = [...w.launcher.files.keys()].find(
    (p) => p.endsWith("/train/model.pt") && !p.includes(source),
  );
  assert.ok(runId, "train's output linked into the new run");
  // Each entry counts its reuse.
  const after = await w.scheduler.listCache({ task: "train" });
  assert.equal(after[0]!.hits, 1);
});

test("an argument changed by a parameter: the task runs again (its upstream is reused)", async () => {
  const w = await world();
  await w.run();
  w.texts.p = pipeline({ lr: "0.2" });
  const second = await w.run();
  assert.ok(cached(second.get("prep")));
  assert.equal(cached(second.get("train")), undefined);
});

test("an env value changed: the task runs again", async () => {
  const w = await world();
  await w.run();
  w.texts.p = pipeline({ seed: "2" });
  const second = await w.run();
  assert.ok(cached(second.get("prep")));
  assert.equal(cached(second.get("train")), undefined);
});

test("one byte of an input file changed: the task runs again; its dependent is reused when the upstream's outputs come out the same", async () => {
  const w = await world();
  await w.run();
  w.launcher.files.set("/data/in/a.txt", "input v2");
  const second = await w.run();
  assert.equal(cached(second.get("prep")), undefined);
  // prep wrote the same data.bin again: train's key is the same.
  assert.ok(cached(second.get("train")));
});

test("an upstream output changed: the dependent runs again", async () => {
  const w = await world();
  await w.run();
  w.launcher.files.set("/data/in/a.txt", "input v2");
  w.launcher.scripts.prep = { writes: { "${TASK_PATH}/data.bin": "data v2" } };
  const second = await w.run();
  assert.equal(cached(second.get("prep")), undefined);
  assert.equal(cached(second.get("train")), undefined);
});

test("an output file deleted or changed: the task runs again", async () => {
  const w = await world();
  await w.run();
  const model = [...w.launcher.files.keys()].find((p) => p.endsWith("/train/model.pt"))!;
  w.launcher.files.delete(model);
  const second = await w.run();
  assert.ok(cached(second.get("prep")));
  assert.equal(cached(second.get("train")), undefined);
  // The new run's result is recorded; altering its file also misses.
  const newer = [...w.launcher.files.keys()].find(
    (p) => p.endsWith("/train/model.pt") && p !== model,
  )!;
  w.launcher.files.set(newer, "tampered");
  const third = await w.run();
  assert.equal(cached(third.get("train")), undefined);
});

test("the image's digest: a tag the cluster has since run as another digest misses; a pinned digest is the key", async () => {
  const w = await world();
  await w.run();
  // Another pipeline runs the same tag, and the cluster ran it as a new digest.
  w.texts.other = `
name: other
tasks:
  - name: t
    image: trainer:latest
    command: [x]
`;
  w.launcher.digests.set("trainer:latest", digestB);
  await w.run({ pipeline: "other" });
  const second = await w.run();
  assert.ok(cached(second.get("prep")));
  assert.equal(cached(second.get("train")), undefined, "the tag now means another image");
  const third = await w.run();
  assert.ok(cached(third.get("train")), "the new digest's result is reused");

  const pinned = await world(pipeline({ trainImage: `trainer@${digestA}` }));
  await pinned.run();
  pinned.texts.p = pipeline({ trainImage: `trainer@${digestB}` });
  const other = await pinned.run();
  assert.equal(cached(other.get("train")), undefined);
});

test("no digest known for a tag: no hit, unless the task opts in with cache_image_tag", async () => {
  const w = await world();
  w.launcher.digests.set("trainer:latest", "");
  await w.run();
  const second = await w.run();
  assert.equal(cached(second.get("train")), undefined);

  const optIn = await world(pipeline().replace("    env:", "    cache_image_tag: true\n    env:"));
  optIn.launcher.digests.set("trainer:latest", "");
  await optIn.run();
  const again = await optIn.run();
  assert.ok(cached(again.get("train")));
  const entry = (await optIn.scheduler.listCache({ task: "train" }))[0]!;
  assert.equal(entry.image, "tag:trainer:latest");
});

test("cache: false, --no-cache and cache_ttl", async () => {
  const w = await world(
    pipeline().replace("    command: [prep]", "    command: [prep]\n    cache: false"),
  );
  await w.run();
  assert.deepEqual(
    (await w.scheduler.listCache({})).map((e) => e.task),
    ["train"],
    "a task with cache: false is never recorded",
  );
  const second = await w.run();
  assert.equal(cached(second.get("prep")), undefined);
  // prep ran again and wrote the same data: train is reused.
  assert.ok(cached(second.get("train")));

  const noCache = await w.run({ noCache: true });
  assert.equal(cached(noCache.get("train")), undefined);

  const ttl = await world(pipeline().replace("    env:", "    cache_ttl: 1h\n    env:"));
  await ttl.run();
  ttl.clock.skew = 2 * 3_600_000;
  const later = await ttl.run();
  assert.ok(cached(later.get("prep")), "prep keeps the default of 30 days");
  assert.equal(cached(later.get("train")), undefined, "train's result is older than its cache_ttl");
});

test("retries and caching compose: the attempt that succeeded is recorded once; a cached task is never retried", async () => {
  const w = await world(
    pipeline().replace("    env:", "    retries: 2\n    retry_backoff: 0s\n    env:"),
  );
  w.launcher.scripts.train = [{ exitCode: 1 }, { writes: { "${TASK_PATH}/model.pt": "model v1" } }];
  await w.run();
  const entries = await w.scheduler.listCache({ task: "train" });
  assert.equal(entries.length, 1);
  assert.equal(entries[0]!.attempt, 2);
  const launches = w.launcher.launches.length;
  const second = await w.run();
  const train = second.get("train")!;
  assert.equal(train.attempt, 1, "one attempt, not run");
  assert.equal(train.cachedFrom?.attempt, 2);
  assert.equal(w.launcher.launches.length, launches);
});

test("odin cache rm: a removed entry is not reused", async () => {
  const w = await world();
  await w.run();
  const [entry] = await w.scheduler.listCache({ task: "train" });
  await assert.rejects(w.scheduler.deleteCache({ keys: ["xyz"] }), /hex digits/);
  assert.equal(await w.scheduler.deleteCache({ keys: [entry!.key.slice(0, 12)] }), 1);
  const second = await w.run();
  assert.ok(cached(second.get("prep")));
  assert.equal(cached(second.get("train")), undefined);
  assert.equal(await w.scheduler.deleteCache({ pipeline: "p" }), 2);
  assert.equal((await w.scheduler.listCache({})).length, 0);
});

test("a rendered WORK_PATH is keyed by its content's digest, not by its path", () => {
  const loaded = loadPipeline(
    'name: t\ntasks:\n- {name: a, image: i, command: c, args: ["${WORK_PATH}/conf.yml"]}\n',
    { file: "t/main.yml", path: "t" },
  );
  const pipeline = loaded.pipeline!;
  const task = pipeline.tasks[0]!;
  const run = (id: string, work?: { path: string; digest: string }): RunRecord =>
    runRecord(id, {
      pipeline: "t",
      pipelineName: "t",
      rootPath: "/r/commits/c",
      ...(work ? { workPath: work.path, workDigest: work.digest } : {}),
    });
  const key = (r: RunRecord) =>
    cacheKey({ run: r, pipeline, task, image: "img", recordOf: () => undefined })!.key;
  const a = key(run("a", { path: "/r/renders/c/a", digest: digestA }));
  assert.equal(a, key(run("b", { path: "/r/renders/c/b", digest: digestA })), "same content");
  assert.notEqual(a, key(run("b", { path: "/r/renders/c/b", digest: digestB })), "other content");
  assert.notEqual(a, key(run("a")));
  // Without a rendering the key is what it was: the checkout's path, the same for both runs.
  assert.equal(key(run("a")), key(run("b")));
});
