// Every run's record in memory, ordered newest first, kept current from the run store's watch: a
// page of ListRuns costs the runs on it (and those a filter skips), not a listing of every run.
import { isFinishedRun, type RunState } from "@odin/pipeline-spec";
import type { RunRecord } from "./records.js";

/** What ListRuns and WatchRuns filter on. */
export interface RunFilter {
  pipeline?: string;
  states?: readonly RunState[];
  /** Every requirement must hold (see {@link parseLabelSelector}). */
  labels?: readonly LabelRequirement[];
}

/** One term of a label selector: the key's value is (not) one of `values`, or the key is (not) set. */
export interface LabelRequirement {
  key: string;
  /** Undefined: the key is set (`key`) or not (`!key`), whatever its value. */
  values?: ReadonlySet<string>;
  negated: boolean;
}

const LABEL_KEY = String.raw`[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?`;
const LABEL_VALUE = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const TERM = new RegExp(
  String.raw`^(?:(!)\s*(${LABEL_KEY})|(${LABEL_KEY})\s*(?:(==?|!=)\s*(${LABEL_VALUE})|\s(in|notin)\s*\(([^()]*)\))?)$`,
);
const VALUE_ONLY = new RegExp(`^${LABEL_VALUE}$`);

/**
 * Reads a label selector in Kubernetes' syntax: `team=nlp,env!=dev`, `tier in (a,b)`,
 * `tier notin (a)`, `gpu` (set), `!gpu` (not set); `==` is `=`. Empty: no requirement.
 * Throws an Error saying which term is wrong.
 */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const out: LabelRequirement[] = [];
  // Commas separate terms except inside the parentheses of in/notin.
  for (const term of selector.match(/(?:[^,(]|\([^)]*\))+/g) ?? []) {
    const text = term.trim();
    if (text === "") continue;
    const m = TERM.exec(text);
    if (!m) throw new Error(`"${text}" is not a label requirement`);
    const [, not, notKey, key = notKey!, op, value, setOp, list] = m;
    if (not) out.push({ key, negated: true });
    else if (op !== undefined) out.push({ key, values: new Set([value!]), negated: op === "!=" });
    else if (setOp !== undefined) {
      const values = list!.split(",").map((v) => v.trim());
      if (values.some((v) => !VALUE_ONLY.test(v)))
        throw new Error(`"${text}" holds a value that is not a label value`);
      out.push({ key, values: new Set(values), negated: setOp === "notin" });
    } else out.push({ key, negated: false });
  }
  return out;
}

function labelsMatch(labels: Readonly<Record<string, string>>, r: LabelRequirement): boolean {
  const value = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
  const holds = r.values === undefined ? value !== undefined : r.values.has(value ?? "\0");
  return holds !== r.negated;
}

/** Whether a run passes a filter. */
export function matches(run: RunRecord, filter: RunFilter): boolean {
  if (
    filter.pipeline &&
    run.pipeline !== filter.pipeline &&
    !run.pipeline.startsWith(`${filter.pipeline}/`)
  )
    return false;
  if (filter.states?.length && !filter.states.includes(run.state)) return false;
  for (const r of filter.labels ?? []) if (!labelsMatch(run.labels, r)) return false;
  return true;
}

/** Where a page starts: after the run with this creation time and id (a page token). */
export interface Cursor {
  createTime: number;
  id: string;
}

/** The token of a cursor: opaque to clients, stable while runs are created and removed. */
export function cursorToken(c: Cursor): string {
  return `${c.createTime}.${c.id}`;
}

/** The cursor of a token, or undefined when the token is not one this index gave out. */
export function parseCursor(token: string): Cursor | undefined {
  const m = /^(\d{1,16})\.([-a-z0-9]{1,100})$/.exec(token);
  return m ? { createTime: Number(m[1]), id: m[2]! } : undefined;
}

/** Newest first: later creation time, then the larger id. */
function newer(a: Cursor, b: Cursor): boolean {
  return a.createTime !== b.createTime ? a.createTime > b.createTime : a.id > b.id;
}

/** The runs, ordered oldest first (new runs are appended), with the store revision of each. */
export class RunIndex {
  private readonly byId = new Map<string, { record: RunRecord; revision: number }>();
  /** Oldest first. */
  private order: RunRecord[] = [];
  /** The runs that have not ended. */
  private readonly open = new Map<string, RunRecord>();

  /** Number of runs. */
  get size(): number {
    return this.byId.size;
  }

  /** The store revision of a run's record held, if any. */
  revisionOf(id: string): number | undefined {
    return this.byId.get(id)?.revision;
  }

  /** A run's record, as of the last change applied. */
  get(id: string): RunRecord | undefined {
    return this.byId.get(id)?.record;
  }

  /**
   * Applies a run's record (undefined: removed) at a store revision; an older revision than the
   * one held is ignored (a listing and the watch may deliver the same key out of order). Returns
   * whether anything changed.
   */
  apply(id: string, record: RunRecord | undefined, revision: number): boolean {
    const held = this.byId.get(id);
    if (held && held.revision >= revision) return false;
    if (held) this.order.splice(this.position(held.record), 1);
    if (!record || isFinishedRun(record.state)) this.open.delete(id);
    else this.open.set(id, record);
    if (!record) {
      if (!held) return false;
      this.byId.delete(id);
      return true;
    }
    this.byId.set(id, { record, revision });
    this.order.splice(this.position(record), 0, record);
    return true;
  }

  /** Runs passing `filter`, newest first, starting after `after`, at most `size` of them. */
  page(
    filter: RunFilter,
    size: number,
    after?: Cursor,
  ): { runs: RunRecord[]; next: Cursor | undefined } {
    const runs: RunRecord[] = [];
    let i = after ? this.position(after) - 1 : this.order.length - 1;
    // position() is where `after` would be inserted: everything below it is older.
    for (; i >= 0; i--) {
      const run = this.order[i]!;
      if (after && !newer(after, run)) continue;
      if (!matches(run, filter)) continue;
      if (runs.length === size) {
        const last = runs[runs.length - 1]!;
        return { runs, next: { createTime: last.createTime, id: last.id } };
      }
      runs.push(run);
    }
    return { runs, next: undefined };
  }

  /** Forgets every run (the store lost them all); returns their ids. */
  clear(): string[] {
    const ids = [...this.byId.keys()];
    this.byId.clear();
    this.open.clear();
    this.order = [];
    return ids;
  }

  /** Every run, in no particular order. */
  *all(): IterableIterator<RunRecord> {
    for (const v of this.byId.values()) yield v.record;
  }

  /** The runs that have not ended, in no particular order. */
  unfinished(): IterableIterator<RunRecord> {
    return this.open.values();
  }

  /** Where a run with this cursor is, or would go, in `order` (binary search). */
  private position(c: Cursor): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.order[mid]!;
      if (at.id === c.id && at.createTime === c.createTime) return mid;
      if (newer(c, at)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
