import { execFile, spawn } from "node:child_process";

/** A git command failed; the message is safe to show (credentials in URLs are masked). */
export class GitError extends Error {
  override name = "GitError";
  constructor(
    message: string,
    readonly args: readonly string[],
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Masks credentials in URLs (`https://user:token@host` → `https://***@host`). */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, "$1***@");
}

/** How to run git. */
export interface GitOptions {
  cwd: string;
  /** Kill git after this long (network operations must never hang a service). */
  timeoutMs?: number;
  /** Bytes fed to git's standard input. */
  input?: string | Buffer;
  /** Largest output accepted. */
  maxBuffer?: number;
}

// Never prompt for credentials (a prompt would hang the service); never read the user's config.
const gitEnv = {
  ...process.env,
  GIT_TERMINAL_PROMPT: "0",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_ASKPASS: "/bin/false",
  LC_ALL: "C",
};

/** Runs git and resolves to its standard output as a Buffer; rejects with a GitError. */
export function gitRaw(args: readonly string[], options: GitOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "git",
      args,
      {
        cwd: options.cwd,
        env: gitEnv,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: options.maxBuffer ?? 256 * 1024 * 1024,
        encoding: "buffer",
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout);
          return;
        }
        const text = redactUrl(stderr.toString("utf8").trim());
        const killed = (err as { killed?: boolean }).killed;
        const first = text
          .split("\n")
          .filter((l) => l.trim() !== "")
          .slice(-3)
          .join("; ");
        reject(
          new GitError(
            killed
              ? `git ${args[0]} timed out after ${Math.round((options.timeoutMs ?? 120_000) / 1000)} s`
              : `git ${args[0]} failed: ${first || redactUrl(err.message)}`,
            args,
            text,
            { cause: err },
          ),
        );
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs git and resolves to its trimmed standard output. */
export async function git(args: readonly string[], options: GitOptions): Promise<string> {
  return (await gitRaw(args, options)).toString("utf8").trim();
}

/** Extracts the tree of `commit` into the existing directory `dest` (`git archive | tar -x`). */
export function extractCommit(repoDir: string, commit: string, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const archive = spawn("git", ["archive", "--format=tar", commit], {
      cwd: repoDir,
      env: gitEnv,
    });
    const tar = spawn("tar", ["-x", "-C", dest], { env: gitEnv });
    let stderr = "";
    archive.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    tar.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    archive.stdout.pipe(tar.stdin);
    let pending = 2;
    let failed = false;
    const done = (what: string) => (code: number | null) => {
      if (code !== 0 && !failed) {
        failed = true;
        reject(
          new GitError(
            `${what} of ${commit} failed: ${redactUrl(stderr.trim())}`,
            ["archive", commit],
            stderr,
          ),
        );
      }
      if (--pending === 0 && !failed) resolve();
    };
    archive.on("error", reject);
    tar.on("error", reject);
    archive.on("close", done("git archive"));
    tar.on("close", done("extracting"));
  });
}

/** Serializes async operations: git must never run twice at once on one working tree. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after every operation queued before it has finished. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
