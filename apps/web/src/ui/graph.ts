// A pipeline's DAG: grouped so that any size stays readable and fast, laid out by dagre, drawn on
// a canvas.
//
// Why it stays fast at 10,000 tasks: tasks that have the same dependencies and the same dependents
// (a fan-out's workers) are one node showing how many of them are in each state; when even that
// leaves too many nodes, tasks are grouped by depth (longest path from a root). dagre then lays out
// at most a few hundred nodes, and the canvas redraws only what is on screen, once per frame, so a
// state change costs one array write. Every task stays reachable one by one in the task list.
import { layout as dagreLayout, graphlib, type Edge } from "@dagrejs/dagre";

/** A task as far as the graph cares. */
export interface GraphTask {
  name: string;
  depends: readonly string[];
}

/** A drawn box: one task, or a group of tasks. */
export interface GraphNode {
  /** Indices into the task list. */
  members: number[];
  /** What the box says: the task's name, or what the group has in common. */
  label: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A laid-out graph. */
export interface GraphLayout {
  nodes: GraphNode[];
  edges: { points: { x: number; y: number }[] }[];
  width: number;
  height: number;
  /** For each task, the index of the node that shows it. */
  nodeOfTask: Int32Array;
  /** How tasks were grouped: each task its own node, same neighbours, or same depth. */
  grouping: "none" | "neighbours" | "depth";
}

/** Pipelines up to this many tasks show every task as its own node. */
export const SHOW_EVERY_TASK = 300;
/** Past this many nodes after grouping by neighbours, group by depth instead. */
const MAX_NODES = 600;
const NODE_W = 180;
const NODE_H = 46;

/**
 * Groups the tasks as described above and lays the result out left to right. `group: false` lays
 * out every task as its own node whatever the size (the benchmark's baseline).
 */
export function layoutGraph(
  tasks: readonly GraphTask[],
  options: { group?: boolean } = {},
): GraphLayout {
  const index = new Map<string, number>();
  tasks.forEach((t, i) => index.set(t.name, i));
  const deps: number[][] = new Array<number[]>(tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const ds: number[] = [];
    for (const d of tasks[i]!.depends) {
      const j = index.get(d);
      if (j !== undefined) ds.push(j);
    }
    deps[i] = ds;
  }
  return layoutTasks(
    tasks.map((t) => t.name),
    deps.map((d) => d.length),
    deps.flat(),
    options,
  );
}

/**
 * {@link layoutGraph} of tasks given as GetPipelineGraph gives them: names, how many tasks each
 * depends on, and all their dependencies one after another as positions in `names`.
 */
export function layoutTasks(
  names: readonly string[],
  dependsCounts: readonly number[],
  depends: readonly number[],
  options: { group?: boolean } = {},
): GraphLayout {
  const deps: number[][] = new Array<number[]>(names.length);
  const dependents: number[][] = new Array<number[]>(names.length);
  for (let i = 0, at = 0; i < names.length; i++) {
    const n = dependsCounts[i] ?? 0;
    deps[i] = n === 0 ? [] : depends.slice(at, at + n);
    dependents[i] = [];
    at += n;
  }
  // Filled in task order, so each list is sorted.
  for (let i = 0; i < names.length; i++) for (const d of deps[i]!) dependents[d]!.push(i);

  let grouping: GraphLayout["grouping"] = "none";
  let groups: number[][] | undefined;
  if (names.length > SHOW_EVERY_TASK && options.group !== false) {
    grouping = "neighbours";
    const key = (xs: readonly number[], sorted: boolean): string =>
      xs.length < 2
        ? String(xs[0] ?? "")
        : (sorted ? xs : xs.slice().sort((a, b) => a - b)).join(",");
    groups = groupBy(names.length, (i) => `${key(deps[i]!, false)}|${key(dependents[i]!, true)}`);
    if (groups.length > MAX_NODES) {
      grouping = "depth";
      const depth = depths(deps);
      groups = groupBy(names.length, (i) => String(depth[i])).sort(
        (a, b) => depth[a[0]!]! - depth[b[0]!]!,
      );
    }
  }
  groups ??= names.map((_, i) => [i]);
  const nodeOfTask = new Int32Array(names.length);
  groups.forEach((members, g) => members.forEach((m) => (nodeOfTask[m] = g)));

  const g = new graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 16, ranksep: 48, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  groups.forEach((_, i) => g.setNode(String(i), { width: NODE_W, height: NODE_H }));
  const seen = new Set<string>();
  deps.forEach((ds, task) => {
    const to = nodeOfTask[task]!;
    for (const d of ds) {
      const from = nodeOfTask[d]!;
      const key = `${from}>${to}`;
      if (from === to || seen.has(key)) continue;
      seen.add(key);
      g.setEdge(String(from), String(to));
    }
  });
  dagreLayout(g);

  const nodes: GraphNode[] = groups.map((members, i) => {
    const n = g.node(String(i)) as { x: number; y: number };
    return {
      members,
      label:
        grouping === "depth"
          ? `step ${i + 1}: ${members.length.toLocaleString()} tasks`
          : labelOf(members, names),
      x: n.x - NODE_W / 2,
      y: n.y - NODE_H / 2,
      width: NODE_W,
      height: NODE_H,
    };
  });
  const edges = g.edges().map((e: Edge) => ({
    points: (g.edge(e) as { points?: { x: number; y: number }[] }).points ?? [],
  }));
  const size = g.graph() as { width?: number; height?: number };
  return {
    nodes,
    edges,
    width: size.width ?? 0,
    height: size.height ?? 0,
    nodeOfTask,
    grouping,
  };
}

function groupBy(count: number, keyOf: (i: number) => string): number[][] {
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < count; i++) {
    const key = keyOf(i);
    const group = byKey.get(key);
    if (group) group.push(i);
    else byKey.set(key, [i]);
  }
  return [...byKey.values()];
}

/** Longest path from a root, per task (the pipeline is acyclic: the registry refuses cycles). */
function depths(deps: readonly (readonly number[])[]): Int32Array {
  const depth = new Int32Array(deps.length).fill(-1);
  const visit = (start: number): void => {
    // Iterative, so a 10,000-task chain does not overflow the stack.
    const stack = [start];
    while (stack.length > 0) {
      const i = stack[stack.length - 1]!;
      const pending = deps[i]!.filter((d) => depth[d] === -1);
      if (pending.length > 0) {
        stack.push(...pending);
        continue;
      }
      stack.pop();
      if (depth[i] !== -1) continue;
      depth[i] = deps[i]!.reduce((m, d) => Math.max(m, depth[d]! + 1), 0);
    }
  };
  for (let i = 0; i < deps.length; i++) if (depth[i] === -1) visit(i);
  return depth;
}

function labelOf(members: number[], names: readonly string[]): string {
  if (members.length === 1) return names[members[0]!]!;
  const first = names[members[0]!]!;
  const prefix = commonPrefix(members.map((m) => names[m]!));
  return `${members.length.toLocaleString()} × ${prefix.length >= 2 ? `${prefix}…` : `${first}, …`}`;
}

function commonPrefix(names: string[]): string {
  let prefix = names[0] ?? "";
  for (const n of names) {
    while (!n.startsWith(prefix)) prefix = prefix.slice(0, -1);
    if (prefix === "") break;
  }
  return prefix;
}
