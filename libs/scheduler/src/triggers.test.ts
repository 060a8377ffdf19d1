// Commit triggers across scheduler replicas sharing a real NATS: ten commits at once start exactly
// the runs each policy asks for, once, however many replicas check them, and a replica dying
// between its claim and its run (or after the run, before recording it) loses and doubles nothing.
// The commits come from a scripted history (repo-sync's ListCommits is tested on real git in
// libs/repository, and the whole path in tests/e2e/src/triggers.test.ts); claims take over on a
// test clock, never on the wall clock.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryEventBus } from "@odin/events";
import { loadPipeline } from "@odin/pipeline-spec";
import { NatsKeyValueStore, type KeyValueStore } from "@odin/run-store";
import { createLogger, silentLogger } from "@odin/service-kit";
import { startNats } from "@odin/testing";
import type { CommitSource, DeclaredTriggerSource, RepoCommit } from "./ports.js";
import type { RunRecord } from "./records.js";
import { Scheduler } from "./scheduler.js";
import { SchedulerStore } from "./store.js";
import { checkouts, ScriptedLauncher, YamlPipelines } from "./testing/fixtures.js";
import {
  triggerClaimKey,
  triggerCursorKey,
  TriggerRunner,
  type TriggerClaim,
  type TriggerRunStarter,
} from "./triggers.js";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const pipelineTexts = {
  train: `name: train
parameters:
  lr: {type: number, default: 0.1}
tasks:
- {name: a, image: i, command: c, args: ["--lr=\${{ params.lr }}"]}
triggers:
  code: {paths: [src/], policy: each, parameters: {lr: 0.5}}
`,
  latest: `name: latest
tasks:
- {name: a, image: i, command: c}
triggers:
  follow: {paths: [/train/src], policy: newest}
`,
};

/** The triggers of the pipelines above, as the registry lists them. */
const declared: DeclaredTriggerSource = {
  declaredTriggers: () =>
    Promise.resolve(
      Object.entries(pipelineTexts).map(([path, text]) => {
        const { pipeline } = loadPipeline(text, { path });
        return { pipeline: path, pipelineName: pipeline!.name, triggers: pipeline!.triggers! };
      }),
    ),
};

/** A branch's history, oldest first: what ListCommits answers from. */
class History implements CommitSource {
  readonly commits: RepoCommit[] = [];
  private n = 0;
  add(author: string, paths: string[]): RepoCommit {
    const sha = (++this.n).toString(16).padStart(40, "c");
    const [name, email] = author.split(" <");
    const commit: RepoCommit = {
      sha,
      author: { name: name!, email: email!.slice(0, -1) },
      authorTime: new Date(0),
      subject: `commit ${this.n}`,
      changedPaths: paths,
    };
    this.commits.push(commit);
    return commit;
  }
  head(): string {
    return this.commits.at(-1)!.sha;
  }
  listCommits(since: string, until: string | undefined, max: number) {
    const end = this.commits.findIndex((c) => c.sha === (until ?? this.head())) + 1;
    const start = since === "" ? end - 1 : this.commits.findIndex((c) => c.sha === since) + 1;
    return Promise.resolve({
      until: until ?? this.head(),
      commits: this.commits.slice(Math.max(start, end - max), end),
      truncated: end - start > max,
      rewritten: false,
      sinceUnknown: false,
    });
  }
}

class Clock {
  t = Date.parse("2026-01-01T00:00:00Z");
  readonly now = (): number => this.t;
}

/** What the runners warn about, shown when a test fails. */
const warned: string[] = [];
const warnings = createLogger({
  service: "test",
  level: "warn",
  write: (line) => void warned.push(line),
});

async function world() {
  const nats = await startNats({ runtime: "binary" });
  cleanups.push(() => nats.stop());
  const bus = new MemoryEventBus();
  cleanups.push(() => bus.close());
  const launcher = new ScriptedLauncher(bus);
  const history = new History();
  history.add("Seed <seed@example.com>", ["train/main.yml", "latest/main.yml"]);
  const clock = new Clock();
  /** One replica: its own store connection, scheduler and trigger runner. */
  const replica = async (
    extra: {
      afterClaim?: (claim: TriggerClaim) => Promise<void>;
      wrapRuns?: (runs: TriggerRunStarter) => TriggerRunStarter;
    } = {},
  ) => {
    const kv = await NatsKeyValueStore.connect({ servers: nats.url, timeoutMs: 10_000 });
    const scheduler = new Scheduler({
      store: new SchedulerStore(kv),
      bus,
      pipelines: new YamlPipelines(pipelineTexts),
      checkouts,
      launcher,
      dataPath: "/data/odin",
      logger: silentLogger,
    });
    await scheduler.start();
    const r = {
      kv,
      claims: 0,
      runner: new TriggerRunner({
        kv,
        runs: extra.wrapRuns ? extra.wrapRuns(scheduler) : scheduler,
        declared,
        commits: history,
        logger: warnings,
        now: clock.now,
        timers: false,
        takeoverMs: 10_000,
        afterClaim: async (_name, claim) => {
          r.claims++;
          await extra.afterClaim?.(claim);
        },
      }),
      close: async () => {
        await r.runner.close();
        await scheduler.close();
        await kv.close();
      },
    };
    await r.runner.start();
    cleanups.push(() => r.close());
    return r;
  };
  return { history, clock, replica };
}

/** Ten commits at once: 1, 2, 4, 5, 7, 8 change train/src; the rest only other files. */
function pushTen(history: History): RepoCommit[] {
  const matching: RepoCommit[] = [];
  for (let i = 0; i < 10; i++) {
    const author = i % 2 ? "Ada Lovelace <ada@example.com>" : "Grace Hopper <grace@example.com>";
    const c = history.add(author, i % 3 === 0 ? [`docs/${i}.md`] : [`train/src/${i}.py`]);
    if (i % 3 !== 0) matching.push(c);
  }
  return matching;
}

async function runsOf(kv: KeyValueStore, pipeline: string): Promise<RunRecord[]> {
  return (await new SchedulerStore(kv).listRuns())
    .map((r) => r.record)
    .filter((r) => r.pipeline === pipeline)
    .sort((a, b) => a.createTime - b.createTime);
}

async function cursor(kv: KeyValueStore): Promise<string> {
  const entry = await kv.get(triggerCursorKey);
  return (JSON.parse(new TextDecoder().decode(entry!.value)) as { commit: string }).commit;
}

describe("commit triggers across replicas (real NATS)", () => {
  test("two replicas hear one push of ten commits: each starts one run per matching commit, newest one; none doubled", async (t) => {
    const { history, replica } = await world();
    const a = await replica();
    const b = await replica();
    const matching = pushTen(history);
    await Promise.all([a.runner.check(history.head()), b.runner.check(history.head())]);

    const train = await runsOf(a.kv, "train");
    t.diagnostic(`train runs: ${train.length}; claims won: a ${a.claims}, b ${b.claims}`);
    assert.equal(train.length, 6, warned.join("\n"));
    assert.deepEqual(
      train.map((r) => r.commit),
      matching.map((c) => c.sha),
      "one run per matching commit, created oldest first",
    );
    for (const [i, run] of train.entries()) {
      const c = matching[i]!;
      assert.equal(
        run.submittedBy,
        `commit:${c.sha.slice(0, 7)} by ${c.author.name} <${c.author.email}>`,
      );
      assert.deepEqual(run.labels, { trigger: "train.code", commit: c.sha });
      assert.deepEqual(run.parameters, { lr: 0.5 });
    }
    const latest = await runsOf(a.kv, "latest");
    assert.deepEqual(
      latest.map((r) => r.commit),
      [matching.at(-1)!.sha],
    );
    assert.equal(a.claims + b.claims, 7);
    assert.equal(await cursor(a.kv), history.head());

    // Checked again, by a third replica started now: nothing new.
    const c = await replica();
    await Promise.all([a.runner.check(), b.runner.check(), c.runner.check()]);
    assert.equal((await runsOf(a.kv, "train")).length, 6);
    assert.equal(c.claims, 0);
  });

  test("a replica dies after claiming, before submitting: another starts that run once, after the takeover time", async () => {
    const { history, clock, replica } = await world();
    // Replica a claims, then never gets to submit (it "dies": its afterClaim never returns).
    let claimed: (c: TriggerClaim) => void = () => undefined;
    const firstClaim = new Promise<TriggerClaim>((r) => (claimed = r));
    const a = await replica({
      afterClaim: (claim) => {
        claimed(claim);
        // Never returns while the test runs; let go at the end so the replica can close.
        return new Promise((_, reject) =>
          cleanups.push(() => Promise.resolve(reject(new Error("replica died")))),
        );
      },
    });
    const b = await replica();
    const matching = pushTen(history);
    void a.runner.check(history.head());
    const claim = await firstClaim;
    assert.equal(claim.commit, matching[0]!.sha);
    // b hears the same push while a's claim is fresh: it leaves the trigger to a (and starts
    // the newest policy's run, which a has not claimed).
    await b.runner.check(history.head());
    assert.equal((await runsOf(b.kv, "train")).length, 0);
    assert.notEqual(await cursor(b.kv), history.head(), "the cursor waits for the claim");
    clock.t += 10_001;
    await b.runner.check();
    const train = await runsOf(b.kv, "train");
    assert.deepEqual(
      train.map((r) => r.commit),
      matching.map((c) => c.sha),
      warned.join("\n"),
    );
    assert.equal(train[0]!.id, claim.runId, "the claimed run id is the one started");
    assert.equal((await runsOf(b.kv, "latest")).length, 1);
    assert.equal(await cursor(b.kv), history.head());
  });

  test("a replica dies after submitting, before recording it; restarted, nothing runs twice", async () => {
    const { history, clock, replica } = await world();
    // a submits the first run, then dies before marking its claim done.
    const a = await replica({
      wrapRuns: (runs) => ({
        submit: async (input) => {
          const run = await runs.submit(input);
          throw Object.assign(new Error("replica died"), { run });
        },
      }),
    });
    const matching = pushTen(history);
    await a.runner.check(history.head());
    assert.equal((await runsOf(a.kv, "train")).length, 1, "a submitted one run, then died");
    const claimEntry = await a.kv.get(triggerClaimKey("train:code", matching[0]!.sha));
    assert.equal(
      (JSON.parse(new TextDecoder().decode(claimEntry!.value)) as TriggerClaim).done,
      undefined,
    );
    await a.close();
    // Restarted (a new replica on the same store) after the takeover time.
    clock.t += 10_001;
    const restarted = await replica();
    const train = await runsOf(restarted.kv, "train");
    assert.deepEqual(
      train.map((r) => r.commit),
      matching.map((c) => c.sha),
      warned.join("\n"),
    );
    assert.equal(new Set(train.map((r) => r.id)).size, 6);
    assert.equal(await cursor(restarted.kv), history.head());
    // And again: started once more, nothing new.
    const again = await replica();
    assert.equal((await runsOf(again.kv, "train")).length, 6);
    assert.equal(again.claims, 0);
  });

  test("a commit that arrives while no scheduler runs is run when one starts; the first start runs nothing old", async () => {
    const { history, replica } = await world();
    const first = await replica();
    assert.equal(await cursor(first.kv), history.head(), "follows from the commit served at start");
    assert.equal((await runsOf(first.kv, "train")).length, 0);
    await first.close();
    const late = history.add("Ada Lovelace <ada@example.com>", ["train/src/late.py"]);
    const next = await replica();
    assert.deepEqual(
      (await runsOf(next.kv, "train")).map((r) => r.commit),
      [late.sha],
    );
  });
});
