// git for the tests of this library: run on real repositories, as a fixed author.
import { execFileSync } from "node:child_process";

/** Runs git in `cwd` as "Seed <seed@example.com>" (author and committer); its output, trimmed. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "Seed",
      GIT_AUTHOR_EMAIL: "seed@example.com",
      GIT_COMMITTER_NAME: "Seed",
      GIT_COMMITTER_EMAIL: "seed@example.com",
    },
  }).trim();
}
