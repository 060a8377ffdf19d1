import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  rmdir,
  symlink,
  unlink,
  writeFile,
} from "node:fs/promises";
import { dirname, join, posix, resolve, sep } from "node:path";
import { loadPipeline, type Problem } from "@odin/pipeline-spec";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@odin/service-kit";
import { extractCommit, git, gitRaw, GitError, Mutex, redactUrl } from "./git.js";
import { isCommitId, pipelinePath, safeRelativePath, UnsafePathError } from "./paths.js";
import { planRender, writeRender, type RenderPlan, type TreeEntry } from "./render.js";

/** How to reach and lay out the pipelines repository. */
export interface RepositoryOptions {
  /** Any URL or path `git clone` accepts. May carry credentials; they are never shown. */
  remote: string;
  /** Branch to follow; default: the remote's default branch. */
  branch?: string;
  /** Directory holding the working clone and the per-commit checkouts (`ROOT_PATH` base). */
  rootPath: string;
  /** Committer identity of Odin itself (authors are the callers). */
  committer?: { name: string; email: string };
  /** How many recent unheld checkouts to keep besides the current one. */
  keepCheckouts?: number;
  /** Limit for network git operations. */
  networkTimeoutMs?: number;
  /** Largest file accepted by Push and returned by ReadFiles. */
  maxFileBytes?: number;
  /** Called after the served commit changes. */
  onSynced?: (event: SyncedEvent) => Promise<void> | void;
  /** Clock, for tests. */
  now?: () => Date;
  /** Runs before every fetch (embedded mode commits a local directory's edits to its remote here). */
  prepareRemote?: () => Promise<void>;
  /**
   * With several replicas on one shared volume: who may write. Without it this process always
   * writes (one replica, embedded mode).
   */
  lease?: WriteLease;
  /**
   * The remote is a non-bare checkout (someone's own work tree, in embedded mode): a push updates
   * its branch and its files, as a push to it with `receive.denyCurrentBranch=updateInstead`
   * does, and is refused while that work tree has uncommitted changes.
   */
  pushToCheckout?: boolean;
}

/**
 * Leadership as the repository sees it. Only the leader fetches, pushes, switches the served
 * commit and prunes. The served commit is switched by `publish`, a write the store itself refuses
 * once the lease is lost; `fence` runs right before each write outside the store (fetch, push,
 * prune) and throws when the lease was lost.
 */
export interface WriteLease {
  /** Whether this replica leads now. */
  isLeader(): boolean;
  /** Throws (an UnavailableError) unless this replica still holds the lease in the store. */
  fence(): Promise<void>;
  /**
   * Records `commit` as the served one, conditioned on this replica still holding the lease (a
   * compare-and-set in the store): throws an UnavailableError, and records nothing, otherwise.
   */
  publish?(commit: string): Promise<void>;
  /** The served commit as the leader last recorded it ("" when none): what a follower serves. */
  servedCommit?(): Promise<string>;
}

/** A write was asked of a replica that does not lead; the caller forwards it to the leader. */
export class NotLeadingError extends UnavailableError {}

/** The served commit moved. */
export interface SyncedEvent {
  remote: string;
  branch: string;
  commit: string;
  previousCommit: string;
  time: Date;
}

/** What is served and how the last sync went. */
export interface RepoStatus {
  remote: string;
  branch: string;
  commit: string;
  lastSyncTime?: Date;
  lastError?: string;
  lastErrorTime?: Date;
}

/** A file of a commit. */
export interface FileEntry {
  path: string;
  size: number;
  /** Symbolic links are listed so pipelines made of them can be reported, but never read. */
  symlink: boolean;
}

/** A commit of the followed branch, as ListCommits gives it. */
export interface CommitInfo {
  sha: string;
  author: Author;
  authorTime: Date;
  /** The first line of its message. */
  subject: string;
  /** Files it added, changed or deleted against its first parent, repository-relative. */
  changedPaths: string[];
}

/** The commits of a range of the branch's history (`ListCommits`). */
export interface CommitRange {
  /** The newest commit of the range, resolved. */
  until: string;
  /** Oldest first. */
  commits: CommitInfo[];
  /** Older commits were left out to keep to the limit. */
  truncated: boolean;
  /** `since` is not an ancestor of `until` (a force-push rewrote the history). */
  rewritten: boolean;
  /** `since` is not in the repository; only `until` is listed. */
  sinceUnknown: boolean;
}

/** What a holder of a checkout asks for besides the checkout (AcquireCheckout). */
export interface AcquireOptions {
  /**
   * The holder's pipeline directory: when it holds `*.jinja2` files, it is laid out for the
   * holder with the templates rendered (`workPath`).
   */
  pipeline?: string;
  /** The templates' context: the run's parameters (`name` defaults to the directory's name). */
  parameters?: Readonly<Record<string, unknown>>;
  /** The holder's attempt: a release for an earlier one leaves the hold. */
  attempt?: number;
}

/** A held checkout, and the holder's rendered pipeline directory when its pipeline has templates. */
export interface AcquiredCheckout {
  commit: string;
  path: string;
  /** The rendered pipeline directory (the run's `WORK_PATH`). */
  workPath?: string;
  /** `sha256:` of the rendered directory's content. */
  workDigest?: string;
}

/** A caller of Push, recorded as the commit's author. */
export interface Author {
  name: string;
  email: string;
}

/** What `odin push` sends. */
export interface PushInput {
  pipeline: string;
  files: readonly { path: string; content: Uint8Array }[];
  replace: boolean;
  message?: string;
  requestId: string;
  author: Author;
}

const requestTrailer = "Odin-Request-Id";
const maxPushAttempts = 5;

/**
 * The pipelines repository: a working clone that follows one branch of a remote, and an immutable
 * checkout per served commit under `<root>/commits/<sha>`, switched atomically through the
 * `<root>/current` link. Git commands on the clone never run concurrently.
 */
export class PipelineRepository {
  private readonly lock = new Mutex();
  private readonly repoDir: string;
  private readonly commitsDir: string;
  private readonly holdsDir: string;
  private readonly rendersDir: string;
  private branch: string;
  private commit = "";
  private lastSyncTime: Date | undefined;
  private lastError: string | undefined;
  private lastErrorTime: Date | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: RepositoryOptions) {
    const root = resolve(options.rootPath);
    this.repoDir = join(root, ".odin", "repo");
    this.commitsDir = join(root, "commits");
    this.holdsDir = join(root, ".odin", "holds");
    this.rendersDir = join(root, "renders");
    this.branch = options.branch ?? "";
  }

  /**
   * Opens the repository, cloning it on first use and serving what was last synced. A remote that
   * cannot be reached is not fatal: the error shows in `status()` and syncing is retried.
   */
  static async open(options: RepositoryOptions): Promise<PipelineRepository> {
    const repo = new PipelineRepository(options);
    await mkdir(repo.commitsDir, { recursive: true });
    await mkdir(repo.holdsDir, { recursive: true });
    try {
      // A follower serves what the leader last served; it never fetches.
      if (!repo.leads()) throw new NotLeadingError("following");
      await repo.sync();
    } catch {
      // Recorded in status; the last good commit (if any) keeps being served.
      await repo.lock.run(() => repo.recoverServedCommit());
    }
    return repo;
  }

  /** Syncs every `intervalMs` until `close()` (only while this replica leads). */
  startPeriodicSync(intervalMs: number): void {
    this.stopPeriodicSync();
    this.timer = setInterval(() => {
      if (this.leads()) this.sync().catch(() => undefined);
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops periodic syncing. */
  stopPeriodicSync(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Where the checkout of a commit lives (it may not exist yet; see `acquireCheckout`). */
  checkoutPath(commit: string): string {
    return join(this.commitsDir, commit);
  }

  /** The commit currently served ("" before the first successful sync). */
  currentCommit(): string {
    return this.commit;
  }

  /** A follower catches up with the commit the leader serves (the `current` link); a no-op when leading. */
  async refresh(): Promise<void> {
    if (this.leads()) return;
    // With a lease, the commit recorded in it: a deposed leader's late switch of the `current`
    // link never reaches followers.
    const lease = this.options.lease;
    const sha =
      (lease?.servedCommit ? await lease.servedCommit() : "") || (await this.readCurrentLink());
    if (sha !== "") this.commit = sha;
  }

  /** What is served and how the last sync went. */
  status(): RepoStatus {
    const status: RepoStatus = {
      remote: redactUrl(this.options.remote),
      branch: this.branch,
      commit: this.commit,
    };
    if (this.lastSyncTime) status.lastSyncTime = this.lastSyncTime;
    if (this.lastError !== undefined) status.lastError = this.lastError;
    if (this.lastErrorTime) status.lastErrorTime = this.lastErrorTime;
    return status;
  }

  /** Fetches the remote and serves its newest commit. */
  sync(): Promise<{ commit: string; previousCommit: string; changed: boolean }> {
    return this.lock.run(async () => {
      this.requireLead("sync");
      try {
        const result = await this.fetchAndServe();
        this.lastSyncTime = this.now();
        this.lastError = undefined;
        this.lastErrorTime = undefined;
        return result;
      } catch (err) {
        this.lastError = err instanceof Error ? redactUrl(err.message) : String(err);
        this.lastErrorTime = this.now();
        throw new UnavailableError(
          `cannot sync with ${redactUrl(this.options.remote)}: ${this.lastError}`,
          { cause: err },
        );
      }
    });
  }

  /** Lists the files of a commit (default: the served one) under a directory prefix. */
  async listFiles(
    commit: string | undefined,
    prefix = "",
  ): Promise<{ commit: string; files: FileEntry[] }> {
    const sha = await this.resolveCommit(commit);
    const under = prefix === "" ? "" : this.safe(() => safeRelativePath(prefix, "path prefix"));
    // Reads touch only the object store, never the working tree, so they need not wait for the lock.
    const out = await gitRaw(
      ["ls-tree", "-r", "-l", "-z", "--full-tree", sha, ...(under ? ["--", under] : [])],
      {
        cwd: this.repoDir,
      },
    );
    const files: FileEntry[] = [];
    for (const record of out.toString("utf8").split("\0")) {
      if (record === "") continue;
      // "<mode> <type> <object> <size>\t<path>"
      const tab = record.indexOf("\t");
      const [mode, type, , size] = record.slice(0, tab).split(/\s+/);
      if (type !== "blob") continue;
      files.push({ path: record.slice(tab + 1), size: Number(size), symlink: mode === "120000" });
    }
    return { commit: sha, files };
  }

  /** Reads files of a commit (default: the served one). Paths are relative to the repository root. */
  async readFiles(
    commit: string | undefined,
    paths: readonly string[],
  ): Promise<{ commit: string; files: { path: string; content: Buffer }[] }> {
    const sha = await this.resolveCommit(commit);
    const wanted = paths.map((p) => this.safe(() => safeRelativePath(p)));
    if (wanted.length === 0) return { commit: sha, files: [] };
    // One `git cat-file --batch` for all paths: "<sha>:<path>" in, "<oid> <type> <size>\n<bytes>\n" out.
    const check = await git(["cat-file", "--batch-check=%(objecttype) %(objectsize)"], {
      cwd: this.repoDir,
      input: wanted.map((p) => `${sha}:${p}`).join("\n") + "\n",
    }).catch(() => "");
    const lines = check.split("\n");
    const modes = await this.modesOf(sha, wanted);
    wanted.forEach((path, i) => {
      const line = lines[i] ?? "";
      if (line.endsWith("missing") || !line.startsWith("blob")) {
        throw new NotFoundError(`${path} does not exist at commit ${sha.slice(0, 12)}`);
      }
      const size = Number(line.split(" ")[1]);
      if (modes.get(path) === "120000") {
        throw new FailedPreconditionError(
          `${path} is a symbolic link; Odin reads only regular files from the repository`,
        );
      }
      if (size > this.maxFileBytes) {
        throw new FailedPreconditionError(
          `${path} is ${size} bytes; the limit is ${this.maxFileBytes}`,
        );
      }
    });
    const batch = await gitRaw(["cat-file", "--batch"], {
      cwd: this.repoDir,
      input: wanted.map((p) => `${sha}:${p}`).join("\n") + "\n",
    });
    const files: { path: string; content: Buffer }[] = [];
    let at = 0;
    for (const path of wanted) {
      const eol = batch.indexOf(10, at);
      const header = batch.subarray(at, eol).toString("utf8").split(" ");
      const size = Number(header[2]);
      files.push({ path, content: Buffer.from(batch.subarray(eol + 1, eol + 1 + size)) });
      at = eol + 1 + size + 1;
    }
    return { commit: sha, files };
  }

  /**
   * Writes a pipeline directory's files, commits them with the caller as author and pushes. When
   * the remote moved meanwhile, the change is replayed on the new head and pushed again. A retry
   * with the same request id returns the commit already made.
   */
  async push(input: PushInput): Promise<{ commit: string; changed: boolean }> {
    const dir = this.safe(() => pipelinePath(input.pipeline));
    const files = input.files.map((f) => ({
      path: this.safe(() => safeRelativePath(f.path, "file path")),
      content: f.content,
    }));
    const seen = new Set<string>();
    for (const f of files) {
      if (seen.has(f.path)) throw new InvalidArgumentError(`file ${f.path} is given twice`);
      seen.add(f.path);
      if (f.content.byteLength > this.maxFileBytes) {
        throw new InvalidArgumentError(
          `${f.path} is ${f.content.byteLength} bytes; the limit is ${this.maxFileBytes}`,
        );
      }
    }
    if (input.replace && !files.some((f) => f.path === "main.yml")) {
      throw new InvalidArgumentError(
        `a pipeline directory needs a main.yml; ${dir} has none in this push`,
      );
    }
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(input.requestId)) {
      throw new InvalidArgumentError(
        "request_id must be 1-128 letters, digits, '.', '_', ':' or '-' (a UUID works)",
      );
    }
    return this.lock.run(async () => {
      this.requireLead("push");
      for (let attempt = 1; ; attempt++) {
        const base = await this.fetchBranch();
        const done = base ? await this.findRequest(input.requestId) : undefined;
        if (done) return { commit: done, changed: false };
        await this.fence();
        await this.resetTo(base);
        await this.writePipeline(dir, files, input.replace);
        if (!(await this.hasStagedChanges())) {
          await this.resetTo(base);
          return { commit: base, changed: false };
        }
        const message = `${input.message?.trim() || `Update pipeline ${dir}`}\n\n${requestTrailer}: ${input.requestId}\n`;
        const committer = this.options.committer ?? { name: "Odin", email: "odin@localhost" };
        await git(
          [
            "-c",
            `user.name=${committer.name}`,
            "-c",
            `user.email=${committer.email}`,
            "commit",
            "--quiet",
            "--no-verify",
            `--author=${sanitizeIdent(input.author.name)} <${sanitizeIdent(input.author.email)}>`,
            "-F",
            "-",
          ],
          { cwd: this.repoDir, input: message },
        );
        const commit = await git(["rev-parse", "HEAD"], { cwd: this.repoDir });
        // The remote itself refuses a push that is not a fast-forward, so even a stale leader
        // cannot overwrite a newer head; the fence keeps it from pushing at all.
        await this.fence();
        try {
          await git(["push", "--quiet", "origin", `HEAD:refs/heads/${this.branch}`], {
            cwd: this.repoDir,
            timeoutMs: this.networkTimeout,
          });
        } catch (err) {
          const rejected =
            err instanceof GitError &&
            /rejected|fetch first|non-fast-forward|stale info/i.test(err.stderr);
          const dirtyCheckout =
            rejected &&
            this.options.pushToCheckout === true &&
            /working directory|work tree|unstaged|uncommitted|not clean/i.test(err.stderr);
          if (rejected && !dirtyCheckout && attempt < maxPushAttempts) continue;
          await this.resetTo(base).catch(() => undefined);
          if (dirtyCheckout) {
            throw new FailedPreconditionError(
              `not pushed: ${redactUrl(this.options.remote)} has uncommitted changes, and a push commits there and updates its files — commit or stash them, then push again`,
              { cause: err },
            );
          }
          if (rejected) {
            throw new FailedPreconditionError(
              `the remote branch ${this.branch} kept moving; gave up after ${maxPushAttempts} attempts — push again`,
              { cause: err },
            );
          }
          throw new UnavailableError(
            `cannot push to ${redactUrl(this.options.remote)}: ${(err as Error).message}`,
            { cause: err },
          );
        }
        await this.serve(commit).catch(() => undefined);
        return { commit, changed: true };
      }
    });
  }

  /**
   * The commits after `since` up to `until` (default: the served commit), oldest first, along the
   * first parents (a merge is one commit, its changes against its first parent), each with its
   * author and the files it changed. At most `max` of them: the newest.
   */
  async listCommits(since: string, until: string | undefined, max = 1000): Promise<CommitRange> {
    if (since !== "" && !isCommitId(since))
      throw new InvalidArgumentError(`since "${since}" is not a full commit id (40 hex digits)`);
    if (!Number.isSafeInteger(max) || max < 1 || max > 100_000)
      throw new InvalidArgumentError(`max_commits must be from 1 to 100000, not ${max}`);
    const head = await this.resolveCommit(until);
    let sinceUnknown = false;
    let rewritten = false;
    if (since !== "") {
      const type = await git(["cat-file", "-t", since], { cwd: this.repoDir }).catch(() => "");
      sinceUnknown = type !== "commit";
      if (!sinceUnknown)
        rewritten = !(await git(["merge-base", "--is-ancestor", since, head], {
          cwd: this.repoDir,
        }).then(
          () => true,
          () => false,
        ));
    }
    const range = since === "" || sinceUnknown ? ["-n", "1", head] : [head, `^${since}`];
    // One record per commit: \x01 sha \0 author \0 email \0 time \0 subject \0 \n path \0 path \0 …
    const out = await gitRaw(
      [
        "log",
        "-z",
        "--first-parent",
        "--diff-merges=first-parent",
        "--name-only",
        "--no-renames",
        "--format=%x01%H%x00%an%x00%ae%x00%at%x00%s",
        `--max-count=${max + 1}`,
        ...range,
        "--",
      ],
      { cwd: this.repoDir },
    );
    const commits: CommitInfo[] = [];
    // \x01 starts a record only before a commit id: a subject holding one does not split it.
    // eslint-disable-next-line no-control-regex
    for (const record of out.toString("utf8").split(/\x01(?=[0-9a-f]{40}\0)/)) {
      if (record === "") continue;
      const [sha, name, email, time, subject, ...rest] = record.split("\0");
      commits.push({
        sha: sha!,
        author: { name: name ?? "", email: email ?? "" },
        authorTime: new Date(Number(time) * 1000),
        subject: subject ?? "",
        changedPaths: rest.map((p) => p.replace(/^\n/, "")).filter((p) => p !== ""),
      });
    }
    const truncated = commits.length > max;
    // git lists newest first; the oldest beyond the limit is the one left out.
    return {
      until: head,
      commits: commits.slice(0, max).reverse(),
      truncated,
      rewritten,
      sinceUnknown,
    };
  }

  /**
   * Makes sure a commit's checkout exists and records `holder` as using it (so it is kept). With
   * a pipeline whose directory holds templates, also lays out the holder's rendered directory
   * (kept as it is when it exists: a retry sees the files its run saw). A template that does not
   * render is refused before anything is held.
   */
  async acquireCheckout(
    commit: string | undefined,
    holder: string,
    options: AcquireOptions = {},
  ): Promise<AcquiredCheckout> {
    const sha = await this.resolveCommit(commit);
    const name = this.safe(() => {
      if (!/^[A-Za-z0-9._-]{1,200}$/.test(holder))
        throw new UnsafePathError(`holder "${holder}" must be letters, digits, ".", "_" or "-"`);
      return holder;
    });
    const attempt = options.attempt ?? 0;
    if (!Number.isSafeInteger(attempt) || attempt < 0)
      throw new InvalidArgumentError(`attempt must be a whole number, not ${attempt}`);
    // Planned from git objects, before any hold: a refusal leaves nothing behind.
    const plan =
      options.pipeline !== undefined && options.pipeline !== ""
        ? await this.renderPlanOf(sha, options.pipeline, options.parameters ?? {})
        : undefined;
    return this.lock.run(async () => {
      // The hold first: the leader's prune checks holds again after setting a checkout aside.
      await mkdir(join(this.holdsDir, sha), { recursive: true });
      await writeFile(join(this.holdsDir, sha, name), String(attempt));
      await this.materialize(sha);
      const acquired: AcquiredCheckout = { commit: sha, path: this.checkoutPath(sha) };
      if (plan) {
        const dest = this.renderPath(sha, name);
        if (!(await exists(dest)))
          await writeRender(plan, this.checkoutPath(sha), dest, setReadOnly, makeWritable);
        acquired.workPath = dest;
        acquired.workDigest = plan.digest;
      }
      return acquired;
    });
  }

  /** Where a holder's rendered pipeline directory of a commit lives. */
  renderPath(commit: string, holder: string): string {
    return join(this.rendersDir, commit, holder);
  }

  /**
   * Forgets that `holder` uses a commit's checkout and removes its rendered directory; unheld old
   * checkouts are pruned later. With `attempt`, a hold acquired for a later attempt (a retry that
   * came before this release) is left as it is.
   */
  async releaseCheckout(commit: string, holder: string, attempt = 0): Promise<boolean> {
    if (!isCommitId(commit) || !/^[A-Za-z0-9._-]{1,200}$/.test(holder)) return false;
    return this.lock.run(async () => {
      const hold = join(this.holdsDir, commit, holder);
      if (attempt > 0) {
        const held = Number(await readFile(hold, "utf8").catch(() => "0")) || 0;
        if (held > attempt) return false;
      }
      try {
        await unlink(hold);
      } catch {
        return false;
      }
      await this.removeRender(commit, holder);
      // Followers leave pruning to the leader (its next sync or release).
      if (this.leads()) await this.prune().catch(() => undefined);
      return true;
    });
  }

  /** Stops background work. */
  close(): void {
    this.stopPeriodicSync();
  }

  // ---------------------------------------------------------------------------------------------

  private get maxFileBytes(): number {
    return this.options.maxFileBytes ?? 16 * 1024 * 1024;
  }

  private get networkTimeout(): number {
    return this.options.networkTimeoutMs ?? 60_000;
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private leads(): boolean {
    return this.options.lease?.isLeader() ?? true;
  }

  private requireLead(what: string): void {
    if (!this.leads())
      throw new NotLeadingError(`this repo-sync replica does not lead; ${what} goes to the leader`);
  }

  private async fence(): Promise<void> {
    await this.options.lease?.fence();
  }

  private safe<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof UnsafePathError)
        throw new InvalidArgumentError(err.message, { cause: err });
      throw err;
    }
  }

  private async resolveCommit(commit: string | undefined): Promise<string> {
    if (commit === undefined || commit === "") {
      await this.refresh();
      if (this.commit === "") {
        throw new UnavailableError(
          `no commit has been synced from ${redactUrl(this.options.remote)} yet${this.lastError ? `: ${this.lastError}` : ""}`,
        );
      }
      return this.commit;
    }
    if (!isCommitId(commit))
      throw new InvalidArgumentError(`"${commit}" is not a full commit id (40 hex digits)`);
    const type = await git(["cat-file", "-t", commit], { cwd: this.repoDir }).catch(() => "");
    if (type !== "commit")
      throw new NotFoundError(`commit ${commit} is not in the pipelines repository`);
    return commit;
  }

  private async ensureClone(): Promise<void> {
    try {
      await lstat(join(this.repoDir, ".git"));
      await this.clearStaleLocks();
    } catch {
      await rm(this.repoDir, { recursive: true, force: true });
      await mkdir(dirname(this.repoDir), { recursive: true });
      await git(["clone", "--quiet", "--no-checkout", this.options.remote, this.repoDir], {
        cwd: dirname(this.repoDir),
        timeoutMs: this.networkTimeout,
      });
    }
    if (this.options.pushToCheckout) {
      // Set on Odin's own clone, so the user's repository configuration is left as it is.
      await git(
        [
          "config",
          "remote.origin.receivepack",
          "git -c receive.denyCurrentBranch=updateInstead receive-pack",
        ],
        { cwd: this.repoDir },
      );
    }
    if (this.branch === "") {
      const head = await git(["ls-remote", "--symref", "origin", "HEAD"], {
        cwd: this.repoDir,
        timeoutMs: this.networkTimeout,
      });
      this.branch = /^ref: refs\/heads\/(\S+)\s+HEAD/m.exec(head)?.[1] ?? "main";
    }
  }

  /** Fetches the followed branch; resolves to its head, or "" when the remote branch is empty. */
  private async fetchBranch(): Promise<string> {
    await this.options.prepareRemote?.();
    await this.fence();
    await this.ensureClone();
    try {
      await git(
        [
          "fetch",
          "--quiet",
          "--prune",
          "origin",
          `+refs/heads/${this.branch}:refs/remotes/origin/${this.branch}`,
        ],
        {
          cwd: this.repoDir,
          timeoutMs: this.networkTimeout,
        },
      );
    } catch (err) {
      if (err instanceof GitError && /couldn't find remote ref/i.test(err.stderr)) return "";
      throw err;
    }
    return git(["rev-parse", `refs/remotes/origin/${this.branch}`], { cwd: this.repoDir });
  }

  private async fetchAndServe(): Promise<{
    commit: string;
    previousCommit: string;
    changed: boolean;
  }> {
    const head = await this.fetchBranch();
    if (head === "") {
      throw new Error(
        `branch ${this.branch} does not exist on the remote yet; push a pipeline to create it`,
      );
    }
    const previousCommit = this.commit;
    await this.serve(head);
    return { commit: head, previousCommit, changed: head !== previousCommit };
  }

  /** Materializes a commit's checkout, points `current` at it, prunes, and announces the change. */
  private async serve(commit: string): Promise<void> {
    const previousCommit = this.commit || (await this.readCurrentLink());
    await this.materialize(commit);
    // The switch itself is recorded by compare-and-set on the lease: refused once it is lost.
    const lease = this.options.lease;
    if (lease?.publish) await lease.publish(commit);
    else await this.fence();
    const link = join(dirname(this.commitsDir), "current");
    const tmp = `${link}.tmp-${process.pid}`;
    await rm(tmp, { force: true });
    await symlink(posix.join("commits", commit), tmp);
    await rename(tmp, link);
    this.commit = commit;
    await this.prune();
    if (commit !== previousCommit) {
      await this.options.onSynced?.({
        remote: redactUrl(this.options.remote),
        branch: this.branch,
        commit,
        previousCommit,
        time: this.now(),
      });
    }
  }

  /**
   * Lock files git left when it was killed mid-operation (the previous leader's pod died) would
   * block every later command; they are removed once older than any live git command here.
   */
  private async clearStaleLocks(): Promise<void> {
    const gitDir = join(this.repoDir, ".git");
    const candidates = ["index.lock", "HEAD.lock", "packed-refs.lock", "shallow.lock"];
    if (this.branch !== "")
      candidates.push(`refs/remotes/origin/${this.branch}.lock`, `refs/heads/${this.branch}.lock`);
    const staleBefore = Date.now() - this.networkTimeout - 5000;
    for (const name of candidates) {
      const path = join(gitDir, ...name.split("/"));
      const info = await lstat(path).catch(() => undefined);
      if (info !== undefined && info.mtimeMs < staleBefore) await rm(path, { force: true });
    }
  }

  private async readCurrentLink(): Promise<string> {
    try {
      const target = await readlink(join(dirname(this.commitsDir), "current"));
      const sha = target.split("/").pop() ?? "";
      return isCommitId(sha) ? sha : "";
    } catch {
      return "";
    }
  }

  /** After a failed first sync, serve what an earlier run of the service served. */
  private async recoverServedCommit(): Promise<void> {
    const sha = await this.readCurrentLink();
    if (sha === "") return;
    try {
      await lstat(this.checkoutPath(sha));
      this.commit = sha;
    } catch {
      // Nothing usable.
    }
  }

  /** Creates `<root>/commits/<sha>` (read-only) if missing, atomically. */
  private async materialize(commit: string): Promise<void> {
    const dest = this.checkoutPath(commit);
    try {
      await lstat(dest);
      return;
    } catch {
      // Not there yet.
    }
    const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    try {
      await extractCommit(this.repoDir, commit, tmp);
      await removeEscapingLinks(tmp, tmp);
      await setReadOnly(tmp);
      await rename(tmp, dest);
    } catch (err) {
      await makeWritable(tmp).catch(() => undefined);
      await rm(tmp, { recursive: true, force: true });
      // Another replica put the same (immutable) checkout in place first.
      if (await exists(dest)) return;
      throw err;
    }
  }

  /** Removes checkouts that are neither current, held by a run, nor among the newest few. */
  private async prune(): Promise<void> {
    const keep = this.options.keepCheckouts ?? 3;
    const entries = await readdir(this.commitsDir, { withFileTypes: true });
    const candidates: { sha: string; mtime: number }[] = [];
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name.includes(".tmp-") || e.name.includes(".trash-")) continue;
      if (e.name === this.commit) continue;
      const holders = await readdir(join(this.holdsDir, e.name)).catch(() => []);
      if (holders.length > 0) continue;
      const info = await lstat(join(this.commitsDir, e.name));
      candidates.push({ sha: e.name, mtime: info.mtimeMs });
    }
    candidates.sort((a, b) => b.mtime - a.mtime);
    for (const { sha } of candidates.slice(keep)) {
      await this.fence();
      const dir = this.checkoutPath(sha);
      // Set aside, then check the holds again: a follower may have just acquired it (it writes
      // its hold before looking for the checkout, and re-creates one it does not find).
      const aside = `${dir}.trash-${process.pid}`;
      try {
        await rename(dir, aside);
      } catch {
        continue;
      }
      if ((await readdir(join(this.holdsDir, sha)).catch(() => [])).length > 0) {
        await rename(aside, dir).catch(() => undefined);
        continue;
      }
      await makeWritable(aside).catch(() => undefined);
      await rm(aside, { recursive: true, force: true });
      await rm(join(this.holdsDir, sha), { recursive: true, force: true });
    }
    await this.pruneRenders();
  }

  /**
   * Removes rendered directories no hold keeps (their holder released while this process was
   * down, or a checkout was pruned), and temporaries older than any render in progress.
   */
  private async pruneRenders(): Promise<void> {
    const staleBefore = this.now().getTime() - 10 * 60_000;
    for (const sha of await readdir(this.rendersDir).catch(() => [] as string[])) {
      const dir = join(this.rendersDir, sha);
      // Entries before holds: a holder writes its hold before its directory, so a directory
      // listed here whose hold is not listed next is one no hold keeps.
      const entries = await readdir(dir).catch(() => [] as string[]);
      const holders = new Set(await readdir(join(this.holdsDir, sha)).catch(() => [] as string[]));
      for (const entry of entries) {
        const tmp = /^(.+)\.tmp-\d+-(\d+)$/.exec(entry);
        if (tmp ? Number(tmp[2]) < staleBefore : !holders.has(entry)) {
          await this.fence();
          await makeWritable(join(dir, entry)).catch(() => undefined);
          await rm(join(dir, entry), { recursive: true, force: true });
        }
      }
      // Only when empty (a holder may be writing into it): rmdir refuses otherwise.
      await rmdir(dir).catch(() => undefined);
    }
  }

  private async removeRender(commit: string, holder: string): Promise<void> {
    const dir = this.renderPath(commit, holder);
    if (!(await exists(dir))) return;
    await makeWritable(dir).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }

  /** The rendering of a pipeline directory at a commit (see render.ts), read from git. */
  private async renderPlanOf(
    sha: string,
    pipeline: string,
    parameters: Readonly<Record<string, unknown>>,
  ): Promise<RenderPlan | undefined> {
    const dir = pipeline === "." ? "." : this.safe(() => pipelinePath(pipeline));
    const out = await gitRaw(
      ["ls-tree", "-r", "-l", "-z", "--full-tree", sha, ...(dir === "." ? [] : ["--", `${dir}/`])],
      { cwd: this.repoDir },
    );
    const tree: TreeEntry[] = [];
    for (const record of out.toString("utf8").split("\0")) {
      const tab = record.indexOf("\t");
      if (tab === -1) continue;
      const [mode, type, oid, size] = record.slice(0, tab).split(/\s+/);
      if (type !== "blob") continue;
      tree.push({ path: record.slice(tab + 1), mode: mode!, oid: oid!, size: Number(size) });
    }
    return planRender({
      pipeline: dir,
      commit: sha,
      tree,
      parameters,
      read: (oids) => this.readBlobs(oids),
    });
  }

  /** Blobs' contents by object id, in order (one `git cat-file --batch`). */
  private async readBlobs(oids: readonly string[]): Promise<Buffer[]> {
    if (oids.length === 0) return [];
    const batch = await gitRaw(["cat-file", "--batch"], {
      cwd: this.repoDir,
      input: oids.join("\n") + "\n",
    });
    const blobs: Buffer[] = [];
    let at = 0;
    for (let i = 0; i < oids.length; i++) {
      const eol = batch.indexOf(10, at);
      const size = Number(batch.subarray(at, eol).toString("utf8").split(" ")[2]);
      blobs.push(Buffer.from(batch.subarray(eol + 1, eol + 1 + size)));
      at = eol + 1 + size + 1;
    }
    return blobs;
  }

  private async findRequest(requestId: string): Promise<string | undefined> {
    const out = await git(
      [
        "log",
        "-n",
        "1",
        "--format=%H",
        "--fixed-strings",
        `--grep=${requestTrailer}: ${requestId}`,
        `refs/remotes/origin/${this.branch}`,
      ],
      { cwd: this.repoDir },
    );
    return out === "" ? undefined : out;
  }

  private async resetTo(base: string): Promise<void> {
    if (base === "") {
      // A remote without the branch yet: start from an empty history.
      await git(["checkout", "--quiet", "--orphan", `odin-new-${this.branch}`], {
        cwd: this.repoDir,
      }).catch(() => undefined);
      await git(["rm", "-r", "-q", "--cached", "--ignore-unmatch", "."], { cwd: this.repoDir });
    } else {
      await git(["checkout", "--quiet", "--detach", base], { cwd: this.repoDir }).catch(
        () => undefined,
      );
      await git(["reset", "--quiet", "--hard", base], { cwd: this.repoDir });
    }
    await git(["clean", "-q", "-f", "-d", "-x"], { cwd: this.repoDir });
  }

  private async writePipeline(
    dir: string,
    files: readonly { path: string; content: Uint8Array }[],
    replace: boolean,
  ): Promise<void> {
    const root = join(this.repoDir, ...dir.split("/"));
    if (replace) {
      await git(["rm", "-r", "-q", "--ignore-unmatch", "--", dir], { cwd: this.repoDir });
      await rm(root, { recursive: true, force: true });
    }
    // No part of the way to the pipeline directory may be a symlink: it could lead out of the clone.
    await refuseSymlinkedParents(this.repoDir, dir);
    for (const f of files) {
      const target = join(root, ...f.path.split("/"));
      await refuseSymlinkedParents(root, posix.dirname(f.path));
      await mkdir(dirname(target), { recursive: true });
      await rm(target, { force: true });
      await writeFile(target, f.content, { flag: "wx" });
    }
    const main = files.find((f) => f.path === "main.yml");
    if (main !== undefined || replace) {
      const text = main ? Buffer.from(main.content).toString("utf8") : undefined;
      if (text !== undefined) {
        const result = loadPipeline(text, { file: `${dir}/main.yml`, path: dir });
        if (!result.valid) {
          throw new InvalidArgumentError(
            `${dir}/main.yml is not a valid pipeline; nothing was pushed`,
            {
              problems: result.problems.filter((p: Problem) => p.severity === "error"),
            },
          );
        }
      }
    }
    await git(["add", "-A", "--", dir], { cwd: this.repoDir });
  }

  private async hasStagedChanges(): Promise<boolean> {
    try {
      await git(["diff", "--cached", "--quiet"], { cwd: this.repoDir });
      return false;
    } catch {
      return true;
    }
  }

  private async modesOf(sha: string, paths: readonly string[]): Promise<Map<string, string>> {
    const out = await gitRaw(["ls-tree", "-z", "--full-tree", sha, "--", ...paths], {
      cwd: this.repoDir,
    });
    const modes = new Map<string, string>();
    for (const record of out.toString("utf8").split("\0")) {
      const tab = record.indexOf("\t");
      if (tab === -1) continue;
      modes.set(record.slice(tab + 1), record.slice(0, tab).split(" ")[0]!);
    }
    return modes;
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

function sanitizeIdent(s: string): string {
  return s.replace(/[<>\n\r\0]/g, "").trim() || "unknown";
}

async function refuseSymlinkedParents(base: string, rel: string): Promise<void> {
  if (rel === "." || rel === "") return;
  let at = base;
  for (const segment of rel.split("/")) {
    at = join(at, segment);
    try {
      if ((await lstat(at)).isSymbolicLink()) {
        throw new InvalidArgumentError(`${rel} goes through a symbolic link; nothing was pushed`);
      }
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      return;
    }
  }
}

/** Deletes symbolic links in a checkout that point outside it (SPEC: paths may not leave the repo). */
async function removeEscapingLinks(root: string, dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isSymbolicLink()) {
      const target = resolve(dirname(path), await readlink(path));
      if (target !== root && !target.startsWith(root + sep)) await unlink(path);
    } else if (e.isDirectory()) {
      await removeEscapingLinks(root, path);
    }
  }
}

async function setReadOnly(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      await setReadOnly(path);
      await chmod(path, 0o555);
    } else if (e.isFile()) {
      await chmod(path, 0o444);
    }
  }
  await chmod(dir, 0o555);
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await makeWritable(join(dir, e.name));
  }
}
