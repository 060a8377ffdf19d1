import { lstat, readdir, readFile } from "node:fs/promises";
import { basename, join, relative, sep } from "node:path";
import {
  defaultSourceLimits,
  formatProblem,
  loadPipeline,
  type Problem,
} from "@odin/pipeline-spec";

/** One pipeline found on disk and what validating it said. */
export interface ValidatedPipeline {
  /** `main.yml` as the user would type its path. */
  file: string;
  /** Pipeline directory relative to the root it was found under. */
  path: string;
  name?: string;
  taskCount: number;
  valid: boolean;
  problems: Problem[];
}

const skippedDirs = new Set(["node_modules", ".git", "dist"]);

/** Finds every `main.yml` under `root` (a pipelines repository or one pipeline directory). */
export async function findPipelineFiles(root: string): Promise<string[]> {
  const info = await lstat(root);
  if (info.isFile()) return [root];
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      // Symlinked directories are not followed: they may lead out of the repository.
      if (e.isDirectory() && !skippedDirs.has(e.name) && !e.name.startsWith(".")) {
        await walk(join(dir, e.name));
      } else if (e.name === "main.yml" && (e.isFile() || e.isSymbolicLink())) {
        found.push(join(dir, e.name));
      }
    }
  };
  await walk(root);
  return found;
}

/** Validates one `main.yml`; `root` is the directory pipeline paths are relative to. */
export async function validateFile(file: string, root: string): Promise<ValidatedPipeline> {
  const dir = relative(root, join(file, ".."));
  const path =
    dir === ""
      ? basename(join(root, ".") === "." ? process.cwd() : root)
      : dir.split(sep).join("/");
  const result: ValidatedPipeline = { file, path, taskCount: 0, valid: false, problems: [] };
  const fail = (message: string): ValidatedPipeline => {
    result.problems.push({ severity: "error", file, line: 0, column: 0, message });
    return result;
  };
  let text: string;
  try {
    const info = await lstat(file);
    if (info.isSymbolicLink())
      return fail(
        "main.yml is a symbolic link; pipelines must be regular files inside the repository",
      );
    if (info.size > defaultSourceLimits.maxChars) {
      return fail(
        `the file is ${info.size} bytes; the limit is ${defaultSourceLimits.maxChars} — split the pipeline`,
      );
    }
    text = await readFile(file, "utf8");
  } catch (err) {
    return fail(`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const loaded = loadPipeline(text, { file, path });
  result.valid = loaded.valid;
  result.problems = loaded.problems;
  if (loaded.pipeline) {
    result.name = loaded.pipeline.name;
    result.taskCount = loaded.pipeline.tasks.length;
  }
  return result;
}

/** Options of `odin validate`. */
export interface ValidateOptions {
  quiet?: boolean;
  output?: "text" | "json";
}

/** `odin validate [DIR ...]`: prints every problem and a summary; resolves to the exit code. */
export async function validateCommand(
  dirs: string[],
  options: ValidateOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const roots = dirs.length > 0 ? dirs : ["."];
  const results: ValidatedPipeline[] = [];
  for (const root of roots) {
    let files: string[];
    try {
      files = await findPipelineFiles(root);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(
        code === "ENOENT"
          ? `${root}: no such file or directory`
          : `${root}: cannot read (${code ?? String(err)})`,
        {
          cause: err,
        },
      );
    }
    if (files.length === 0)
      throw new Error(
        `${root}: no main.yml found — point odin validate at a pipelines repository or a pipeline directory`,
      );
    for (const file of files)
      results.push(
        await validateFile(file, (await lstat(root)).isFile() ? join(root, "..") : root),
      );
  }
  const invalid = results.filter((r) => !r.valid);
  if (options.output === "json") {
    out.write(JSON.stringify({ pipelines: results, valid: invalid.length === 0 }, null, 2) + "\n");
    return invalid.length === 0 ? 0 : 1;
  }
  let errors = 0;
  let warnings = 0;
  for (const r of results) {
    for (const p of r.problems) {
      if (p.severity === "error") errors++;
      else warnings++;
      if (p.severity === "warning" && options.quiet) continue;
      out.write(formatProblem(p) + "\n");
    }
  }
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
  const counts = [
    plural(errors, "error"),
    ...(warnings > 0 ? [plural(warnings, "warning")] : []),
  ].join(", ");
  out.write(
    invalid.length === 0
      ? `${plural(results.length, "pipeline")} valid${warnings > 0 ? ` (${plural(warnings, "warning")})` : ""}\n`
      : `${invalid.length} of ${plural(results.length, "pipeline")} invalid: ${counts}\n`,
  );
  return invalid.length === 0 ? 0 : 1;
}
