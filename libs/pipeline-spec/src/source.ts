import jsyaml from "js-yaml";

/** Limits that keep a hostile or broken document from exhausting memory or time. */
export interface SourceLimits {
  /** Largest document accepted, in characters. */
  maxChars: number;
  /** Largest number of nodes the document may expand to once aliases are followed. */
  maxExpandedNodes: number;
}

/** Defaults sized so a 100,000-task pipeline fits with room to spare. */
export const defaultSourceLimits: SourceLimits = {
  maxChars: 64 * 1024 * 1024,
  maxExpandedNodes: 20_000_000,
};

/** A 1-based position in a source text. */
export interface Position {
  line: number;
  column: number;
}

/**
 * Positions of one map's entries or one list's items, packed to keep large documents cheap:
 * `keys[i]`'s key stands at `offsets[2i]` and its value at `offsets[2i+1]` (list items: `keys`
 * is absent and item i stands at `offsets[i]`). `raw` keeps, by entry number, the plain text of
 * scalars YAML typed as non-strings (`1.10`, `true`, `0400`).
 */
interface ContainerInfo {
  offset: number;
  /** Nodes below and including this one once aliases are followed (for alias-bomb checks). */
  size: number;
  keys?: string[];
  offsets: number[];
  raw?: (string | undefined)[];
  merges?: object[];
  /** Keys a `<<` merge of this map copies at most: its own plus those it merged in itself. */
  width?: number;
}

/**
 * Positions of the nodes of one parsed document, keyed by the parsed objects themselves.
 *
 * js-yaml (used because it parses ~15x faster than `yaml`'s document API on large pipelines)
 * reports each node's span through its listener; this index turns those spans into
 * line:column answers for any map key or list item, computed only when a problem is reported.
 */
export class SourceIndex {
  private lineStarts: number[] | undefined;
  /** @internal */
  readonly containers = new Map<object, ContainerInfo>();

  constructor(readonly text: string) {}

  /** Converts a character offset into a 1-based line and column. */
  position(offset: number): Position {
    this.lineStarts ??= computeLineStarts(this.text);
    const starts = this.lineStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }

  /** Offset of a map or list node. */
  offsetOf(container: object): number | undefined {
    return this.containers.get(container)?.offset;
  }

  /** Offset of the value stored under `key` (a map key or a list index), falling back to its map. */
  valueOffset(container: object, key: string | number): number | undefined {
    const found = this.find(container, key);
    if (found === undefined) return this.offsetOf(container);
    const [info, i] = found;
    return info.keys === undefined ? info.offsets[i] : info.offsets[2 * i + 1];
  }

  /** Offset of the key `key` of a map (where "unknown key" and "duplicate" problems point). */
  keyOffset(container: object, key: string | number): number | undefined {
    const found = this.find(container, key);
    if (found === undefined) return this.offsetOf(container);
    const [info, i] = found;
    return info.keys === undefined ? info.offsets[i] : info.offsets[2 * i];
  }

  /** The plain text of a non-string scalar (`1.10` stays `1.10`), or undefined if not recorded. */
  raw(container: object, key: string | number): string | undefined {
    const found = this.find(container, key);
    return found === undefined ? undefined : found[0].raw?.[found[1]];
  }

  private find(container: object, key: string | number): [ContainerInfo, number] | undefined {
    const info = this.containers.get(container);
    if (info === undefined) return undefined;
    if (info.keys === undefined) {
      return typeof key === "number" && info.offsets[key] !== undefined && info.offsets[key] >= 0
        ? [info, key]
        : undefined;
    }
    const i = info.keys.indexOf(String(key));
    if (i !== -1) return [info, i];
    // A key that came in through a `<<` merge stands where its source map put it.
    for (const source of info.merges ?? []) {
      const merged = this.find(source, key);
      if (merged !== undefined) return merged;
    }
    return undefined;
  }
}

function computeLineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

/** A document that could not be read at all: bad syntax, a duplicate key, too large, a bomb. */
export interface SourceError {
  message: string;
  position: Position;
}

/**
 * Work reading a document did, counted so tests can bound it by the document's size: nodes read
 * (an alias counts once, however large its anchor) and keys `<<` merges copied (or were about
 * to copy when refused).
 */
export interface SourceWork {
  nodes: number;
  mergedKeys: number;
}

/** The outcome of reading one YAML document, and the work that took. */
export type ParsedSource = { work: SourceWork } & (
  { ok: true; value: unknown; index: SourceIndex } | { ok: false; error: SourceError }
);

/**
 * How many keys the `<<` merges of a document of `chars` characters may copy. Ordinary pipelines
 * copy well under one key per character (a task's few defaults per `<<: *defaults` line); a merge
 * bomb copies thousands per character, and copying is what costs its time.
 */
export function mergeKeyBudget(chars: number, limits: SourceLimits = defaultSourceLimits): number {
  return Math.min(limits.maxExpandedNodes, 2 * chars + 50_000);
}

const mergeBombMessage =
  "merge keys (<<) copy too many keys for a document this size, which looks like an alias bomb — use fewer merges";

/**
 * Finished children of the nodes being read, as parallel arrays with a moving top (entries past
 * `top` are stale), so reading a large document allocates almost nothing of its own.
 */
interface Kids {
  start: number[];
  end: number[];
  result: unknown[];
  size: number[];
  top: number;
}

const scratchKeys: string[] = [];
const scratchOffsets: number[] = [];

/** Thrown from the listener to stop reading a document that expands too far. */
class ExpansionLimit extends Error {}

/** Thrown from the listener to stop a `<<` merge before it copies past the budget. */
class MergeLimit extends Error {
  constructor(readonly offset: number) {
    super("merge budget exceeded");
  }
}

/** Parses one YAML document and indexes the position of every node. Never throws on bad input. */
export function parseSource(
  text: string,
  limits: SourceLimits = defaultSourceLimits,
): ParsedSource {
  if (text.length > limits.maxChars) {
    return {
      ok: false,
      work: { nodes: 0, mergedKeys: 0 },
      error: {
        message: `the document is ${text.length} characters long; the limit is ${limits.maxChars} — split the pipeline or raise the limit`,
        position: { line: 1, column: 1 },
      },
    };
  }
  const index = new SourceIndex(text);
  // Nodes being read (their start offsets and where their children begin in the kid arrays),
  // and the finished children of those nodes, as parallel arrays to spare the collector.
  const openStart: number[] = [];
  const openKids: number[] = [];
  const kids: Kids = { start: [], end: [], result: [], size: [], top: 0 };
  let nodes = 0;
  let expansionLimited = false;
  let value: unknown;
  const budget = mergeKeyBudget(text.length, limits);
  let mergedKeys = 0;
  // A `<<` value closes before js-yaml copies its keys into the map: charge the copy then, so a
  // merge bomb is refused before the copying that would cost its time.
  const chargeMerge = (slot: number, source: unknown, offset: number): void => {
    const parentBase = openKids[openKids.length - 1];
    if (parentBase === undefined || (slot - parentBase) % 2 !== 1) return;
    if (kids.result[slot - 1] !== "<<" || !isContainer(source)) return;
    const sources = Array.isArray(source) ? source : [source];
    for (const s of sources) {
      if (isContainer(s)) mergedKeys += index.containers.get(s)?.width ?? 0;
    }
    if (mergedKeys > budget) throw new MergeLimit(offset);
  };
  try {
    value = jsyaml.load(text, {
      // js-yaml's own cap (10,000 merged keys) refuses ordinary pipelines where a few thousand
      // tasks each `<<: *defaults`; the listener bounds merge work by the document's size instead
      // and this stays a backstop. (Spread because @types/js-yaml does not list the option yet.)
      ...{ maxTotalMergeKeys: 2 * budget + 100_000 },
      listener(event, state) {
        if (event === "open") {
          openStart.push(state.position);
          openKids.push(kids.top);
          return;
        }
        const start = openStart.pop()!;
        const base = openKids.pop()!;
        const result: unknown = state.result;
        nodes++;
        if (kids.top - base === 1 && kids.result[base] === result) {
          // js-yaml wraps some nodes in a second node with the same value: keep the inner one.
          chargeMerge(base, result, start);
          return;
        }
        let size = 1;
        if (isContainer(result)) {
          size = settle(result, start, base, kids, text, index);
          if (size > limits.maxExpandedNodes) throw new ExpansionLimit();
        }
        kids.start[base] = start;
        kids.end[base] = state.position;
        kids.result[base] = result;
        kids.size[base] = size;
        kids.top = base + 1;
        chargeMerge(base, result, start);
      },
    });
  } catch (err) {
    if (err instanceof MergeLimit) {
      const position = index.position(firstNonSpace(text, err.offset, text.length));
      return {
        ok: false,
        work: { nodes, mergedKeys },
        error: { message: mergeBombMessage, position },
      };
    }
    if (!(err instanceof ExpansionLimit))
      return {
        ok: false,
        work: { nodes, mergedKeys },
        error: describeYamlError(err, text, index),
      };
    value = undefined;
    expansionLimited = true;
  }
  // Following aliases may multiply a small document (the "billion laughs"); refuse that early.
  const expanded = expansionLimited
    ? Infinity
    : isContainer(value)
      ? (index.containers.get(value)?.size ?? 1)
      : 1;
  const threshold = expansionLimited
    ? limits.maxExpandedNodes
    : Math.min(limits.maxExpandedNodes, 20 * nodes + 100_000);
  if (expanded > threshold) {
    return {
      ok: false,
      work: { nodes, mergedKeys },
      error: {
        message: `aliases expand this document past ${threshold} nodes, which looks like an alias bomb — use fewer nested aliases`,
        position: { line: 1, column: 1 },
      },
    };
  }
  return { ok: true, work: { nodes, mergedKeys }, value, index };
}

function isContainer(v: unknown): v is object {
  return typeof v === "object" && v !== null && !(v instanceof Date);
}

/**
 * Records where a finished map or list and its children stand, given its children's spans
 * (`kids[base..top]`), and returns its expanded size. An alias to a container already recorded
 * keeps the original's record.
 */
function settle(
  result: object,
  start: number,
  base: number,
  kids: Kids,
  text: string,
  index: SourceIndex,
): number {
  const known = index.containers.get(result);
  if (known !== undefined) return known.size;
  const { start: kidStart, end: kidEnd, result: kidResult, size: kidSize } = kids;
  const count = kids.top;
  const offset = firstNonSpace(text, start, text.length);
  let size = 1;
  let raw: (string | undefined)[] | undefined;
  if (Array.isArray(result)) {
    const offsets = new Array<number>(result.length).fill(-1);
    let k = base;
    for (let i = 0; i < result.length && k < count; i++) {
      const item: unknown = result[i];
      const kid = kidResult[k];
      if (kid === item || (Number.isNaN(kid) && Number.isNaN(item))) {
        offsets[i] = firstNonSpace(text, kidStart[k]!, kidEnd[k]!);
        const r = rawScalar(kid, kidStart[k]!, kidEnd[k]!, text);
        if (r !== undefined) (raw ??= [])[i] = r;
        size += kidSize[k]!;
        k++;
      } else {
        size += isContainer(item) ? (index.containers.get(item)?.size ?? 1) : 1;
      }
    }
    index.containers.set(result, raw ? { offset, size, offsets, raw } : { offset, size, offsets });
    return size;
  }
  const map = result as Record<string, unknown>;
  // Collected in scratch space first so the stored arrays are allocated at their exact size.
  let n = 0;
  let width = 0;
  let merges: object[] | undefined;
  for (let i = base; i < count; i++) {
    const key = kidResult[i];
    if (isContainer(key)) continue;
    const name = String(key);
    const keyOffset = firstNonSpace(text, kidStart[i]!, kidEnd[i]!);
    const valueAt = i + 1 < count ? i + 1 : -1;
    if (name === "<<" && valueAt !== -1 && isContainer(kidResult[valueAt])) {
      const source = kidResult[valueAt];
      merges ??= [];
      if (Array.isArray(source)) merges.push(...source.filter(isContainer));
      else merges.push(source);
      for (const m of Array.isArray(source) ? source : [source])
        if (isContainer(m)) width += index.containers.get(m)?.width ?? 0;
      size += kidSize[valueAt]!;
      i++;
      continue;
    }
    if (!Object.prototype.hasOwnProperty.call(map, name)) continue;
    scratchKeys[n] = name;
    scratchOffsets[2 * n] = keyOffset;
    if (valueAt !== -1 && kidResult[valueAt] === map[name]) {
      scratchOffsets[2 * n + 1] = firstNonSpace(text, kidStart[valueAt]!, kidEnd[valueAt]!);
      const r = rawScalar(kidResult[valueAt], kidStart[valueAt]!, kidEnd[valueAt]!, text);
      if (r !== undefined) (raw ??= [])[n] = r;
      size += 1 + kidSize[valueAt]!;
      i++;
    } else {
      scratchOffsets[2 * n + 1] = keyOffset;
      size += 2;
    }
    n++;
  }
  const keys = scratchKeys.slice(0, n);
  const offsets = scratchOffsets.slice(0, 2 * n);
  const info: ContainerInfo = { offset, size, keys, offsets, width: width + n };
  if (raw) info.raw = raw;
  if (merges) info.merges = merges;
  index.containers.set(result, info);
  return size;
}

function firstNonSpace(text: string, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break;
    i++;
  }
  return i;
}

/** The source text of a plain scalar that YAML typed as a number, boolean, null or date. */
function rawScalar(v: unknown, start: number, end: number, text: string): string | undefined {
  if (typeof v === "string" || isContainer(v)) return undefined;
  let raw = text.slice(start, end).trim();
  if (raw.startsWith("&")) raw = raw.replace(/^&\S+\s*/, "");
  if (raw.startsWith("*") || raw.startsWith("!")) return undefined;
  const comment = raw.search(/\s#/);
  if (comment !== -1) raw = raw.slice(0, comment).trimEnd();
  return raw;
}

function describeYamlError(err: unknown, text: string, index: SourceIndex): SourceError {
  if (err instanceof jsyaml.YAMLException) {
    const mark = err.mark as { line?: number; column?: number; position?: number } | undefined;
    const position =
      mark?.line !== undefined
        ? { line: mark.line + 1, column: (mark.column ?? 0) + 1 }
        : { line: 1, column: 1 };
    const reason = err.reason || "invalid YAML";
    if (/maxTotalMergeKeys/.test(reason)) return { message: mergeBombMessage, position };
    if (/duplicated mapping key/.test(reason)) {
      const offset = mark?.position ?? 0;
      const lineText = text.slice(offset - (mark?.column ?? 0)).split("\n", 1)[0] ?? "";
      const key = /^\s*-?\s*([^:#]+?)\s*:/.exec(lineText)?.[1];
      return {
        message: `duplicate key${key ? ` "${key}"` : ""}: a key may appear only once in a map — remove or rename one of them`,
        position,
      };
    }
    return { message: `invalid YAML: ${reason}`, position };
  }
  if (err instanceof RangeError) {
    return {
      message: "the document nests too deeply to read; flatten it",
      position: index.position(0),
    };
  }
  throw err;
}
