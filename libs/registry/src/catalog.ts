import { loadPipeline, type LoadResult, type Problem } from "@odin/pipeline-spec";

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
    for (const f of files) {
      if (f.path !== "main.yml" && !f.path.endsWith("/main.yml")) continue;
      const path = f.path === "main.yml" ? "." : f.path.slice(0, -"/main.yml".length);
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
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const read = toRead.length > 0 ? await this.source.readFiles(commit, toRead) : [];
    for (const file of read) {
      const path = file.path === "main.yml" ? "." : file.path.slice(0, -"/main.yml".length);
      let text: string;
      try {
        text = decoder.decode(file.content);
      } catch {
        pipelines.set(path, invalid(path, file.path, "main.yml is not UTF-8 text"));
        continue;
      }
      const result = loadPipeline(text, { file: file.path, path });
      pipelines.set(path, {
        path,
        name: result.pipeline?.name ?? "",
        taskCount: result.pipeline?.tasks.length ?? 0,
        valid: result.valid,
        problems: result.problems,
        result,
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
    result: { valid: false, problems },
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
): LoadResult {
  const main = files.find((f) => f.path === "main.yml");
  const file = pipelinePath === "." ? "main.yml" : `${pipelinePath}/main.yml`;
  if (!main) {
    return {
      valid: false,
      problems: [
        { severity: "error", file, line: 0, column: 0, message: "no main.yml among the files" },
      ],
    };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(main.content);
  } catch {
    return {
      valid: false,
      problems: [
        { severity: "error", file, line: 0, column: 0, message: "main.yml is not UTF-8 text" },
      ],
    };
  }
  return loadPipeline(text, { file, path: pipelinePath });
}
