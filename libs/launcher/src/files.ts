// Content digests of files on the launcher's data volume, for the scheduler's cache
// (docs/caching.md). They are computed here because this is where the data is: the launcher mounts
// the shared volume at the path the task pods see (the local backend's filesystem in embedded mode),
// while the scheduler may not see it at all. Files are streamed through the hash, never read whole.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdir, readdir, readlink, realpath, stat, symlink } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { InvalidArgumentError } from "@odin/service-kit";
import { isStrictlyUnder, staysUnder } from "./local/paths.js";

/** Digest of a path that does not exist. */
export const missingDigest = "missing";

/** Most entries one directory digest walks (a guard against hashing a whole volume by mistake). */
export const maxDirectoryEntries = 1_000_000;

async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * A directory's digest: its tree in name order — each entry's relative path, kind and content
 * digest (a symbolic link inside it counts by its target text, and is not followed).
 */
async function directoryDigest(root: string): Promise<string> {
  const hash = createHash("sha256");
  let entries = 0;
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      if (++entries > maxDirectoryEntries)
        throw new InvalidArgumentError(
          `${root} has more than ${maxDirectoryEntries} entries; name smaller directories in inputs and outputs`,
        );
      const path = join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const info = await lstat(path);
      if (info.isSymbolicLink()) hash.update(`l ${rel}\0${await readlink(path)}\n`);
      else if (info.isDirectory()) {
        hash.update(`d ${rel}\n`);
        await walk(path, rel);
      } else if (info.isFile()) hash.update(`f ${rel}\0${await fileDigest(path)}\n`);
      else hash.update(`o ${rel}\n`);
    }
  };
  await walk(root, "");
  return `dir-sha256:${hash.digest("hex")}`;
}

/** Where the launcher may read (and, under the first root, link) for the cache. */
export class CacheFiles {
  private readonly roots: string[];

  /** `roots`: absolute directories; the first is the data root (links are made only under it). */
  constructor(roots: readonly string[]) {
    this.roots = roots.map((r) => resolve(r));
  }

  private check(path: string, what: string, roots = this.roots): string {
    if (typeof path !== "string" || !isAbsolute(path) || path.includes("\0"))
      throw new InvalidArgumentError(`${what} ${JSON.stringify(path)} must be an absolute path`);
    const resolved = resolve(path);
    if (!roots.some((r) => isStrictlyUnder(resolved, r)))
      throw new InvalidArgumentError(
        `${what} ${JSON.stringify(path)} is not under a directory the launcher can read for the cache (${roots.join(", ")})`,
      );
    return resolved;
  }

  /** True when `path`, symbolic links followed, stays under one of `roots`. */
  private async staysInside(path: string, roots = this.roots): Promise<boolean> {
    for (const root of roots) {
      try {
        if (await staysUnder(path, root)) return true;
      } catch {
        // A root that does not exist holds nothing.
      }
    }
    return false;
  }

  /**
   * The content digest of each path: `sha256:<hex>` for a file, `dir-sha256:<hex>` for a
   * directory, `missing` when nothing is there. A path (or a link in it) leading outside the
   * readable roots is refused.
   */
  async digests(paths: readonly string[]): Promise<string[]> {
    const resolved = paths.map((p) => this.check(p, "path"));
    return Promise.all(
      resolved.map(async (path) => {
        let info;
        try {
          info = await stat(path);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "ENOENT" || code === "ENOTDIR") return missingDigest;
          throw error;
        }
        if (!(await this.staysInside(await realpath(path))))
          throw new InvalidArgumentError(
            `path ${JSON.stringify(path)} leads outside the launcher's readable directories through a symbolic link`,
          );
        if (info.isDirectory()) return directoryDigest(path);
        if (info.isFile()) return fileDigest(path);
        throw new InvalidArgumentError(
          `path ${JSON.stringify(path)} is neither a file nor a directory`,
        );
      }),
    );
  }

  /**
   * Makes each link (`path` → `target`) where nothing exists yet, its parent directories too; only
   * under the data root, and only to targets the launcher may read.
   */
  async link(links: readonly { target: string; path: string }[]): Promise<void> {
    const dataRoot = this.roots.slice(0, 1);
    for (const l of links) {
      const target = this.check(l.target, "link target");
      const path = this.check(l.path, "link path", dataRoot);
      if (target === path) continue;
      try {
        await lstat(path);
        continue; // Something is there already: it is left as it is.
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
      if (!(await this.staysInside(dirname(path), dataRoot)))
        throw new InvalidArgumentError(
          `link path ${JSON.stringify(l.path)} leads outside the data root through a symbolic link`,
        );
      await mkdir(dirname(path), { recursive: true });
      try {
        await symlink(target, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
    }
  }
}
