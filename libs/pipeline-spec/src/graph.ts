/** A dependency cycle, listed so each task depends on the next and the last equals the first. */
export type Cycle = string[];

/**
 * The dependency graph of a pipeline's tasks, by index for speed on very large pipelines and by
 * name for convenience. Built once; immutable.
 */
export class TaskGraph {
  /** Task names in file order; indices below refer to this array. */
  readonly names: readonly string[];
  /** For each task, the indices of the tasks it depends on. */
  readonly dependencies: readonly (readonly number[])[];
  /** For each task, the indices of the tasks that depend on it. */
  readonly dependents: readonly (readonly number[])[];
  private readonly byName: ReadonlyMap<string, number>;
  private order: number[] | undefined;

  private constructor(names: string[], dependencies: number[][], byName: Map<string, number>) {
    this.names = names;
    this.dependencies = dependencies;
    this.byName = byName;
    const dependents: number[][] = names.map(() => []);
    dependencies.forEach((deps, i) => {
      for (const d of deps) dependents[d]!.push(i);
    });
    this.dependents = dependents;
  }

  /**
   * Builds the graph from tasks' names and dependency names. Unknown names are skipped here:
   * validation reports them with their positions.
   */
  static build(tasks: readonly { name: string; depends: readonly string[] }[]): TaskGraph {
    const byName = new Map<string, number>();
    tasks.forEach((t, i) => {
      if (!byName.has(t.name)) byName.set(t.name, i);
    });
    const dependencies = tasks.map((t) => {
      const out: number[] = [];
      // A set only for long lists: a join of 10,000 tasks must not compare every pair.
      const seen = t.depends.length > 16 ? new Set<number>() : undefined;
      for (const d of t.depends) {
        const j = byName.get(d);
        if (j === undefined || (seen ? seen.has(j) : out.includes(j))) continue;
        seen?.add(j);
        out.push(j);
      }
      return out;
    });
    return new TaskGraph(
      tasks.map((t) => t.name),
      dependencies,
      byName,
    );
  }

  /** Number of tasks. */
  get size(): number {
    return this.names.length;
  }

  /** Index of a task by name. */
  indexOf(name: string): number | undefined {
    return this.byName.get(name);
  }

  /** Names of the tasks `name` depends on. */
  dependenciesOf(name: string): string[] {
    const i = this.byName.get(name);
    return i === undefined ? [] : this.dependencies[i]!.map((j) => this.names[j]!);
  }

  /** Names of the tasks that depend on `name`. */
  dependentsOf(name: string): string[] {
    const i = this.byName.get(name);
    return i === undefined ? [] : this.dependents[i]!.map((j) => this.names[j]!);
  }

  /** Names of the tasks with no dependencies: what a run starts with. */
  roots(): string[] {
    return this.names.filter((_, i) => this.dependencies[i]!.length === 0);
  }

  /**
   * Task indices in a topological order (every task after its dependencies; ties in file order).
   * Tasks on or behind a cycle are left out; `cycles()` names them.
   */
  topologicalOrder(): readonly number[] {
    if (this.order) return this.order;
    const remaining = this.dependencies.map((d) => d.length);
    const order: number[] = [];
    for (let i = 0; i < remaining.length; i++) if (remaining[i] === 0) order.push(i);
    for (let head = 0; head < order.length; head++) {
      for (const j of this.dependents[order[head]!]!) {
        if (--remaining[j]! === 0) order.push(j);
      }
    }
    this.order = order;
    return order;
  }

  /** Every task name in topological order. */
  topologicalNames(): string[] {
    return this.topologicalOrder().map((i) => this.names[i]!);
  }

  /** One cycle per tangle of tasks that can never start; empty when the graph is a DAG. */
  cycles(): Cycle[] {
    const order = this.topologicalOrder();
    if (order.length === this.size) return [];
    const stuck = new Uint8Array(this.size).fill(1);
    for (const i of order) stuck[i] = 0;
    const seen = new Uint8Array(this.size);
    const cycles: Cycle[] = [];
    for (let start = 0; start < this.size; start++) {
      if (!stuck[start] || seen[start]) continue;
      // Walk upstream through stuck tasks: every stuck task has a stuck dependency, so the walk
      // ends on a task already on this path (a new cycle) or one seen by an earlier walk.
      const path: number[] = [];
      const onPath = new Map<number, number>();
      let node = start;
      while (!seen[node]) {
        seen[node] = 1;
        onPath.set(node, path.length);
        path.push(node);
        const next = this.dependencies[node]!.find((d) => stuck[d]);
        if (next === undefined) break;
        if (onPath.has(next)) {
          const loop = path.slice(onPath.get(next));
          cycles.push([...loop, next].map((i) => this.names[i]!));
          break;
        }
        node = next;
      }
    }
    return cycles;
  }
}
