// The original Odin's templated pipelines: a `main.yml.jinja2` rendered with Jinja2 semantics
// (undefined names render empty) with the run's context, then read as `main.yml`.
import nunjucks from "nunjucks";
import type { Problem } from "@odin/pipeline-spec";

/** The suffix that marks a template. */
export const templateSuffix = ".jinja2";

/**
 * Names a template may not reach through: the way out of nunjucks' expressions into JavaScript
 * (`range.constructor("…")()` would run code in this process). Templates come from whoever can push
 * to the repository; they get data, never the runtime.
 */
const forbidden = new Set([
  "constructor",
  "__proto__",
  "prototype",
  "__defineGetter__",
  "__defineSetter__",
  "__lookupGetter__",
  "__lookupSetter__",
]);

type Runtime = { memberLookup: (obj: unknown, val: unknown) => unknown };
const runtime = (nunjucks as unknown as { runtime: Runtime }).runtime;
const memberLookup = runtime.memberLookup;
runtime.memberLookup = (obj: unknown, val: unknown): unknown => {
  if (typeof val === "string" && forbidden.has(val))
    throw new Error(`"${val}" cannot be used in a template`);
  return memberLookup(obj, val);
};

const environment = new nunjucks.Environment(null, { autoescape: false });
// Jinja2's `tojson`, which nunjucks spells `dump`.
environment.addFilter("tojson", (v: unknown) => JSON.stringify(v));

/**
 * Renders a template with a context. Problems point at the template's line and column; on success
 * the rendered text and a function that tells, for a problem in the rendered text, where to look.
 */
export function renderTemplate(
  text: string,
  context: Readonly<Record<string, unknown>>,
  file: string,
): { ok: true; text: string; locate: (p: Problem) => Problem } | { ok: false; problem: Problem } {
  let rendered: string;
  try {
    rendered = environment.renderString(text, { ...context });
  } catch (error) {
    return { ok: false, problem: renderProblem(error, file) };
  }
  const templateLines = text.split("\n");
  const renderedLines = rendered.split("\n");
  // Rendering that kept every line where it was (substitutions, no loops) keeps positions exact;
  // otherwise a problem also quotes the rendered line it is on.
  const sameShape = templateLines.length === renderedLines.length;
  return {
    ok: true,
    text: rendered,
    locate: (p) => {
      const line = renderedLines[p.line - 1];
      const quote =
        sameShape || line === undefined || p.line === 0
          ? ""
          : ` (rendered line ${p.line}: ${JSON.stringify(line.trim().slice(0, 80))})`;
      return { ...p, file, message: `${p.message}${quote}` };
    },
  };
}

/** A nunjucks error as a problem at the template's line:column. */
function renderProblem(error: unknown, file: string): Problem {
  const raw = error instanceof Error ? error.message : String(error);
  // nunjucks: "(unknown path) [Line 3, Column 12]\n  unexpected token: }}" (positions 1-based).
  const at = /\[Line (\d+), Column (\d+)\]/.exec(raw);
  const message = raw
    .replace(/^\(unknown path\)\s*(\[Line \d+, Column \d+\])?\s*/, "")
    .replace(/^Template render error:\s*/, "")
    .replace(/\s+/g, " ")
    .trim();
  return {
    severity: "error",
    file,
    line: at ? Number(at[1]) : 1,
    column: at ? Number(at[2]) : 1,
    message: `the template cannot be rendered: ${message || "error"}`,
  };
}
