import { loadPipeline, type LoadResult, type Problem } from "@odin/pipeline-spec";
import {
  maxTemplateBytes,
  relativeToPipeline,
  renderTemplate,
  renderTemplates,
  repoPathOf,
  templateContext,
  templatesUnder,
  templateSuffix,
  type TemplateSource,
} from "@odin/templates";

/** A file of a commit, as repo-sync lists it. */
export interface ListedFile {
  path: string;
  size: number;
  symlink: boolean;
}

/** Where the catalog reads the repository from: repo-sync over gRPC, or in-process. */
export interface FileSource {
  /** The commit currently served (cheap: asked when the catalog's idea of it may be stale). */
  currentCommit(): Promise<string>;
  /** Lists every file of a commit (default: the served one) and says which commit that was. */
  listFiles(commit?: string): Promise<{ commit: string; files: ListedFile[] }>;
  /** Reads files of a commit, paths relative to the repository root. */
  readFiles(
    commit: string,
    paths: readonly string[],
  ): Promise<{ path: string; content: Uint8Array }[]>;
}

/** One pipeline of a commit, as listings show it. */
export interface PipelineEntry {
  path: string;
  /** The pipeline name (`flow` when main.yml gives none); empty when main.yml could not be read. */
  name: string;
  taskCount: number;
  valid: boolean;
  problems: Problem[];
  /** The full result, for GetPipeline. */
  result: LoadResult;
  /** Its `main.yml` (or `main.yml.jinja2` template), to read again for a run's parameters. */
  source?: { file: string; text: string; template: boolean };
  /**
   * The directory's other `*.jinja2` files (paths relative to it), rendered again with a run's
   * context to check them: repo-sync writes them for the run.
   */
  templates?: TemplateSource[];
  /** Problems of those templates that no context changes (a symbolic link, too large). */
  templateProblems?: Problem[];
}

/** Every pipeline of one commit. */
export interface Snapshot {
  commit: string;
  pipelines: ReadonlyMap<string, PipelineEntry>;
}

/** Largest main.yml the catalog reads (bigger ones are listed as invalid). */
const maxPipelineBytes = 32 * 1024 * 1024;

/**
 * Parses and validates every pipeline of a commit once, and keeps the last few commits' results,
 * so listing a thousand pipelines a second time costs a map lookup. `current` is the newest
 * commit known; it moves on `noteSynced` (the `repo.synced` event) or when asked for explicitly.
 */
export class PipelineCatalog {
  private readonly snapshots = new Map<string, Promise<Snapshot>>();
  private readonly runReads = new Map<string, LoadResult>();
  private current: string | undefined;
  private checkedAt = 0;

  /**
   * `maxStalenessMs`: how long the newest commit is trusted without a `repo.synced` event before
   * repo-sync is asked again (a missed event then costs at most that much staleness).
   */
  constructor(
    private readonly source: FileSource,
    private readonly options: {
      keepCommits?: number;
      maxStalenessMs?: number;
      now?: () => number;
    } = {},
  ) {}

  private get keepCommits(): number {
    return this.options.keepCommits ?? 4;
  }

  /** Every pipeline of a commit (default: the newest). */
  async snapshot(commit?: string): Promise<Snapshot> {
    const now = this.options.now?.() ?? Date.now();
    if (!commit && this.current && now - this.checkedAt > (this.options.maxStalenessMs ?? 30_000)) {
      this.current = await this.source.currentCommit();
      this.checkedAt = now;
    }
    const wanted = commit || this.current;
    if (wanted) {
      const cached = this.snapshots.get(wanted);
      if (cached) return cached;
    }
    const listing = await this.source.listFiles(wanted);
    if (!commit) {
      this.current = listing.commit;
      this.checkedAt = now;
    }
    return this.remember(listing.commit, () => this.build(listing.commit, listing.files));
  }

  /** One pipeline of a commit (default: the newest), or undefined when the commit has none there. */
  async pipeline(
    path: string,
    commit?: string,
  ): Promise<{ commit: string; entry: PipelineEntry | undefined }> {
    const snap = await this.snapshot(commit);
    return { commit: snap.commit, entry: snap.pipelines.get(normalize(path)) };
  }

  /**
   * One pipeline of a commit read for a run with `parameters`: uses replaced by the values, a
   * required parameter without one an error, a template rendered with them. The last few are
   * remembered; a pipeline without template or required parameter, given none, is the listed one.
   */
  async forRun(
    path: string,
    commit: string | undefined,
    parameters: Readonly<Record<string, unknown>>,
  ): Promise<{ commit: string; entry: PipelineEntry | undefined; result?: LoadResult }> {
    const got = await this.pipeline(path, commit);
    const { entry } = got;
    if (!entry?.source) return { ...got, result: entry?.result };
    const required = (entry.result.pipeline?.parameters ?? []).some((p) => p.default === undefined);
    if (
      !entry.source.template &&
      !entry.templates?.length &&
      !required &&
      Object.keys(parameters).length === 0
    )
      return { ...got, result: entry.result };
    const key = `${got.commit}:${entry.path}:${JSON.stringify(Object.entries(parameters).sort())}`;
    let result = this.runReads.get(key);
    if (!result) {
      result = checkTemplates(
        loadSource(entry.source, entry.path, parameters, Boolean(entry.templates?.length)),
        entry.path,
        entry.templates,
        entry.templateProblems,
      );
      this.runReads.set(key, result);
      if (this.runReads.size > 16) this.runReads.delete(this.runReads.keys().next().value!);
    }
    return { ...got, result };
  }

  /** The repository moved: serve `commit` from now on and parse it ahead of the next request. */
  noteSynced(commit: string): Promise<void> {
    this.current = commit;
    this.checkedAt = this.options.now?.() ?? Date.now();
    return this.snapshot(commit).then(
      () => undefined,
      () => undefined,
    );
  }

  private remember(commit: string, build: () => Promise<Snapshot>): Promise<Snapshot> {
    const existing = this.snapshots.get(commit);
    if (existing) return existing;
    const promise = build();
    this.snapshots.set(commit, promise);
    promise.catch(() => this.snapshots.delete(commit));
    while (this.snapshots.size > this.keepCommits) {
      const oldest = this.snapshots.keys().next().value as string;
      if (oldest === commit || oldest === this.current) break;
      this.snapshots.delete(oldest);
    }
    return promise;
  }

  private async build(commit: string, files: readonly ListedFile[]): Promise<Snapshot> {
    const pipelines = new Map<string, PipelineEntry>();
    const toRead: string[] = [];
    // A directory with a `main.yml.jinja2` is a templated pipeline; the template wins over a
    // `main.yml` beside it, as the original's rendering overwrote it.
    const templates = new Set(
      files.filter((f) => isMainFile(f.path, templateSuffix)).map((f) => pipelineDir(f.path)),
    );
    for (const f of files) {
      const template = isMainFile(f.path, templateSuffix);
      if (!template && !isMainFile(f.path, "")) continue;
      const path = pipelineDir(f.path);
      if (!template && templates.has(path)) continue;
      if (f.symlink) {
        pipelines.set(
          path,
          invalid(
            path,
            f.path,
            "main.yml is a symbolic link; a pipeline must be a regular file in the repository",
          ),
        );
      } else if (f.size > maxPipelineBytes) {
        pipelines.set(
          path,
          invalid(path, f.path, `main.yml is ${f.size} bytes; the limit is ${maxPipelineBytes}`),
        );
      } else {
        toRead.push(f.path);
      }
    }
    // Each pipeline's other templates (at any depth under its directory): read once per commit.
    const others = new Map<string, { templates: ListedFile[]; problems: Problem[] }>();
    const allTemplates = templatesUnder(files, ".");
    const mainReads = new Set(toRead);
    const templateReads = new Set<string>();
    if (allTemplates.length > 0) {
      for (const path of mainReads.size > 0 ? new Set(toRead.map(pipelineDir)) : []) {
        const mine = { templates: [] as ListedFile[], problems: [] as Problem[] };
        // Its own main.yml.jinja2 is read as the pipeline; every other template is checked.
        const own = repoPathOf(path, `main.yml${templateSuffix}`);
        for (const f of templatesUnder(allTemplates, path)) {
          if (f.path === own) continue;
          if (f.symlink) {
            mine.problems.push(
              templateProblem(
                f.path,
                "the template is a symbolic link; templates must be regular files",
              ),
            );
          } else if (f.size > maxTemplateBytes) {
            mine.problems.push(
              templateProblem(
                f.path,
                `the template is ${f.size} bytes; the limit is ${maxTemplateBytes}`,
              ),
            );
          } else {
            mine.templates.push(f);
            if (!mainReads.has(f.path)) templateReads.add(f.path);
          }
        }
        if (mine.templates.length + mine.problems.length > 0) others.set(path, mine);
      }
    }
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const read =
      toRead.length + templateReads.size > 0
        ? await this.source.readFiles(commit, [...toRead, ...templateReads])
        : [];
    const contents = new Map(read.map((f) => [f.path, f.content]));
    for (const file of read.slice(0, toRead.length)) {
      const path = pipelineDir(file.path);
      let text: string;
      try {
        text = decoder.decode(file.content);
      } catch {
        pipelines.set(path, invalid(path, file.path, `${baseName(file.path)} is not UTF-8 text`));
        continue;
      }
      const source = { file: file.path, text, template: file.path.endsWith(templateSuffix) };
      const mine = others.get(path);
      const templates = mine?.templates.map((f) => ({
        path: relativeToPipeline(path, f.path)!,
        content: contents.get(f.path) ?? new Uint8Array(),
      }));
      const result = checkTemplates(
        loadSource(source, path, undefined, Boolean(templates?.length)),
        path,
        templates,
        mine?.problems,
      );
      pipelines.set(path, {
        path,
        name: result.pipeline?.name ?? "",
        taskCount: result.pipeline?.tasks.length ?? 0,
        valid: result.valid,
        problems: result.problems,
        result,
        source,
        ...(templates?.length ? { templates } : {}),
        ...(mine?.problems.length ? { templateProblems: mine.problems } : {}),
      });
    }
    const sorted = new Map([...pipelines.entries()].sort(([a], [b]) => a.localeCompare(b)));
    return { commit, pipelines: sorted };
  }
}

function invalid(path: string, file: string, message: string): PipelineEntry {
  const problems: Problem[] = [{ severity: "error", file, line: 0, column: 0, message }];
  return {
    path,
    name: "",
    taskCount: 0,
    valid: false,
    problems,
    result: { valid: false, problems, parameters: {} },
  };
}

function templateProblem(file: string, message: string): Problem {
  return { severity: "error", file, line: 0, column: 0, message };
}

/**
 * A pipeline's read with its directory's other templates checked: rendered with the run's context
 * (its parameters, `name` defaulting to the directory's name) as repo-sync will render them, so a
 * template that does not render refuses the run before it starts, at its line and column.
 */
function checkTemplates(
  result: LoadResult,
  path: string,
  templates: readonly TemplateSource[] | undefined,
  fixed: readonly Problem[] | undefined,
): LoadResult {
  if (!templates?.length && !fixed?.length) return result;
  const { problems } = renderTemplates(
    templates ?? [],
    templateContext(path, result.parameters),
    (p) => repoPathOf(path, p),
  );
  const all = [...(fixed ?? []), ...problems];
  if (all.length === 0) return result;
  return { ...result, valid: false, problems: [...result.problems, ...all] };
}

/** Whether a repository path is a pipeline's `main.yml` (suffix "") or its template. */
function isMainFile(path: string, suffix: string): boolean {
  const name = `main.yml${suffix}`;
  return path === name || path.endsWith(`/${name}`);
}

/** The pipeline directory of a `main.yml` or `main.yml.jinja2` path (`.` at the root). */
function pipelineDir(file: string): string {
  const slash = file.lastIndexOf("/");
  return slash === -1 ? "." : file.slice(0, slash);
}

const baseName = (file: string): string => file.slice(file.lastIndexOf("/") + 1);

/**
 * Reads a pipeline's source for a run with `parameters` (undefined: on its own). A template is
 * rendered first with the parameters as its context — `name` defaults to the directory's name, as
 * in the original — and its problems point into the template. `templated`: the directory holds
 * other templates, so values it does not declare are still their context.
 */
export function loadSource(
  source: { file: string; text: string; template: boolean },
  path: string,
  parameters: Readonly<Record<string, unknown>> | undefined,
  templated = false,
): LoadResult {
  if (!source.template && !templated)
    return loadPipeline(source.text, { file: source.file, path, parameters });
  if (!source.template) {
    const result = loadPipeline(source.text, {
      file: source.file,
      path,
      parameters: parameters ?? {},
      allowUndeclared: true,
    });
    return {
      ...result,
      parameters: { ...(parameters as Record<string, never>), ...result.parameters },
    };
  }
  const rendered = renderTemplate(source.text, templateContext(path, parameters), source.file);
  if (!rendered.ok) return { valid: false, problems: [rendered.problem], parameters: {} };
  const result = loadPipeline(rendered.text, {
    file: source.file,
    path,
    parameters: parameters ?? {},
    allowUndeclared: true,
  });
  // A template's context is the run's parameters, declared or not.
  return {
    ...result,
    problems: result.problems.map(rendered.locate),
    parameters: { ...(parameters as Record<string, never>), ...result.parameters },
  };
}

function normalize(path: string): string {
  const trimmed = path.replace(/^\.?\/+/, "").replace(/\/+$/, "");
  return trimmed === "" ? "." : trimmed;
}

/** Validates files that are not pushed yet (`ValidatePipeline`, `odin push`'s server-side check). */
export function validateFiles(
  pipelinePath: string,
  files: readonly { path: string; content: Uint8Array }[],
  parameters?: Readonly<Record<string, unknown>>,
): LoadResult {
  const template = files.find((f) => f.path === `main.yml${templateSuffix}`);
  const main = template ?? files.find((f) => f.path === "main.yml");
  const file = `${pipelinePath === "." ? "" : `${pipelinePath}/`}${main?.path ?? "main.yml"}`;
  if (!main) {
    return {
      valid: false,
      problems: [
        { severity: "error", file, line: 0, column: 0, message: "no main.yml among the files" },
      ],
      parameters: {},
    };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(main.content);
  } catch {
    return {
      valid: false,
      problems: [
        { severity: "error", file, line: 0, column: 0, message: `${main.path} is not UTF-8 text` },
      ],
      parameters: {},
    };
  }
  const others = templatesUnder(
    files.filter((f) => f !== template),
    ".",
  );
  return checkTemplates(
    loadSource(
      { file, text, template: template !== undefined },
      pipelinePath,
      parameters,
      others.length > 0,
    ),
    pipelinePath,
    others,
    undefined,
  );
}
