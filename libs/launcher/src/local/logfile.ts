// Reading an attempt's log file: the last N lines, then (when following) new lines as the process
// writes them. The process writes the file directly (its stdout and stderr are the file), so the
// log survives the launcher and needs no copying; a follower learns of new bytes from fs.watch,
// with a slow poll as a fallback where watching is unavailable.
import { watch, type FSWatcher } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

const chunkSize = 64 * 1024;
/** A "line" longer than this is cut, so a process printing no newline cannot exhaust memory. */
export const maxLineBytes = 1024 * 1024;

/**
 * Byte offset where the last `lines` lines of the file begin (a final line without a newline
 * counts as a line). Reads backwards in chunks, so a long log costs only its tail.
 */
export async function tailOffset(file: FileHandle, size: number, lines: number): Promise<number> {
  if (lines <= 0) return size;
  let end = size;
  // A trailing newline ends the last line; it does not start an empty one.
  if (end > 0) {
    const last = Buffer.alloc(1);
    await file.read(last, 0, 1, end - 1);
    if (last[0] === 0x0a) end -= 1;
  }
  let found = 0;
  let pos = end;
  const buf = Buffer.alloc(chunkSize);
  while (pos > 0) {
    const len = Math.min(chunkSize, pos);
    pos -= len;
    const { bytesRead } = await file.read(buf, 0, len, pos);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (buf[i] === 0x0a && ++found === lines) return pos + i + 1;
    }
  }
  return 0;
}

/** Splits bytes into lines across chunk boundaries (UTF-8 safe; `\r\n` endings tolerated). */
export class LineSplitter {
  private readonly decoder = new TextDecoder("utf-8");
  private partial = "";

  /** Complete lines found in `bytes` (the unfinished end is kept for later). */
  push(bytes: Uint8Array): string[] {
    const text = this.partial + this.decoder.decode(bytes, { stream: true });
    const parts = text.split("\n");
    this.partial = parts.pop() ?? "";
    const out = parts.map(stripCr);
    if (this.partial.length > maxLineBytes) {
      out.push(this.partial);
      this.partial = "";
    }
    return out;
  }

  /** The unfinished last line, if any (when the file will not grow any more). */
  flush(): string[] {
    const rest = this.partial + this.decoder.decode();
    this.partial = "";
    return rest.length > 0 ? [stripCr(rest)] : [];
  }
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** How {@link readLogLines} learns whether more may come. */
export interface FollowControl {
  /** True while the writer may still add lines. */
  live(): boolean;
  /** Resolves when the writer has finished (or never, if unknown). */
  finished: Promise<void>;
  /** Ends the follow early. */
  signal?: AbortSignal;
  /** Poll interval when no change notification arrives, in ms. */
  pollMs: number;
}

/**
 * The lines of a log file, from the last `tailLines` (all when undefined). With `follow`, keeps
 * yielding new lines until the writer has finished and the file is drained, or `signal` aborts.
 */
export async function* readLogLines(
  path: string,
  tailLines: number | undefined,
  follow: FollowControl | undefined,
): AsyncGenerator<string> {
  const file = await open(path, "r");
  let watcher: FSWatcher | undefined;
  // `changed` remembers a notification that arrived while reading, so it is not lost.
  let changed: boolean;
  let wake: (() => void) | undefined;
  const notify = () => {
    changed = true;
    wake?.();
  };
  try {
    const size = (await file.stat()).size;
    let offset = tailLines === undefined ? 0 : await tailOffset(file, size, tailLines);
    const splitter = new LineSplitter();
    const buf = Buffer.alloc(chunkSize);
    if (follow) {
      follow.signal?.addEventListener("abort", notify);
      void follow.finished.then(notify);
      try {
        watcher = watch(path, { persistent: false }, notify);
        watcher.on("error", () => undefined);
      } catch {
        watcher = undefined; // polling alone still works
      }
    }
    for (;;) {
      if (follow?.signal?.aborted) return;
      changed = false;
      // Decide before reading: once the writer is done, one more read drains the file.
      const done = follow === undefined || !follow.live();
      for (;;) {
        const { bytesRead } = await file.read(buf, 0, chunkSize, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        for (const line of splitter.push(buf.subarray(0, bytesRead))) yield line;
        if (follow?.signal?.aborted) return;
      }
      if (done) {
        yield* splitter.flush();
        return;
      }
      if (!changed) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, follow.pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  } finally {
    follow?.signal?.removeEventListener("abort", notify);
    watcher?.close();
    await file.close();
  }
}
