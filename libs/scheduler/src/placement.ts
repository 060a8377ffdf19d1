// Where a new run goes. A run is driven by the scheduler replica that owns its partition, and its
// partition is a hash of its id; with a few runs, a hash alone can give one replica most of the
// work (6 runs of 10 was measured). So a fresh run id is drawn until it falls in the partition
// with the least work left, among those of the replica with the least work left. The id is still
// `<pipeline>-<8 random characters>` and its partition still a function of the id alone, so
// launchers, event consumers and the other replicas need to know nothing of the choice.
import { ownerOf, partitionOf, runPartitions, type WorkShare } from "@odin/events";
import { isTerminalState, newRunId, type TaskState } from "@odin/pipeline-spec";
import type { RunRecord } from "./records.js";

/** The key a run partition is assigned by among the live scheduler replicas. */
export function partitionKey(partition: number): string {
  return `runs-${partition}`;
}

/** How many ids are drawn at most for one run (16 partitions: 16 draws on average). */
const maxDraws = 1024;

/** Tasks of a run that have not ended, as far as its record tells (counts are a second behind). */
export function remainingTasks(run: RunRecord): number {
  let ended = 0;
  for (const [state, n] of Object.entries(run.taskCounts ?? {}))
    if (isTerminalState(state as TaskState)) ended += n ?? 0;
  return Math.max(0, run.taskCount - ended);
}

/** A run id chosen for a run about to be created; `done` once it is (or will not be) created. */
export interface Placed {
  runId: string;
  done: () => void;
}

/** Chooses the ids of new runs so that the replicas get even work (see the file's comment). */
export class RunPlacement {
  /** Runs placed here whose records are not written yet: their partition and tasks. */
  private readonly placing = new Map<string, { partition: number; tasks: number }>();

  /**
   * @param share the live replicas; unset: one replica drives every run, any id will do.
   * @param unfinished the runs that have not ended (the run index, kept current by the watch).
   */
  constructor(
    private readonly share: WorkShare | undefined,
    private readonly unfinished: () => Iterable<RunRecord>,
  ) {}

  /**
   * A fresh id for a run of `tasks` tasks of a pipeline, in the partition with the least work left
   * of the replica with the least. The run counts as placed until `done` is called (a run of no
   * known tasks, not at all).
   */
  place(pipelineName: string, tasks: number): Placed {
    const members = this.share?.members() ?? [];
    if (members.length < 2) return { runId: newRunId(pipelineName), done: () => undefined };
    const partition = this.lightestPartition(members);
    let runId = newRunId(pipelineName);
    for (let i = 1; i < maxDraws && partitionOf(runId) !== partition; i++)
      runId = newRunId(pipelineName);
    if (tasks === 0) return { runId, done: () => undefined };
    this.placing.set(runId, { partition: partitionOf(runId), tasks });
    return { runId, done: () => this.placing.delete(runId) };
  }

  private lightestPartition(members: readonly string[]): number {
    const load = new Array<number>(runPartitions).fill(0);
    for (const run of this.unfinished()) load[partitionOf(run.id)]! += remainingTasks(run);
    for (const { partition, tasks } of this.placing.values()) load[partition]! += tasks;
    const byMember = new Map<string, { load: number; partitions: number[] }>();
    for (let p = 0; p < runPartitions; p++) {
      const owner = ownerOf(partitionKey(p), members)!;
      const m = byMember.get(owner) ?? { load: 0, partitions: [] };
      m.load += load[p]!;
      m.partitions.push(p);
      byMember.set(owner, m);
    }
    // Ties go to this replica (two replicas placing at once then go opposite ways), then by chance.
    const self = this.share!.id;
    const lightest = pickMin([...byMember], ([id, m]) => m.load * 2 + (id === self ? 0 : 1));
    const partitions = lightest[1].partitions;
    return pickMin(partitions, (p) => load[p]!);
  }
}

/** One of the items with the least `weight`, chosen at random among equals. */
function pickMin<T>(items: readonly T[], weight: (item: T) => number): T {
  let best: T[] = [];
  let bestWeight = Number.POSITIVE_INFINITY;
  for (const item of items) {
    const w = weight(item);
    if (w < bestWeight) {
      best = [item];
      bestWeight = w;
    } else if (w === bestWeight) best.push(item);
  }
  return best[Math.floor(Math.random() * best.length)]!;
}
