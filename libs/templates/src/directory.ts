// A templated pipeline directory: every `*.jinja2` file under it rendered with the run's context,
// as the original Odin rendered a job directory into a per-run copy. Pure: repo-sync reads the
// files and writes the copy, pipeline-registry only checks that they render.
import jsyaml from "js-yaml";
import type { Problem } from "@odin/pipeline-spec";
import { isTemplate, maxTemplateBytes, renderedPath, renderTemplate } from "./render.js";

/** A template of a pipeline directory, as read from the repository. */
export interface TemplateSource {
  /** Path relative to the pipeline directory, `/`-separated (`conf.yml.jinja2`, `conf/a.yml.jinja2`). */
  path: string;
  /** Its content; UTF-8 text is expected. */
  content: Uint8Array | string;
}

/** A template's rendering. */
export interface RenderedFile {
  /** Path relative to the pipeline directory: the template's, without `.jinja2`. */
  path: string;
  /** The template it came from (relative to the pipeline directory). */
  template: string;
  text: string;
}

/** The pipeline directory's path of a repository path under it (`.` is the repository root). */
export function relativeToPipeline(pipelinePath: string, repoPath: string): string | undefined {
  if (pipelinePath === "." || pipelinePath === "") return repoPath;
  return repoPath.startsWith(`${pipelinePath}/`)
    ? repoPath.slice(pipelinePath.length + 1)
    : undefined;
}

/** The repository path of a path relative to a pipeline directory. */
export function repoPathOf(pipelinePath: string, relative: string): string {
  return pipelinePath === "." || pipelinePath === "" ? relative : `${pipelinePath}/${relative}`;
}

/**
 * The templates under a pipeline directory among a commit's files (repository-relative paths, at
 * any depth), in path order.
 */
export function templatesUnder<T extends { path: string }>(
  files: readonly T[],
  pipelinePath: string,
): T[] {
  return files
    .filter((f) => isTemplate(f.path) && relativeToPipeline(pipelinePath, f.path) !== undefined)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Whether a rendered file is read back as YAML (and so must parse). */
export function isYamlPath(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

/**
 * Renders templates with `context`. Problems name `fileOf(template path)` with the template's
 * line and column: a template that is not UTF-8 or too large, that does not render (syntax, a
 * forbidden name), or whose `.yml`/`.yaml` rendering is not YAML (every document of it is read, as
 * the original's loader did; the text is kept as rendered, not re-dumped).
 */
export function renderTemplates(
  templates: readonly TemplateSource[],
  context: Readonly<Record<string, unknown>>,
  fileOf: (path: string) => string,
): { files: RenderedFile[]; problems: Problem[] } {
  const files: RenderedFile[] = [];
  const problems: Problem[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (const t of templates) {
    const file = fileOf(t.path);
    const fail = (message: string, line = 0, column = 0): void => {
      problems.push({ severity: "error", file, line, column, message });
    };
    const size = typeof t.content === "string" ? t.content.length : t.content.byteLength;
    if (size > maxTemplateBytes) {
      fail(`the template is ${size} bytes; the limit is ${maxTemplateBytes}`);
      continue;
    }
    let text: string;
    try {
      text = typeof t.content === "string" ? t.content : decoder.decode(t.content);
    } catch {
      fail("the template is not UTF-8 text");
      continue;
    }
    const rendered = renderTemplate(text, context, file);
    if (!rendered.ok) {
      problems.push(rendered.problem);
      continue;
    }
    const path = renderedPath(t.path);
    if (isYamlPath(path)) {
      const bad = yamlProblem(rendered.text);
      if (bad) {
        problems.push(
          rendered.locate({
            severity: "error",
            file,
            line: bad.line,
            column: bad.column,
            message: `the rendered ${path.slice(path.lastIndexOf("/") + 1)} is not valid YAML: ${bad.message}`,
          }),
        );
        continue;
      }
    }
    files.push({ path, template: t.path, text: rendered.text });
  }
  return { files, problems };
}

/** Where YAML text stops parsing, or undefined when every document of it reads. */
function yamlProblem(text: string): { line: number; column: number; message: string } | undefined {
  try {
    jsyaml.loadAll(text, () => undefined);
    return undefined;
  } catch (err) {
    if (err instanceof jsyaml.YAMLException) {
      const mark = err.mark as { line?: number; column?: number } | undefined;
      return {
        line: (mark?.line ?? 0) + 1,
        column: (mark?.column ?? 0) + 1,
        message: err.reason || "invalid YAML",
      };
    }
    if (err instanceof RangeError)
      return { line: 1, column: 1, message: "the document nests too deeply to read" };
    throw err;
  }
}
