/** How bad a problem is: an error makes a pipeline invalid, a warning does not. */
export type Severity = "error" | "warning";

/** One thing wrong with a pipeline, located as precisely as the source allows. */
export interface Problem {
  severity: Severity;
  /** File the problem is in, as the caller named it (e.g. `sst2/main.yml`). */
  file: string;
  /** 1-based line; 0 when the problem has no position in the file. */
  line: number;
  /** 1-based column; 0 when the problem has no position in the file. */
  column: number;
  /** Short name of the task the problem belongs to, if any. */
  task?: string;
  /** Dotted path of the offending field inside the task or pipeline (e.g. `args[2]`). */
  field?: string;
  /** What is wrong and what to do about it. */
  message: string;
}

/** Formats a problem as `file:line:col: task: message`, the form editors and CI logs understand. */
export function formatProblem(p: Problem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  const task = p.task !== undefined ? ` ${p.task}:` : "";
  const level = p.severity === "warning" ? " warning:" : "";
  return `${where}:${level}${task} ${p.message}`;
}
