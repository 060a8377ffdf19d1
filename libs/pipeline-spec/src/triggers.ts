// Commit triggers: a pipeline run for a commit that changes files under some paths, declared in
// `main.yml` (`triggers:`). Here: the path patterns and the decision which commits of a push start
// runs — pure functions, so the scheduler, the CLI and the tests read them the same way.
import type { ParameterValue } from "./parameters.js";

/** Which matching commits of a sync or push start runs: every one, or only the newest. */
export const triggerPolicies = ["each", "newest"] as const;
export type TriggerPolicy = (typeof triggerPolicies)[number];

/** A trigger's name: a DNS label, as a schedule's, so it reads the same in labels and keys. */
export const triggerNamePattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** One commit trigger of a pipeline. */
export interface TriggerSpec {
  name: string;
  /**
   * Path patterns relative to the repository root (a relative one as written is joined to the
   * pipeline's directory); `!` in front excludes. Default: the pipeline's directory.
   */
  paths: string[];
  policy: TriggerPolicy;
  /** Values of the pipeline's parameters for each run (typed; unset ones take their defaults). */
  parameters: Record<string, ParameterValue>;
}

/** A commit as a trigger sees it: its id and the repository paths it changed. */
export interface ChangedCommit {
  sha: string;
  changedPaths: readonly string[];
}

/**
 * A path pattern as written in `main.yml` (`paths:` of a trigger) resolved against the pipeline's
 * directory: `/x` is from the repository root, anything else from the pipeline's directory; `.` is
 * the directory itself. Returns the repository-relative pattern (`""` for the whole repository),
 * or `{error}` for one that cannot name a path of the repository.
 */
export function resolveTriggerPath(
  pipelineDir: string,
  written: string,
): { pattern: string } | { error: string } {
  const negated = written.startsWith("!");
  const text = negated ? written.slice(1) : written;
  if (text.trim() === "")
    return { error: `path "${written}" is empty; write a file or directory, e.g. src/` };
  if (/[\\\0\n\r]/.test(text))
    return { error: `path "${written}" may not contain a backslash or control characters` };
  const fromRoot = text.startsWith("/");
  const base = fromRoot || pipelineDir === "." ? "" : pipelineDir;
  const segments: string[] = base === "" ? [] : base.split("/");
  for (const segment of text.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..")
      return {
        error: `path "${written}" goes up with ".."; write it from the repository root with a leading "/" instead (e.g. /shared/lib)`,
      };
    segments.push(segment);
  }
  // A trailing "/" names a directory: everything under it, which a plain prefix matches anyway.
  return { pattern: (negated ? "!" : "") + segments.join("/") };
}

const globCache = new Map<string, RegExp>();

/** A pattern's regular expression: `**` any number of segments, `*` and `?` within one. */
function globRegExp(pattern: string): RegExp {
  let re = globCache.get(pattern);
  if (re) return re;
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*" && pattern[i + 1] === "*") {
      // `a/**/b` also matches `a/b`; a trailing `**` matches everything below.
      const slash = pattern[i + 2] === "/";
      out += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  // A pattern matches a path, or a directory the path is under.
  re = new RegExp(`^${out}(?:/.*)?$`);
  if (globCache.size > 1000) globCache.clear();
  globCache.set(pattern, re);
  return re;
}

/** Whether a repository path is under one resolved pattern (`""` matches every path). */
export function pathMatches(pattern: string, path: string): boolean {
  if (pattern === "") return true;
  if (!/[*?]/.test(pattern)) return path === pattern || path.startsWith(`${pattern}/`);
  return globRegExp(pattern).test(path);
}

/** Whether a commit that changed these paths is one for the trigger: some path matches a pattern and no `!` pattern. */
export function commitMatches(
  patterns: readonly string[],
  changedPaths: readonly string[],
): boolean {
  const include = patterns.filter((p) => !p.startsWith("!"));
  const exclude = patterns.filter((p) => p.startsWith("!")).map((p) => p.slice(1));
  return changedPaths.some(
    (path) =>
      include.some((p) => pathMatches(p, path)) && !exclude.some((p) => pathMatches(p, path)),
  );
}

/**
 * The commits a trigger starts runs for, of the commits a sync or push brought (oldest first):
 * under `each` every matching one, oldest first; under `newest` only the newest matching one.
 */
export function triggeredCommits<C extends ChangedCommit>(
  trigger: Pick<TriggerSpec, "paths" | "policy">,
  commits: readonly C[],
): C[] {
  const matching = commits.filter((c) => commitMatches(trigger.paths, c.changedPaths));
  if (trigger.policy === "newest") return matching.slice(-1);
  return matching;
}
