// A run's files, read from the launcher's view of DATA_PATH: `<dataRoot>/<run>` and nothing outside
// it. The launcher serves them because it is the service that mounts the data volume at the same
// path as task pods (it already purges RUN_PATH); repo-sync mounts the pipelines volume instead.
import { constants, type Stats } from "node:fs";
import { lstat, open, opendir, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import { checkRunId } from "@odin/pipeline-spec";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
} from "@odin/service-kit";

/** What an entry under RUN_PATH is. */
export type RunFileType = "file" | "directory" | "symlink" | "other";

/** One entry under RUN_PATH. */
export interface RunFile {
  /** Relative to RUN_PATH, `/`-separated. */
  path: string;
  type: RunFileType;
  size: number;
  modifyTime: Date;
}

/** A piece of a download: each file starts with `file`, its bytes follow in order. */
export type RunFileChunk = { file: RunFile; data: Uint8Array } | { data: Uint8Array };

/** Default largest download, in bytes (1 GiB). */
export const defaultMaxDownloadBytes = 1024 ** 3;
/** Most entries one listing returns. */
export const maxListedFiles = 10_000;
/** Bytes per download chunk. */
export const downloadChunkBytes = 64 * 1024;

/** Options of {@link RunData}. */
export interface RunDataOptions {
  /** The launcher's DATA_PATH; unset: run data cannot be read. */
  dataRoot?: string;
  /** Largest download in bytes (default {@link defaultMaxDownloadBytes}). */
  maxDownloadBytes?: number;
}

function typeOf(s: Stats): RunFileType {
  if (s.isFile()) return "file";
  if (s.isDirectory()) return "directory";
  if (s.isSymbolicLink()) return "symlink";
  return "other";
}

function entry(path: string, s: Stats): RunFile {
  const type = typeOf(s);
  return { path, type, size: type === "file" ? s.size : 0, modifyTime: s.mtime };
}

/** Lists and reads files under runs' RUN_PATH, refusing every path that leads out of it. */
export class RunData {
  readonly maxDownloadBytes: number;

  constructor(private readonly options: RunDataOptions) {
    this.maxDownloadBytes = options.maxDownloadBytes ?? defaultMaxDownloadBytes;
  }

  /** The entries of a directory (its whole tree with `recursive`), or a file alone. */
  async list(
    runId: string,
    path: string,
    recursive: boolean,
  ): Promise<{ files: RunFile[]; truncated: boolean; runPath: string }> {
    const { runPath, target, relPath } = await this.resolve(runId, path);
    const s = await lstat(target);
    if (!s.isDirectory()) return { files: [entry(relPath, s)], truncated: false, runPath };
    const files: RunFile[] = [];
    let truncated = false;
    const walk = async (dir: string, rel: string): Promise<void> => {
      const names: string[] = [];
      for await (const d of await opendir(dir)) names.push(d.name);
      names.sort();
      for (const name of names) {
        if (files.length >= maxListedFiles) {
          truncated = true;
          return;
        }
        const childRel = rel ? `${rel}/${name}` : name;
        const child = join(dir, name);
        const cs = await lstat(child).catch(() => undefined);
        if (!cs) continue;
        files.push(entry(childRel, cs));
        if (recursive && cs.isDirectory()) await walk(child, childRel);
      }
    };
    await walk(target, relPath === "." ? "" : relPath);
    return { files, truncated, runPath };
  }

  /**
   * The bytes of a file, or of every file under a directory, after checking the whole download
   * is within the size limit (the smaller of the launcher's and `maxBytes`). A symbolic link
   * inside the tree is followed only when it leads to a file inside RUN_PATH; one leading out
   * refuses the download.
   */
  async *download(runId: string, path: string, maxBytes = 0): AsyncGenerator<RunFileChunk> {
    const { root, target, relPath } = await this.resolve(runId, path);
    const limit = maxBytes > 0 ? Math.min(maxBytes, this.maxDownloadBytes) : this.maxDownloadBytes;
    const files: { rel: string; real: string; stats: Stats }[] = [];
    let total = 0;
    const add = async (abs: string, rel: string): Promise<void> => {
      const ls = await lstat(abs);
      if (ls.isDirectory()) {
        const names: string[] = [];
        for await (const d of await opendir(abs)) names.push(d.name);
        for (const name of names.sort())
          await add(join(abs, name), rel === "." ? name : `${rel}/${name}`);
        return;
      }
      let real = abs;
      if (ls.isSymbolicLink()) {
        real = await realpath(abs).catch(() => "");
        if (!real || !isInside(root, real)) {
          throw new InvalidArgumentError(
            `${shown(rel)} is a symbolic link that leads out of the run's RUN_PATH; it is not downloaded (download the files it sits beside one by one)`,
          );
        }
      }
      const s = ls.isSymbolicLink() ? await stat(real) : ls;
      if (!s.isFile()) return; // directories behind links, sockets, fifos: nothing to send
      total += s.size;
      if (total > limit) {
        const asked = maxBytes > 0 && maxBytes < this.maxDownloadBytes;
        throw new ResourceExhaustedError(
          `${shown(relPath)} holds more than ${limit} bytes, the download limit${asked ? " asked for (--max-bytes)" : " of the launcher (ODIN_DATA_DOWNLOAD_MAX_BYTES)"}; download a smaller path${asked ? " or raise --max-bytes" : ""}`,
        );
      }
      files.push({ rel, real, stats: s });
    };
    await add(target, relPath);
    for (const f of files) {
      const file = entry(f.rel, f.stats);
      // O_NOFOLLOW: the checked path must not have become a link since it was checked.
      const handle = await open(f.real, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        let first = true;
        for (;;) {
          const buffer = new Uint8Array(downloadChunkBytes);
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) break;
          const data = buffer.subarray(0, bytesRead);
          yield first ? { file, data } : { data };
          first = false;
        }
        if (first) yield { file, data: new Uint8Array(0) };
      } finally {
        await handle.close();
      }
    }
  }

  /** Checks a run id and a path inside its RUN_PATH; resolves them, refusing every way out. */
  private async resolve(
    runId: string,
    path: string,
  ): Promise<{ root: string; runPath: string; target: string; relPath: string }> {
    checkRunId(runId);
    if (this.options.dataRoot === undefined) {
      throw new FailedPreconditionError(
        "cannot read run data: the launcher has no data root configured (set ODIN_DATA_PATH)",
      );
    }
    if (path.includes("\0")) throw new InvalidArgumentError("path must not contain NUL");
    if (isAbsolute(path) || path.startsWith("/") || path.startsWith("\\")) {
      throw new InvalidArgumentError(
        `path ${JSON.stringify(path)} is absolute; give a path relative to the run's RUN_PATH (e.g. "train/model.bin")`,
      );
    }
    const parts = path.split(/[/\\]+/).filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) {
      throw new InvalidArgumentError(
        `path ${JSON.stringify(path)} contains "..": only paths inside the run's RUN_PATH can be read`,
      );
    }
    const runPath = join(this.options.dataRoot, runId);
    let root: string;
    try {
      root = await realpath(runPath);
      if (!(await stat(root)).isDirectory()) throw new Error("not a directory");
    } catch {
      throw new NotFoundError(
        `run ${runId} has no data: ${runPath} does not exist (its tasks wrote nothing, or its data was purged)`,
      );
    }
    const relPath = parts.length === 0 ? "." : parts.join("/");
    const target = join(root, ...parts);
    let real: string;
    try {
      real = await realpath(target);
    } catch {
      throw new NotFoundError(`run ${runId} has no ${relPath} under its RUN_PATH`);
    }
    if (!isInside(root, real)) {
      throw new InvalidArgumentError(
        `${relPath} leads out of the run's RUN_PATH through a symbolic link; it is not served`,
      );
    }
    return { root, runPath, target: real, relPath };
  }
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

function shown(rel: string): string {
  return rel === "." ? "RUN_PATH" : rel;
}
