import { execFile } from "node:child_process";
import { mkdir, stat, writeFile } from "node:fs/promises";
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
