// Fixture-driven: each testdata/*.scenario holds a pipeline (YAML), `---`, then steps
// `@<ms> <action> => <expected decisions>` (`-` for none). Actions: `next [slots]`,
// `<task> <STATE>#<attempt>` (a recorded change; `<task> SUCCEEDED#<attempt> early-exit` when its
// outputs ask to end the run early), `cancel`, `retry` (expects `reset a, b`).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { loadPipeline, type TaskGraph, type TaskState } from "@odin/pipeline-spec";
import { requestsEarlyExit, RunEngine, type Decision, type TaskStatus } from "./engine.js";

const testdata = new URL("../testdata/", import.meta.url);

function format(d: Decision): string {
  switch (d.kind) {
    case "launch":
    case "timeout":
    case "cancel":
      return `${d.kind} ${d.task}#${d.attempt}`;
    case "retry":
      return `retry ${d.task}#${d.attempt}@${d.at}`;
    case "skip":
      return `skip ${d.task} (${d.reason})`;
    case "cancelled":
      return `cancelled ${d.task}`;
    case "finish":
      return d.state === "SUCCEEDED" && !d.earlyExitBy
        ? "finish SUCCEEDED"
        : `finish ${d.state} (${d.reason})`;
  }
}

function splitExpected(text: string): string[] {
  if (text.trim() === "-") return [];
  // Commas inside parentheses belong to reasons.
  const out: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(current.trim());
      current = "";
    } else current += ch;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

describe("RunEngine scenarios", () => {
  for (const file of readdirSync(testdata)
    .filter((f) => f.endsWith(".scenario"))
    .sort()) {
    test(file.replace(".scenario", ""), () => {
      const [yaml, steps] = readFileSync(new URL(file, testdata), "utf8").split("\n---\n");
      const loaded = loadPipeline(yaml!, { file });
      assert.ok(loaded.valid, JSON.stringify(loaded.problems));
      const engine = new RunEngine(loaded.pipeline!, loaded.graph);
      for (const line of steps!.split("\n")) {
        if (line.trim() === "" || line.startsWith("#")) continue;
        const m = /^@(\d+) (.+?) => (.*)$/.exec(line);
        assert.ok(m, `bad step: ${line}`);
        const now = Number(m[1]);
        const action = m[2]!.trim();
        let got: string[];
        if (action === "next" || action.startsWith("next ")) {
          const slots = action === "next" ? undefined : Number(action.slice(5));
          got = engine.next(now, slots).map(format);
        } else if (action === "cancel") {
          got = engine.cancel().map(format);
        } else if (action === "retry") {
          got = [`reset ${engine.retry().join(", ")}`];
        } else {
          const change = /^(\S+) ([A-Z]+)#(\d+)( early-exit)?$/.exec(action);
          assert.ok(change, `bad action: ${action}`);
          const status = { state: change[2] as TaskState, attempt: Number(change[3]) };
          got = engine
            .observe(change[1]!, change[4] ? { ...status, earlyExit: true } : status, now)
            .map(format);
        }
        const expected = m[3]!.startsWith("reset ") ? [m[3]!.trim()] : splitExpected(m[3]!);
        assert.deepEqual(got, expected, `${file}: ${line}`);
      }
    });
  }
});

describe("RunEngine at scale and across restarts", () => {
  function chainAndFan(width: number): string {
    let yaml = "tasks:\n- {name: root, image: i, command: c}\n";
    for (let i = 0; i < width; i++)
      yaml += `- {name: w${i}, image: i, command: c, depends: root}\n`;
    yaml += `- {name: join, image: i, command: c, depends: [${Array.from({ length: width }, (_, i) => `w${i}`).join(", ")}]}\n`;
    return yaml;
  }

  /**
   * The graph with every read of its edge lists counted: the engine's work is its walks over
   * edges, so counting them shows it linear without timing anything on a busy machine.
   */
  function countingGraph(graph: TaskGraph): { graph: TaskGraph; reads: () => number } {
    let reads = 0;
    const counted = (lists: readonly (readonly number[])[]) =>
      lists.map(
        (list) =>
          new Proxy(list, {
            get(target, key, receiver) {
              if (typeof key === "string" && /^\d+$/.test(key)) reads++;
              return Reflect.get(target, key, receiver) as unknown;
            },
          }),
      );
    const wrapped = Object.create(graph, {
      dependents: { value: counted(graph.dependents) },
      dependencies: { value: counted(graph.dependencies) },
    }) as TaskGraph;
    return { graph: wrapped, reads: () => reads };
  }

  test("a 10,000-task fan-out/fan-in runs with work proportional to its size", () => {
    const width = 10_000;
    const { pipeline, graph } = loadPipeline(chainAndFan(width));
    const counting = countingGraph(graph!);
    const engine = new RunEngine(pipeline!, counting.graph);
    assert.deepEqual(
      engine.next(0).map((d) => d.kind),
      ["launch"],
    );
    engine.observe("root", { state: "SUCCEEDED", attempt: 1 }, 1);
    const launches = engine.next(2);
    assert.equal(launches.length, width);
    for (let i = 0; i < width; i++) engine.observe(`w${i}`, { state: "SUCCEEDED", attempt: 1 }, 3);
    assert.deepEqual(engine.next(4), [{ kind: "launch", task: "join", attempt: 1 }]);
    const finish: Decision[] = engine.observe("join", { state: "SUCCEEDED", attempt: 1 }, 5);
    assert.deepEqual(finish, [
      { kind: "finish", state: "SUCCEEDED", reason: "all tasks succeeded" },
    ]);
    // 2 x 10,000 edges: a quadratic walk would read ~10^8 times, a linear one a few times each.
    const edges = 2 * width;
    assert.ok(counting.reads() > 0, "the count sees the engine's reads");
    assert.ok(counting.reads() <= 10 * (width + 2 + edges), `${counting.reads()} edge reads`);
  });

  test("a 100,000-task chain does not overflow the stack when its head fails", () => {
    let yaml = "fail_fast: false\ntasks:\n- {name: t0, image: i, command: c}\n";
    for (let i = 1; i < 100_000; i++)
      yaml += `- {name: t${i}, image: i, command: c, depends: t${i - 1}}\n`;
    const { pipeline, graph } = loadPipeline(yaml);
    const engine = new RunEngine(pipeline!, graph);
    engine.next(0);
    const out = engine.observe("t0", { state: "FAILED", attempt: 1 }, 1);
    assert.equal(out.filter((d) => d.kind === "skip").length, 99_999);
    assert.equal(out.at(-1)?.kind, "finish");
  });

  test("restored from recorded statuses, a run goes on where it was", () => {
    const { pipeline, graph } = loadPipeline(
      "tasks:\n- {name: a, image: i, command: c}\n- {name: b, image: i, command: c, depends: a}\n- {name: c, image: i, command: c, depends: a}\n- {name: d, image: i, command: c, depends: [b, c]}\n",
    );
    const recorded: Record<string, { state: TaskState; attempt: number }> = {
      a: { state: "SUCCEEDED", attempt: 1 },
      b: { state: "LAUNCHING", attempt: 1 },
    };
    const engine = RunEngine.restore(pipeline!, (t) => recorded[t], {}, graph);
    assert.deepEqual(
      engine.relaunches(),
      [{ task: "b", attempt: 1 }],
      "a launch that may not have happened is repeated",
    );
    assert.deepEqual(engine.resume(), []);
    assert.deepEqual(
      engine.next(10),
      [{ kind: "launch", task: "c", attempt: 1 }],
      "c was ready, b is already launching",
    );
    engine.observe("b", { state: "SUCCEEDED", attempt: 1 }, 11);
    engine.observe("c", { state: "SUCCEEDED", attempt: 1 }, 12);
    assert.deepEqual(engine.next(13), [{ kind: "launch", task: "d", attempt: 1 }]);
  });

  test("a crash between recording a failure and recording its skips is repaired on restore", () => {
    const { pipeline, graph } = loadPipeline(
      "tasks:\n- {name: a, image: i, command: c}\n- {name: b, image: i, command: c, depends: a}\n- {name: x, image: i, command: c}\n",
    );
    const recorded: Record<string, { state: TaskState; attempt: number }> = {
      a: { state: "FAILED", attempt: 1 },
      x: { state: "SUCCEEDED", attempt: 1 },
    };
    const engine = RunEngine.restore(pipeline!, (t) => recorded[t], {}, graph);
    assert.deepEqual(engine.resume(), [
      { kind: "skip", task: "b", reason: 'fail-fast: task "a" failed' },
      { kind: "finish", state: "FAILED", reason: "failed: a" },
    ]);
    assert.deepEqual(engine.next(1), []);
  });

  test("a crash between recording an early exit and recording its skips is repaired on restore", () => {
    const { pipeline, graph } = loadPipeline(
      "tasks:\n- {name: a, image: i, command: c}\n- {name: b, image: i, command: c, depends: a}\n- {name: x, image: i, command: c}\n",
    );
    const recorded: Record<string, TaskStatus> = {
      a: { state: "SUCCEEDED", attempt: 1, earlyExit: true },
      x: { state: "RUNNING", attempt: 1 },
    };
    const engine = RunEngine.restore(pipeline!, (t) => recorded[t], {}, graph);
    assert.deepEqual(engine.resume(), [
      { kind: "skip", task: "b", reason: 'early exit requested by task "a"', earlyExit: true },
    ]);
    assert.deepEqual(engine.next(1), [], "nothing new starts");
    assert.deepEqual(engine.observe("x", { state: "SUCCEEDED", attempt: 1 }, 2), [
      {
        kind: "finish",
        state: "SUCCEEDED",
        reason: 'early exit requested by task "a"',
        earlyExitBy: "a",
      },
    ]);
  });

  test("a restored RETRYING task runs again when its time comes", () => {
    const { pipeline, graph } = loadPipeline(
      "tasks:\n- {name: a, image: i, command: c, retries: 2}\n",
    );
    const engine = RunEngine.restore(
      pipeline!,
      () => ({ state: "RETRYING", attempt: 1, nextAttemptTime: 500 }),
      {},
      graph,
    );
    assert.equal(engine.nextWakeAt(), 500);
    assert.deepEqual(engine.next(499), []);
    assert.deepEqual(engine.next(500), [{ kind: "launch", task: "a", attempt: 2 }]);
  });
});

test("a launch another replica pre-empted is undone and the stored state applies", () => {
  const { pipeline, graph } = loadPipeline(
    "tasks:\n- {name: a, image: i, command: c}\n- {name: b, image: i, command: c, depends: a}\n",
  );
  const engine = new RunEngine(pipeline!, graph);
  assert.deepEqual(engine.next(0), [{ kind: "launch", task: "a", attempt: 1 }]);
  // The store still says PENDING (the write lost a race to nothing): the launch is offered again.
  assert.deepEqual(engine.reconcile("a", { state: "PENDING", attempt: 0 }, 1), []);
  assert.deepEqual(engine.next(2), [{ kind: "launch", task: "a", attempt: 1 }]);
  // Another replica cancelled it first.
  assert.deepEqual(engine.reconcile("a", { state: "CANCELLED", attempt: 0 }, 3), [
    { kind: "skip", task: "b", reason: 'dependency "a" was cancelled' },
    { kind: "finish", state: "FAILED", reason: "tasks were skipped" },
  ]);
});

test("ready times and queued tasks: what the scheduler's launch latency and queue depth read", () => {
  const { pipeline, graph } = loadPipeline(
    [
      "parallelism: 1",
      "tasks:",
      "- {name: a, image: i, command: c}",
      "- {name: b, image: i, command: c}",
      "- {name: c, image: i, command: c, depends: a, retries: 1, retry_backoff: 1s}",
      "",
    ].join("\n"),
  );
  const engine = RunEngine.restore(pipeline!, () => undefined, { readySince: 100 }, graph);
  assert.deepEqual(engine.next(150), [{ kind: "launch", task: "a", attempt: 1 }]);
  assert.equal(engine.readySince("a"), 100, "ready since the run was submitted");
  assert.equal(engine.queuedTasks, 1, "b waits for the pipeline's parallelism");
  engine.observe("a", { state: "SUCCEEDED", attempt: 1 }, 300);
  assert.equal(engine.readySince("c"), 300, "ready when its dependency succeeded");
  assert.equal(engine.queuedTasks, 2);
  assert.deepEqual(engine.next(310), [{ kind: "launch", task: "b", attempt: 1 }]);
  assert.equal(engine.queuedTasks, 1);
  engine.observe("b", { state: "SUCCEEDED", attempt: 1 }, 320);
  assert.deepEqual(engine.next(330), [{ kind: "launch", task: "c", attempt: 1 }]);
  engine.observe("c", { state: "RETRYING", attempt: 1, nextAttemptTime: 1400 }, 400);
  assert.equal(engine.queuedTasks, 0, "a task waiting out its backoff is not queued");
  assert.deepEqual(engine.next(1400), [{ kind: "launch", task: "c", attempt: 2 }]);
  assert.equal(engine.readySince("c"), 1400, "ready when its retry was due");
  // Restored without knowing when: not measured.
  const restored = RunEngine.restore(pipeline!, () => undefined, {}, graph);
  assert.equal(restored.readySince("a"), undefined);
});

test("requestsEarlyExit reads the documented form and the original's", () => {
  assert.equal(requestsEarlyExit({ odin: { early_exit: true } }), true);
  assert.equal(requestsEarlyExit({ request_early_exit: true, acc: 0.9 }), true);
  assert.equal(requestsEarlyExit({ odin: { early_exit: "true" } }), false, "only JSON true");
  assert.equal(requestsEarlyExit({ odin: { early_exit: false } }), false);
  assert.equal(requestsEarlyExit({ early_exit: true }), false, "only under the odin key");
  assert.equal(requestsEarlyExit({ odin: null }), false);
  assert.equal(requestsEarlyExit(null), false);
  assert.equal(requestsEarlyExit([true]), false);
});
