// Purging a run's data from the launcher's view of DATA_PATH: `<dataRoot>/<run>` — only that,
// only under the data root, never following a path out of it.
import { lstat, realpath, rm } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "@odin/service-kit";

/** Removes `<dataRoot>/<run>`; true when it is gone (or was never there). */
export async function purgeRunData(
  dataRoot: string | undefined,
  runId: string,
  runPath: string | undefined,
): Promise<boolean> {
  if (dataRoot === undefined) {
    throw new FailedPreconditionError(
      "cannot purge run data: the launcher has no data root configured (set ODIN_DATA_PATH)",
    );
  }
  let root: string;
  try {
    root = await realpath(dataRoot);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    throw new FailedPreconditionError(
      `cannot purge run data: the data root ${dataRoot} does not exist on the launcher (mount the data volume there, or set ODIN_DATA_PATH)`,
      { cause: err },
    );
  }
  const target = runPath === undefined ? join(root, runId) : resolve(runPath);
  // The run's directory is named after the run and sits directly in the data root (after
  // resolving symbolic links of the root and of the target's parent).
  if (!isAbsolute(target) || basename(target) !== runId) {
    throw new InvalidArgumentError(
      `refusing to purge ${JSON.stringify(runPath)}: the run's data directory must be <data root>/${runId}`,
    );
  }
  let parent: string;
  try {
    parent = await realpath(dirname(target));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw err;
  }
  if (parent !== root) {
    throw new InvalidArgumentError(
      `refusing to purge ${target}: it is not directly under the data root ${root}`,
    );
  }
  const path = join(root, runId);
  try {
    await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw err;
  }
  // rm does not follow a symbolic link: a link named like the run is removed, not its target.
  await rm(path, { recursive: true, force: true });
  return true;
}
