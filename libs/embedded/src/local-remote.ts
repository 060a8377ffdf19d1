import { execFile } from "node:child_process";
import { mkdir, realpath, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

function git(args: string[], cwd: string): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(
      "git",
      args,
      {
        cwd,
        env: { ...process.env, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        err
          ? fail(
              new Error(
                `git ${args.find((a) => !a.startsWith("-")) ?? ""} failed: ${stderr.trim() || err.message}`,
              ),
            )
          : ok(stdout.trim()),
    );
  });
}

/**
 * A plain directory of pipelines served as a git remote, for embedded mode: its git metadata
 * lives in Odin's state directory (the directory itself is not touched), every fetch first
 * commits the directory's current files, and what `odin push` commits is written back into it.
 */
export class LocalDirectoryRemote {
  private constructor(
    readonly directory: string,
    /** The bare repository to give as the remote URL. */
    readonly url: string,
  ) {}

  /** Prepares (or reopens) the remote of `directory`, keeping its metadata under `stateDir`. */
  static async open(directory: string, stateDir: string): Promise<LocalDirectoryRemote> {
    const dir = resolve(directory);
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory()) throw new Error(`${directory} is not a directory`);
    const url = join(resolve(stateDir), "local-remote.git");
    const exists = await stat(join(url, "HEAD")).catch(() => undefined);
    if (!exists) {
      await mkdir(url, { recursive: true });
      await git(["init", "--quiet", "--bare", "--initial-branch=main", url], url);
    }
    // Odin's own state and other repositories' metadata are never part of the pipelines.
    await writeFile(join(url, "info", "exclude"), ".odin/\n.git\nnode_modules/\n");
    const remote = new LocalDirectoryRemote(dir, url);
    await remote.snapshot();
    return remote;
  }

  private run(args: string[]): Promise<string> {
    return git(
      ["--git-dir", this.url, "--work-tree", this.directory, "-c", "core.bare=false", ...args],
      this.directory,
    );
  }

  /** Commits the directory's current files when they differ from the last commit. */
  async snapshot(): Promise<void> {
    await this.run(["add", "-A", "."]);
    const changed = await this.run(["diff", "--cached", "--quiet"]).then(
      () => false,
      () => true,
    );
    const hasHead = await this.run(["rev-parse", "--verify", "-q", "HEAD"]).then(
      () => true,
      () => false,
    );
    if (changed || !hasHead) {
      await this.run([
        "-c",
        "user.name=Odin",
        "-c",
        "user.email=odin@localhost",
        "commit",
        "--quiet",
        "--allow-empty",
        "-m",
        `Files of ${this.directory}`,
      ]);
    }
  }

  /** Writes the remote's newest commit (e.g. an `odin push`) back into the directory. */
  async writeBack(): Promise<void> {
    await this.run(["reset", "--quiet", "--hard", "main"]);
  }
}

/** A git work tree served as it is: its branch, its commits, its committer identity. */
export interface GitCheckout {
  /** The work tree's top directory. */
  directory: string;
  /** The branch checked out there. */
  branch: string;
  /** Its HEAD commit. */
  head: string;
  /** Whether it has uncommitted changes (tracked files changed, or untracked files). */
  dirty: boolean;
  /** `Name <email>` from its git config, when both are set. */
  identity: string | undefined;
}

/**
 * Inspects `directory`: a git work tree's top directory gives its checkout; a plain directory (or
 * one inside a work tree, not its top) gives undefined. A detached HEAD is refused: pushes need a
 * branch to commit to.
 */
export async function gitCheckoutAt(directory: string): Promise<GitCheckout | undefined> {
  const dir = resolve(directory);
  const top = await git(["rev-parse", "--show-toplevel"], dir).catch(() => undefined);
  if (!top || top !== (await realpath(dir))) return undefined;
  const branch = await git(["symbolic-ref", "--quiet", "--short", "HEAD"], dir).catch(() => "");
  if (!branch)
    throw new Error(
      `${directory} is a git work tree on a detached HEAD; check out a branch (odin push commits to it)`,
    );
  const head = await git(["rev-parse", "--verify", "-q", "HEAD"], dir).catch(() => "");
  if (!head)
    throw new Error(
      `${directory} is a git work tree with no commit yet; commit its pipelines first`,
    );
  // Odin's own state (the default --data is ./.odin/data) does not make a work tree dirty.
  const dirty = (await git(["status", "--porcelain", "--", ".", ":!.odin"], dir)) !== "";
  const name = await git(["config", "user.name"], dir).catch(() => "");
  const email = await git(["config", "user.email"], dir).catch(() => "");
  return {
    directory: dir,
    branch,
    head,
    dirty,
    identity: name && email ? `${name} <${email}>` : undefined,
  };
}
