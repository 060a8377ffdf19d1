// Where the local backend keeps things, and the checks that keep every path it writes or deletes
// under its configured roots. Run ids and task names become path segments, so they are validated
// as DNS labels before any path is built from them.
import { realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { maxAttempt } from "@odin/pipeline-spec";
import { InvalidArgumentError } from "@odin/service-kit";

// Run ids, task names and attempts are checked by pipeline-spec's one validator.
export { checkAttempt, checkRunId, checkTaskName } from "@odin/pipeline-spec";

/** True when `path` is strictly below `root` (both absolute, already resolved). */
export function isStrictlyUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel.length > 0 && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * Resolves `path` (absolute, as given in a launch) and checks it lies strictly below `root`;
 * `what` names it in the error.
 */
export function resolveUnder(path: string, root: string, what: string): string {
  if (typeof path !== "string" || !isAbsolute(path) || path.includes("\0")) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(path)} must be an absolute path`);
  }
  const resolved = resolve(path);
  if (!isStrictlyUnder(resolved, root)) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(path)} is not below the local launcher's data root ${JSON.stringify(root)}`,
    );
  }
  return resolved;
}

/**
 * True when `path`, with every symbolic link in its existing part followed, stays strictly below
 * `root` (also with links followed). Catches a link inside the data root pointing out of it; call
 * it before creating `path` (nothing is made outside the root) and again after.
 */
export async function staysUnder(path: string, root: string): Promise<boolean> {
  const realRoot = await realpath(root);
  let existing = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return isStrictlyUnder(join(await realpath(existing), ...rest), realRoot);
    } catch (error) {
      const parent = dirname(existing);
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || parent === existing) throw error;
      rest.unshift(basename(existing));
      existing = parent;
    }
  }
}

/** The files of one attempt under the log directory. */
export interface AttemptFiles {
  /** `<logDir>/<run>/<task>` */
  dir: string;
  /** `<dir>/<attempt>.log`: the process's stdout and stderr, interleaved. */
  log: string;
  /** `<dir>/<attempt>.json`: the attempt's record (state, pid, events). */
  record: string;
  /** `<dir>/<attempt>.exit`: the exit status its supervisor wrote when the program ended. */
  exitStatus: string;
}

/** Paths of an attempt's files; the ids must have been checked. */
export function attemptFiles(
  logDir: string,
  runId: string,
  task: string,
  attempt: number,
): AttemptFiles {
  const dir = join(logDir, runId, task);
  return {
    dir,
    log: join(dir, `${attempt}.log`),
    record: join(dir, `${attempt}.json`),
    exitStatus: join(dir, `${attempt}.exit`),
  };
}

/** Attempt number of an attempt file name (`3.log`, `3.json`), or undefined for anything else. */
export function attemptOfFile(name: string): number | undefined {
  const m = /^([1-9][0-9]{0,6})\.(log|json)$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n <= maxAttempt ? n : undefined;
}
