// The original Odin's templates: `*.jinja2` files of a pipeline directory rendered with Jinja2
// semantics (undefined names render empty) with the run's context. One environment and one sandbox
// for the registry (which reads `main.yml.jinja2` and checks the others) and repo-sync (which
// writes a run's rendered directory).
import nunjucks from "nunjucks";
import type { Problem } from "@odin/pipeline-spec";

/** The suffix that marks a template. */
export const templateSuffix = ".jinja2";

/** Largest template read (bigger ones are refused: a template is a config file, not data). */
export const maxTemplateBytes = 4 * 1024 * 1024;

/** Largest rendered text kept (a loop can render far more than its template holds). */
export const maxRenderedChars = 16 * 1024 * 1024;

/** Whether a file (a path or a name) is a template: `<name>.jinja2` with a non-empty name. */
export function isTemplate(path: string): boolean {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return name.length > templateSuffix.length && name.endsWith(templateSuffix);
}

/** Where a template's rendering is written: its path without `.jinja2`. */
export function renderedPath(path: string): string {
  return isTemplate(path) ? path.slice(0, -templateSuffix.length) : path;
}

/**
 * The context templates of a pipeline directory are rendered with: the run's parameters, `name`
 * defaulting to the directory's name (as in the original, where it was the render directory's).
 */
export function templateContext(
  pipelinePath: string,
  parameters: Readonly<Record<string, unknown>> | undefined,
): Record<string, unknown> {
  const dir = pipelinePath === "." ? "" : pipelinePath.slice(pipelinePath.lastIndexOf("/") + 1);
  return { ...(dir ? { name: dir } : {}), ...parameters };
}

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
  if (rendered.length > maxRenderedChars) {
    return {
      ok: false,
      problem: {
        severity: "error",
        file,
        line: 1,
        column: 1,
        message: `the template renders to ${rendered.length} characters; the limit is ${maxRenderedChars}`,
      },
    };
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
