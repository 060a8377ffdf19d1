// The web UI's graph layout for large runs: grouping tasks (same dependencies and dependents, or
// same depth) before dagre, against dagre laying out every task. Prints JSON figures.
import { layoutGraph, type GraphTask } from "@odin/web/graph";

function fanOut(n: number): GraphTask[] {
  const shards = Array.from({ length: n - 2 }, (_, i) => `shard-${i}`);
  return [
    { name: "split", depends: [] },
    ...shards.map((name) => ({ name, depends: ["split"] })),
    { name: "merge", depends: shards },
  ];
}

function chains(n: number, length: number): GraphTask[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `t-${i}`,
    depends: i % length === 0 ? [] : [`t-${i - 1}`],
  }));
}

function time(tasks: GraphTask[], group: boolean): { ms: number; nodes: number; grouping: string } {
  const started = performance.now();
  const layout = layoutGraph(tasks, { group });
  return {
    ms: Math.round(performance.now() - started),
    nodes: layout.nodes.length,
    grouping: layout.grouping,
  };
}

// Side by side on one input small enough for the baseline to finish: a 1,000-task fan-out.
const grouped = time(fanOut(1000), true);
const everyTask = time(fanOut(1000), false);
console.log(
  JSON.stringify({
    bench: "web graph layout, 1,000-task fan-out",
    groupedMs: grouped.ms,
    groupedNodes: grouped.nodes,
    everyTaskMs: everyTask.ms,
    everyTaskNodes: everyTask.nodes,
    ratio: Math.round((everyTask.ms / Math.max(1, grouped.ms)) * 10) / 10,
  }),
);
// The size, grouped (dagre on every one of 10,000 tasks does not finish in minutes).
for (const [shape, tasks] of [
  ["10,000-task fan-out", fanOut(10_000)],
  ["100 chains of 100 tasks", chains(10_000, 100)],
] as const) {
  const t = time(tasks, true);
  console.log(JSON.stringify({ bench: `web graph layout, ${shape}`, ...t }));
}
