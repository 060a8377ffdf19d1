import { posix } from "node:path";
import { taskId } from "./names.js";

/** The processing variables of SPEC.md, in the order they are documented. */
export const processingVariables = [
  "ROOT_PATH",
  "WORK_PATH",
  "DATA_PATH",
  "PIPE_ID",
  "RUN_PATH",
  "TASK_ID",
  "TASK_NAME",
  "TASK_PATH",
  "TASK_IDS",
] as const;

/** Name of one processing variable. */
export type ProcessingVariable = (typeof processingVariables)[number];

const known = new Set<string>(processingVariables);

/** What a run knows when it computes a task's variables. */
export interface RunContext {
  /** Root of the synced pipelines repository as task pods see it. */
  rootPath: string;
  /** Root for run outputs; defaults to `rootPath`. */
  dataPath?: string;
  /** Pipeline directory relative to the repository root (`sst2`, `alice/sst2`). */
  pipelinePath: string;
  /**
   * `WORK_PATH` when it is not the pipeline directory under `rootPath`: a templated pipeline's
   * directory rendered for the run.
   */
  workPath?: string;
  /** The run id (`PIPE_ID`). */
  runId: string;
  /** Short names of all the run's tasks, for `TASK_IDS`. */
  taskNames: readonly string[];
}

/** The values of every processing variable for one task of a run. */
export function taskVariables(
  ctx: RunContext,
  taskName: string,
): Record<ProcessingVariable, string> {
  const root = directory(ctx.rootPath);
  const data = directory(ctx.dataPath ?? ctx.rootPath);
  const runPath = posix.join(data, ctx.runId);
  return {
    ROOT_PATH: root,
    WORK_PATH: directory(ctx.workPath ?? posix.join(root, ctx.pipelinePath)),
    DATA_PATH: data,
    PIPE_ID: ctx.runId,
    RUN_PATH: runPath,
    TASK_ID: taskId(ctx.runId, taskName),
    TASK_NAME: taskName,
    TASK_PATH: posix.join(runPath, taskName),
    TASK_IDS: ctx.taskNames.map((name) => taskId(ctx.runId, name)).join(","),
  };
}

/** A normalized directory without a trailing `/`, so `${ROOT_PATH}/x` never holds `//`. */
function directory(path: string): string {
  const p = posix.normalize(path);
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
}

/** One `$NAME` or `${NAME}` found in a string. */
export interface VariableUse {
  name: string;
  /** Offset of the `$` in the string. */
  offset: number;
}

/** A malformed or unknown placeholder. */
export interface VariableProblem {
  offset: number;
  message: string;
}

const identStart = /[A-Za-z_]/;
const identPart = /[A-Za-z0-9_]/;

/**
 * Scans a string for placeholders the way the original Odin's `string.Template` did: `$NAME`,
 * `${NAME}`, `$$` for a literal `$`. A `$` followed by anything else (`$1`, `$ `) is kept as
 * written rather than rejected, so shell snippets in args keep working.
 */
export function scanVariables(s: string): { uses: VariableUse[]; problems: VariableProblem[] } {
  const uses: VariableUse[] = [];
  const problems: VariableProblem[] = [];
  for (let i = s.indexOf("$"); i !== -1; i = s.indexOf("$", i + 1)) {
    const next = s[i + 1];
    if (next === "$") {
      i++;
      continue;
    }
    if (next === "{") {
      const close = s.indexOf("}", i + 2);
      const name = close === -1 ? "" : s.slice(i + 2, close);
      if (close === -1) {
        problems.push({
          offset: i,
          message: `"\${" has no closing "}" — write $$ for a literal $`,
        });
        break;
      }
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        problems.push({
          offset: i,
          message: `"\${${name}}" is not a variable name — write $$ for a literal $`,
        });
      } else {
        uses.push({ name, offset: i });
      }
      i = close;
      continue;
    }
    if (next !== undefined && identStart.test(next)) {
      let end = i + 2;
      while (end < s.length && identPart.test(s[end]!)) end++;
      uses.push({ name: s.slice(i + 1, end), offset: i });
      i = end - 1;
    }
  }
  for (const use of uses) {
    if (!known.has(use.name)) {
      problems.push({
        offset: use.offset,
        message: `unknown variable $${use.name}; the variables are ${processingVariables.join(", ")} — write $$${use.name} for a literal $${use.name}`,
      });
    }
  }
  return { uses, problems };
}

/** Substitutes processing variables in one string. Unknown names are left as written. */
export function substituteVariables(s: string, values: Readonly<Record<string, string>>): string {
  if (!s.includes("$")) return s;
  let out = "";
  let last = 0;
  for (let i = s.indexOf("$"); i !== -1; i = s.indexOf("$", i + 1)) {
    const next = s[i + 1];
    if (next === "$") {
      out += s.slice(last, i) + "$";
      last = i + 2;
      i++;
      continue;
    }
    let name: string | undefined;
    let end = i;
    if (next === "{") {
      const close = s.indexOf("}", i + 2);
      if (close === -1) break;
      name = s.slice(i + 2, close);
      end = close + 1;
    } else if (next !== undefined && identStart.test(next)) {
      end = i + 2;
      while (end < s.length && identPart.test(s[end]!)) end++;
      name = s.slice(i + 1, end);
    }
    if (name === undefined) continue;
    const value = values[name];
    if (value === undefined) continue;
    out += s.slice(last, i) + value;
    last = end;
    i = end - 1;
  }
  return out + s.slice(last);
}
