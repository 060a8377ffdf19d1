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

/** Where one map entry or list item stands, and the plain text of a non-string scalar. */
interface Entry {
  keyOffset: number;
  valueOffset: number;
  /** The scalar as written, kept only for values YAML typed as non-strings (`1.10`, `true`, `0400`). */
  raw?: string;
}

interface ContainerInfo {
  offset: number;
  entries?: Map<string, Entry>;
  items?: (Entry | undefined)[];
  merges?: object[];
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

  /** Offset of the value stored under `key` (a map key or a list index), falling back to its key. */
  valueOffset(container: object, key: string | number): number | undefined {
    const entry = this.entry(container, key);
    return entry?.valueOffset ?? this.offsetOf(container);
  }

  /** Offset of the key `key` of a map (where "unknown key" and "duplicate" problems point). */
  keyOffset(container: object, key: string | number): number | undefined {
    const entry = this.entry(container, key);
    return entry?.keyOffset ?? this.offsetOf(container);
  }

  /** The plain text of a non-string scalar (`1.10` stays `1.10`), or undefined if not recorded. */
  raw(container: object, key: string | number): string | undefined {
    return this.entry(container, key)?.raw;
  }

  private entry(container: object, key: string | number): Entry | undefined {
    const info = this.containers.get(container);
    if (info === undefined) return undefined;
    if (info.items !== undefined) return typeof key === "number" ? info.items[key] : undefined;
    const found = info.entries?.get(String(key));
    if (found !== undefined) return found;
    // A key that came in through a `<<` merge stands where its source map put it.
    for (const source of info.merges ?? []) {
      const merged = this.entry(source, key);
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

/** The outcome of reading one YAML document. */
export type ParsedSource =
  | { ok: true; value: unknown; index: SourceIndex }
  | { ok: false; error: SourceError };

interface Frame {
  start: number;
  end: number;
  result: unknown;
  kids: Frame[] | undefined;
}

/** Parses one YAML document and indexes the position of every node. Never throws on bad input. */
export function parseSource(text: string, limits: SourceLimits = defaultSourceLimits): ParsedSource {
  if (text.length > limits.maxChars) {
    return {
      ok: false,
      error: {
        message: `the document is ${text.length} characters long; the limit is ${limits.maxChars} — split the pipeline or raise the limit`,
        position: { line: 1, column: 1 },
      },
    };
  }
  const index = new SourceIndex(text);
  const stack: Frame[] = [];
  let nodes = 0;
  let value: unknown;
  try {
    value = jsyaml.load(text, {
      listener(event, state) {
        if (event === "open") {
          stack.push({ start: state.position, end: 0, result: undefined, kids: undefined });
          return;
        }
        const frame = stack.pop();
        if (frame === undefined) return;
        frame.end = state.position;
        frame.result = state.result;
        nodes++;
        const node = settle(frame, text, index);
        const parent = stack[stack.length - 1];
        if (parent !== undefined) (parent.kids ??= []).push(node);
      },
    });
  } catch (err) {
    return { ok: false, error: describeYamlError(err, text, index) };
  }
  // Following aliases may multiply a small document (the "billion laughs"); refuse that early.
  const threshold = Math.min(limits.maxExpandedNodes, 20 * nodes + 100_000);
  if (countExpanded(value, threshold) > threshold) {
    return {
      ok: false,
      error: {
        message: `aliases expand this ${nodes}-node document past ${threshold} nodes, which looks like an alias bomb — use fewer nested aliases`,
        position: { line: 1, column: 1 },
      },
    };
  }
  return { ok: true, value, index };
}

function isContainer(v: unknown): v is object {
  return typeof v === "object" && v !== null && !(v instanceof Date);
}

/** Collapses js-yaml's nested wrapper frames and records the positions of a container's children. */
function settle(frame: Frame, text: string, index: SourceIndex): Frame {
  const kids = frame.kids;
  if (kids?.length === 1 && kids[0]!.result === frame.result) return kids[0]!;
  const result = frame.result;
  if (!isContainer(result)) {
    frame.kids = undefined;
    return frame;
  }
  const offset = firstNonSpace(text, frame.start, frame.end);
  if (Array.isArray(result)) {
    const items: (Entry | undefined)[] = new Array<Entry | undefined>(result.length);
    let k = 0;
    for (let i = 0; i < result.length && kids !== undefined && k < kids.length; i++) {
      const kid = kids[k]!;
      if (kid.result === result[i] || (Number.isNaN(kid.result) && Number.isNaN(result[i]))) {
        const at = firstNonSpace(text, kid.start, kid.end);
        items[i] = { keyOffset: at, valueOffset: at, raw: rawScalar(kid, text) };
        k++;
      }
    }
    index.containers.set(result, { offset, items });
  } else {
    const map = result as Record<string, unknown>;
    const entries = new Map<string, Entry>();
    let merges: object[] | undefined;
    for (let i = 0; kids !== undefined && i < kids.length; i++) {
      const keyFrame = kids[i]!;
      const key = keyFrame.result;
      if (isContainer(key)) continue;
      const name = String(key);
      const keyOffset = firstNonSpace(text, keyFrame.start, keyFrame.end);
      const valueFrame = kids[i + 1];
      if (name === "<<" && valueFrame !== undefined && isContainer(valueFrame.result)) {
        const source = valueFrame.result;
        merges ??= [];
        if (Array.isArray(source)) merges.push(...source.filter(isContainer));
        else merges.push(source);
        i++;
        continue;
      }
      if (!Object.prototype.hasOwnProperty.call(map, name)) continue;
      if (valueFrame !== undefined && valueFrame.result === map[name]) {
        entries.set(name, {
          keyOffset,
          valueOffset: firstNonSpace(text, valueFrame.start, valueFrame.end),
          raw: rawScalar(valueFrame, text),
        });
        i++;
      } else {
        entries.set(name, { keyOffset, valueOffset: keyOffset });
      }
    }
    index.containers.set(result, merges ? { offset, entries, merges } : { offset, entries });
  }
  frame.kids = undefined;
  return frame;
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
function rawScalar(frame: Frame, text: string): string | undefined {
  const v = frame.result;
  if (typeof v === "string" || isContainer(v)) return undefined;
  let raw = text.slice(frame.start, frame.end).trim();
  if (raw.startsWith("&")) raw = raw.replace(/^&\S+\s*/, "");
  if (raw.startsWith("*") || raw.startsWith("!")) return undefined;
  const comment = raw.search(/\s#/);
  if (comment !== -1) raw = raw.slice(0, comment).trimEnd();
  return raw;
}

/** Counts nodes as a consumer following every alias would see them, stopping past `cap`. */
function countExpanded(root: unknown, cap: number): number {
  const memo = new Map<object, number>();
  const size = (v: unknown): number => {
    if (!isContainer(v)) return 1;
    const known = memo.get(v);
    if (known !== undefined) return known;
    let total = 1;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const child of children) {
      total += size(child);
      if (total > cap) break;
    }
    memo.set(v, total);
    return total;
  };
  return size(root);
}

function describeYamlError(err: unknown, text: string, index: SourceIndex): SourceError {
  if (err instanceof jsyaml.YAMLException) {
    const mark = err.mark as { line?: number; column?: number; position?: number } | undefined;
    const position =
      mark?.line !== undefined
        ? { line: mark.line + 1, column: (mark.column ?? 0) + 1 }
        : { line: 1, column: 1 };
    const reason = err.reason || "invalid YAML";
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
