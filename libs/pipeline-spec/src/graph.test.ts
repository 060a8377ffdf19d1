// The dependency graph a scheduler walks: dependencies, dependents, order and cycles.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TaskGraph } from "./graph.js";
import { load } from "./fixtures.js";

type Spec = [name: string, depends: string[]];

function graphOf(...tasks: Spec[]): TaskGraph {
  return TaskGraph.build(tasks.map(([name, depends]) => ({ name, depends })));
}

/** Asserts every task comes after all of its dependencies in the topological order. */
function assertOrdered(graph: TaskGraph): void {
  const order = graph.topologicalOrder();
  const at = new Int32Array(graph.size).fill(-1);
  order.forEach((task, i) => (at[task] = i));
  graph.dependencies.forEach((deps, task) => {
    for (const d of deps)
      assert.ok(at[d]! < at[task]!, `${graph.names[task]} before its dependency ${graph.names[d]}`);
  });
}

describe("a diamond", () => {
  // Declared out of order, as test_pipeline-1 does.
  const graph = graphOf(
    ["join", ["left", "right"]],
    ["right", ["start"]],
    ["start", []],
    ["left", ["start"]],
  );

  test("dependencies and dependents by name", () => {
    assert.deepEqual(graph.dependenciesOf("join"), ["left", "right"]);
    assert.deepEqual(graph.dependenciesOf("start"), []);
    assert.deepEqual(graph.dependentsOf("start").sort(), ["left", "right"]);
    assert.deepEqual(graph.dependentsOf("left"), ["join"]);
    assert.deepEqual(graph.dependentsOf("join"), []);
    assert.deepEqual(graph.dependenciesOf("no-such-task"), []);
  });

  test("roots are what a run starts with", () => {
    assert.deepEqual(graph.roots(), ["start"]);
  });

  test("topological order: start first, join last, ties in file order", () => {
    assert.deepEqual(graph.topologicalNames(), ["start", "right", "left", "join"]);
    assertOrdered(graph);
    assert.deepEqual(graph.cycles(), []);
  });

  test("indices follow file order", () => {
    assert.deepEqual(graph.names, ["join", "right", "start", "left"]);
    assert.equal(graph.indexOf("start"), 2);
    assert.equal(graph.size, 4);
  });

  test("repeated and unknown dependency names add no edges", () => {
    const g = graphOf(["a", []], ["b", ["a", "a", "ghost"]]);
    assert.deepEqual(g.dependenciesOf("b"), ["a"]);
    assert.deepEqual(g.dependentsOf("a"), ["b"]);
  });
});

describe("wide fan-out and fan-in", () => {
  const width = 10_000;
  const middle = Array.from({ length: width }, (_, i) => `m${i}`);
  const graph = graphOf(["source", []], ...middle.map((m): Spec => [m, ["source"]]), [
    "sink",
    middle,
  ]);

  test("the source fans out to every middle task and the sink waits for all of them", () => {
    assert.equal(graph.dependentsOf("source").length, width);
    assert.equal(graph.dependenciesOf("sink").length, width);
    assert.deepEqual(graph.roots(), ["source"]);
    const order = graph.topologicalNames();
    assert.equal(order[0], "source");
    assert.equal(order[order.length - 1], "sink");
    assert.equal(order.length, width + 2);
    assertOrdered(graph);
  });
});

describe("a deep chain of 100,000 tasks", () => {
  const n = 100_000;
  const tasks = Array.from({ length: n }, (_, i): Spec => [`t${i}`, i === 0 ? [] : [`t${i - 1}`]]);

  test("orders without overflowing the stack", () => {
    const graph = graphOf(...[...tasks].reverse());
    const order = graph.topologicalNames();
    assert.equal(order.length, n);
    assert.equal(order[0], "t0");
    assert.equal(order[n - 1], `t${n - 1}`);
    assert.deepEqual(graph.cycles(), []);
  });

  test("a cycle through all of them is found and named in full", () => {
    const looped = tasks.map(([name]): Spec => [name, [`t${(Number(name.slice(1)) + n - 1) % n}`]]);
    const graph = graphOf(...looped);
    assert.deepEqual(graph.topologicalOrder(), []);
    const cycles = graph.cycles();
    assert.equal(cycles.length, 1);
    assert.equal(cycles[0]!.length, n + 1);
    assert.equal(cycles[0]![0], cycles[0]![n]);
  });

  test("loads from YAML, validates and orders", () => {
    let text = "name: chain\ntasks:\n";
    for (let i = 0; i < n; i++)
      text += `- name: t${i}\n  image: x\n  command: run\n${i > 0 ? `  depends: t${i - 1}\n` : ""}`;
    const result = load(text);
    assert.deepEqual(result.problems, []);
    assert.equal(result.graph!.topologicalOrder().length, n);
    assert.deepEqual(result.graph!.dependenciesOf(`t${n - 1}`), [`t${n - 2}`]);
  });
});

describe("cycles", () => {
  test("a cycle is listed so each task depends on the next, ending where it starts", () => {
    const graph = graphOf(["a", ["c"]], ["b", ["a"]], ["c", ["b"]]);
    assert.deepEqual(graph.cycles(), [["a", "c", "b", "a"]]);
  });

  test("two separate cycles are each reported once", () => {
    const graph = graphOf(
      ["a", ["b"]],
      ["b", ["a"]],
      ["ok", []],
      ["c", ["d"]],
      ["d", ["e"]],
      ["e", ["c"]],
    );
    assert.deepEqual(graph.cycles(), [
      ["a", "b", "a"],
      ["c", "d", "e", "c"],
    ]);
  });

  test("tasks behind a cycle never run but are not reported as cycles", () => {
    const graph = graphOf(
      ["behind", ["a"]],
      ["a", ["b"]],
      ["b", ["a"]],
      ["free", []],
      ["after-free", ["free"]],
    );
    assert.deepEqual(graph.cycles(), [["a", "b", "a"]]);
    assert.deepEqual(graph.topologicalNames(), ["free", "after-free"]);
  });

  test("a self-dependency is a cycle of one task", () => {
    assert.deepEqual(graphOf(["a", ["a"]]).cycles(), [["a", "a"]]);
  });

  test("loadPipeline reports each cycle once, at the depends of its first task", () => {
    const text = [
      "tasks:",
      "- {name: a, image: x, command: run, depends: [b]}",
      "- {name: b, image: x, command: run, depends: [a]}",
      "- {name: c, image: x, command: run, depends: [d]}",
      "- {name: d, image: x, command: run, depends: c}",
      "",
    ].join("\n");
    const problems = load(text).problems;
    assert.deepEqual(
      problems.map((p) => [p.line, p.task, p.message.split(" (")[0]]),
      [
        [2, "a", "dependency cycle: a → b → a"],
        [4, "c", "dependency cycle: c → d → c"],
      ],
    );
  });
});
