// Saved logs: what a task's pods printed, kept on the launcher's disk so `logs()` still serves
// them once Kubernetes has deleted the pods. Layout: `<root>/<run>/<task>/<attempt>/<pod>/<container>.log`,
// each file the pod log as the API returned it with `timestamps=true`.
import { access, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LogLine } from "../backend.js";
import type { AttemptId } from "../attempt/core.js";

const segment = /^[A-Za-z0-9][-A-Za-z0-9_.]*$/;

/** True when `s` can be one path segment under the log root (no `/`, not `.`/`..`). */
export function isSafeSegment(s: string): boolean {
  return s.length > 0 && s.length <= 253 && segment.test(s) && s !== "." && s !== "..";
}

function checked(...parts: string[]): string[] {
  for (const p of parts) {
    if (!isSafeSegment(p))
      throw new Error(`unsafe path segment for saved logs: ${JSON.stringify(p)}`);
  }
  return parts;
}

/** Splits a line printed with `timestamps=true` into its time and text. */
export function parseTimestamped(raw: string): { time?: Date; text: string } {
  const space = raw.indexOf(" ");
  if (space > 0 && /^\d{4}-\d\d-\d\dT/.test(raw)) {
    const time = new Date(raw.slice(0, space));
    if (!Number.isNaN(time.getTime())) return { time, text: raw.slice(space + 1) };
  }
  return { text: raw };
}

/** Lines of a log text (a trailing newline does not make an empty last line). */
export function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Turns raw timestamped lines of one container into {@link LogLine}s. */
export function toLogLines(raw: readonly string[], pod: string, container: string): LogLine[] {
  return raw.map((r) => {
    const { time, text } = parseTimestamped(r);
    return { pod, container, line: text, ...(time ? { time } : {}) };
  });
}

/** One saved container log. */
export interface SavedLog {
  pod: string;
  container: string;
}

/** The launcher's directory of saved logs. */
export class SavedLogs {
  constructor(readonly root: string) {}

  /** Directory of one attempt's saved logs. */
  attemptDir(id: AttemptId): string {
    return join(this.root, ...checked(id.runId, id.task, String(id.attempt)));
  }

  /** File of one container's saved log. */
  file(id: AttemptId, pod: string, container: string): string {
    return join(this.attemptDir(id), ...checked(pod, `${container}.log`));
  }

  /** Writes a container's whole log (atomically: readers never see half a file). */
  async save(id: AttemptId, pod: string, container: string, text: string): Promise<void> {
    const file = this.file(id, pod, container);
    await mkdir(join(file, ".."), { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, file);
  }

  /** True when a container's log is saved. */
  async has(id: AttemptId, pod: string, container: string): Promise<boolean> {
    try {
      await access(this.file(id, pod, container));
      return true;
    } catch {
      return false;
    }
  }

  /** The saved logs of an attempt (pods and containers), sorted. */
  async list(id: AttemptId): Promise<SavedLog[]> {
    const dir = this.attemptDir(id);
    const out: SavedLog[] = [];
    for (const pod of (await readdirOrEmpty(dir)).sort()) {
      for (const f of (await readdirOrEmpty(join(dir, pod))).sort()) {
        if (f.endsWith(".log")) out.push({ pod, container: f.slice(0, -".log".length) });
      }
    }
    return out;
  }

  /** Attempt numbers with saved logs for a task. */
  async attempts(runId: string, task: string): Promise<number[]> {
    const dir = join(this.root, ...checked(runId, task));
    return (await readdirOrEmpty(dir)).map(Number).filter((n) => Number.isSafeInteger(n) && n >= 1);
  }

  /** The raw lines of a saved log (the last `tailLines` when given), or undefined when none. */
  async read(
    id: AttemptId,
    pod: string,
    container: string,
    tailLines?: number,
  ): Promise<string[] | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(id, pod, container), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const lines = splitLines(text);
    return tailLines === undefined ? lines : lines.slice(Math.max(0, lines.length - tailLines));
  }

  /** Removes every saved log of a run. */
  async removeRun(runId: string): Promise<void> {
    await rm(join(this.root, ...checked(runId)), { recursive: true, force: true });
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/**
 * An async queue of items pushed by several producers and read by one consumer, which ends when
 * `end()` has been called and everything is read.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private failure: Error | undefined;

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake?.();
  }

  end(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = err;
    this.wake?.();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.ended) {
        if (this.failure !== undefined) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
