import { InvalidKeyError, KEY_TOKEN as TOKEN } from "./store.js";

function token(value: string, what: string): string {
  if (typeof value !== "string" || !TOKEN.test(value)) {
    throw new InvalidKeyError(
      `${what} ${JSON.stringify(value)} cannot be part of a key: use letters, digits and - / _ = only (no ".")`,
    );
  }
  return value;
}

/**
 * The key layout of run state: one key per run and one per task, so no value grows with the size of
 * the pipeline. Run ids and task names are DNS labels, which are always valid key tokens.
 */
export const runKeys = {
  /** The key of a run's record: `run.<runId>`. */
  run: (runId: string): string => `run.${token(runId, "run id")}`,
  /** The key of one task's record: `run.<runId>.task.<taskName>`. */
  task: (runId: string, taskName: string): string =>
    `run.${token(runId, "run id")}.task.${token(taskName, "task name")}`,
  /** The filter for every task of a run: `run.<runId>.task.` (a prefix). */
  tasks: (runId: string): string => `run.${token(runId, "run id")}.task.`,
  /** The filter for every run record, without their tasks: `run.*`. */
  runs: "run.*",
  /** Reads a run or task key back; undefined for a key outside this layout. */
  parse(key: string): { runId: string; taskName?: string } | undefined {
    const parts = key.split(".");
    if (parts[0] !== "run" || parts[1] === undefined || !TOKEN.test(parts[1])) return undefined;
    if (parts.length === 2) return { runId: parts[1] };
    if (parts.length === 4 && parts[2] === "task" && parts[3] !== undefined && TOKEN.test(parts[3]))
      return { runId: parts[1], taskName: parts[3] };
    return undefined;
  },
} as const;
