import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmod,
  lstat,
  mkdtemp,
  readFile,
  readlink,
  rename,
  rm,
  writeFile,
  mkdir,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PipelineRepository, type SyncedEvent } from "./repository.js";
import { git as sh } from "./testing/git.js";

const conformance = fileURLToPath(
  new URL("../../../../shared/conformance/sample-odin-pipelines", import.meta.url),
);

interface Fixture {
  dir: string;
  remote: string;
  seed: string;
  /** Commits files to the remote from another clone (someone else pushing). */
  commitElsewhere(files: Record<string, string>, message?: string): string;
  open(options?: {
    keepCheckouts?: number;
    onSynced?: (e: SyncedEvent) => void;
    root?: string;
  }): Promise<PipelineRepository>;
}

async function fixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "odin-repo-"));
  const remote = join(dir, "remote.git");
  sh(dir, "init", "--quiet", "--bare", "--initial-branch=main", remote);
  const seed = join(dir, "seed");
  sh(dir, "clone", "--quiet", remote, seed);
  execFileSync("cp", ["-r", join(conformance, "sst2"), join(conformance, "logging.json"), seed]);
  sh(seed, "add", "-A");
  sh(seed, "commit", "--quiet", "-m", "seed");
  sh(seed, "push", "--quiet", "origin", "HEAD:main");
  let roots = 0;
  return {
    dir,
    remote,
    seed: sh(seed, "rev-parse", "HEAD"),
    commitElsewhere(files, message = "elsewhere") {
      sh(seed, "pull", "--quiet", "--rebase", "origin", "main");
      for (const [path, text] of Object.entries(files)) {
        execFileSync("mkdir", ["-p", join(seed, path, "..")]);
        execFileSync("tee", [join(seed, path)], {
          input: text,
          stdio: ["pipe", "ignore", "inherit"],
        });
      }
      sh(seed, "add", "-A");
      sh(seed, "commit", "--quiet", "-m", message);
      sh(seed, "push", "--quiet", "origin", "HEAD:main");
      return sh(seed, "rev-parse", "HEAD");
    },
    open(options = {}) {
      return PipelineRepository.open({
        remote,
        rootPath: options.root ?? join(dir, `root${roots++}`),
        keepCheckouts: options.keepCheckouts,
        onSynced: options.onSynced,
      });
    },
  };
}

const pipeline = (name: string) =>
  `name: ${name}\ntasks:\n- name: hello\n  image: python:3.11\n  command: python3\n  args: ["-c", "print('\${TASK_ID}')"]\n`;
const file = (path: string, text: string) => ({ path, content: Buffer.from(text) });
const caller = { name: "alice", email: "alice@example.com" };

describe("PipelineRepository", () => {
  let fx: Fixture;
  before(async () => {
    fx = await fixture();
  });
  after(async () => {
    await rm(fx.dir, { recursive: true, force: true });
  });

  test("clones, serves the remote's commit as an immutable checkout and links it as current", async () => {
    const events: SyncedEvent[] = [];
    const repo = await fx.open({ onSynced: (e) => events.push(e) });
    const { commit, branch, remote } = repo.status();
    assert.equal(commit, fx.seed);
    assert.equal(branch, "main");
    assert.equal(remote, fx.remote);
    const checkout = repo.checkoutPath(commit);
    assert.match(await readFile(join(checkout, "sst2", "main.yml"), "utf8"), /mead-train/);
    assert.equal(
      (await lstat(join(checkout, "sst2", "main.yml"))).mode & 0o222,
      0,
      "checkout files are read-only",
    );
    assert.equal(await readlink(join(checkout, "..", "..", "current")), `commits/${commit}`);
    assert.deepEqual(
      events.map((e) => [e.commit, e.previousCommit, e.branch]),
      [[fx.seed, "", "main"]],
    );
    const listed = await repo.listFiles(undefined, "sst2");
    assert.deepEqual(listed.files.map((f) => f.path).sort(), ["sst2/main.yml", "sst2/sst2.yml"]);
    const read = await repo.readFiles(fx.seed, ["logging.json", "sst2/main.yml"]);
    assert.deepEqual(
      read.files.map((f) => f.path),
      ["logging.json", "sst2/main.yml"],
    );
    assert.equal(
      read.files[1]!.content.toString(),
      await readFile(join(conformance, "sst2", "main.yml"), "utf8"),
    );
    repo.close();
  });

  test("push commits as the caller, reaches the remote, and a retry with the same request id does not commit twice", async () => {
    const repo = await fx.open();
    const pushed = await repo.push({
      pipeline: "alice/hello",
      files: [file("main.yml", pipeline("hello")), file("conf/settings.json", "{}")],
      replace: true,
      message: "Add hello",
      requestId: "req-1",
      author: caller,
    });
    assert.equal(pushed.changed, true);
    assert.equal(sh(fx.remote, "rev-parse", "main"), pushed.commit);
    assert.equal(
      sh(fx.remote, "log", "-1", "--format=%an <%ae>|%s", "main"),
      "alice <alice@example.com>|Add hello",
    );
    assert.equal(repo.currentCommit(), pushed.commit, "the pushed commit is served at once");
    const again = await repo.push({
      pipeline: "alice/hello",
      files: [file("main.yml", pipeline("hello"))],
      replace: true,
      requestId: "req-1",
      author: caller,
    });
    assert.deepEqual(again, { commit: pushed.commit, changed: false });
    const other = await fx.open();
    assert.deepEqual((await other.listFiles(undefined, "alice")).files.map((f) => f.path).sort(), [
      "alice/hello/conf/settings.json",
      "alice/hello/main.yml",
    ]);
    repo.close();
    other.close();
  });

  test("replace removes files that are no longer in the pipeline; a push that changes nothing commits nothing", async () => {
    const repo = await fx.open();
    await repo.push({
      pipeline: "bob/p",
      files: [file("main.yml", pipeline("p")), file("old.txt", "x")],
      replace: true,
      requestId: "b1",
      author: caller,
    });
    const r = await repo.push({
      pipeline: "bob/p",
      files: [file("main.yml", pipeline("p"))],
      replace: true,
      requestId: "b2",
      author: caller,
    });
    assert.equal(r.changed, true);
    assert.deepEqual(
      (await repo.listFiles(undefined, "bob/p")).files.map((f) => f.path),
      ["bob/p/main.yml"],
    );
    const same = await repo.push({
      pipeline: "bob/p",
      files: [file("main.yml", pipeline("p"))],
      replace: true,
      requestId: "b3",
      author: caller,
    });
    assert.deepEqual(same, { commit: r.commit, changed: false });
    repo.close();
  });

  test("a push racing another commit on the remote is replayed on top of it", async () => {
    const repo = await fx.open();
    // A pre-push hook in Odin's clone makes someone else push first, so Odin's push is rejected once.
    const hook = join(fx.dir, "root-race-hook.sh");
    const marker = join(fx.dir, "raced");
    await writeFile(
      hook,
      `#!/bin/sh\n[ -e ${marker} ] && exit 0\ntouch ${marker}\ncd ${join(fx.dir, "seed")} && git pull -q --rebase origin main && echo raced > raced.txt && git add raced.txt && git -c user.name=Bob -c user.email=b@x commit -qm race && git push -q origin HEAD:main\n`,
    );
    await chmod(hook, 0o755);
    const hooksDir = join(repo.checkoutPath("x"), "..", "..", ".odin", "repo", ".git", "hooks");
    await mkdir(hooksDir, { recursive: true });
    await rename(hook, join(hooksDir, "pre-push"));
    const r = await repo.push({
      pipeline: "race/p",
      files: [file("main.yml", pipeline("p"))],
      replace: true,
      requestId: "race-1",
      author: caller,
    });
    await rm(join(hooksDir, "pre-push"));
    assert.equal(sh(fx.remote, "rev-parse", "main"), r.commit);
    const log = sh(fx.remote, "log", "--format=%s", "-2", "main").split("\n");
    assert.deepEqual(
      log,
      ["Update pipeline race/p", "race"],
      "our commit sits on top of the racing one",
    );
    assert.equal(sh(fx.remote, "show", "main:raced.txt"), "raced");
    repo.close();
  });

  test("concurrent pushes from two Odin replicas and one replica both land", async () => {
    const a = await fx.open();
    const b = await fx.open();
    const results = await Promise.all([
      a.push({
        pipeline: "c/one",
        files: [file("main.yml", pipeline("one"))],
        replace: true,
        requestId: "c1",
        author: caller,
      }),
      b.push({
        pipeline: "c/two",
        files: [file("main.yml", pipeline("two"))],
        replace: true,
        requestId: "c2",
        author: caller,
      }),
      a.push({
        pipeline: "c/three",
        files: [file("main.yml", pipeline("three"))],
        replace: true,
        requestId: "c3",
        author: caller,
      }),
    ]);
    assert.ok(results.every((r) => r.changed));
    const tree = sh(fx.remote, "ls-tree", "-r", "--name-only", "main", "c").split("\n").sort();
    assert.deepEqual(tree, ["c/one/main.yml", "c/three/main.yml", "c/two/main.yml"]);
    a.close();
    b.close();
  });

  test("listCommits gives the commits a sync brought, oldest first, with author and changed files; a force-push is flagged", async () => {
    const repo = await fx.open();
    const base = repo.currentCommit();
    const seed = join(fx.dir, "seed");
    sh(seed, "pull", "--quiet", "--rebase", "origin", "main");
    const commitAs = (author: string, files: Record<string, string>, message: string): string => {
      for (const [path, text] of Object.entries(files)) {
        execFileSync("mkdir", ["-p", join(seed, path, "..")]);
        execFileSync("tee", [join(seed, path)], {
          input: text,
          stdio: ["pipe", "ignore", "inherit"],
        });
      }
      sh(seed, "add", "-A");
      sh(seed, "commit", "--quiet", `--author=${author}`, "-m", message);
      return sh(seed, "rev-parse", "HEAD");
    };
    const one = commitAs("Ada Lovelace <ada@example.com>", { "a/x.py": "1", "b/y.py": "1" }, "one");
    // A side branch merged: the merge is one commit carrying the branch's changes.
    sh(seed, "checkout", "--quiet", "-b", "side");
    commitAs("Grace <grace@example.com>", { "c/side file.txt": "1" }, "side");
    sh(seed, "checkout", "--quiet", "main");
    const two = commitAs("Ada Lovelace <ada@example.com>", { "a/z.py": "2" }, "two");
    sh(seed, "merge", "--quiet", "--no-ff", "side", "-m", "merge side");
    const merge = sh(seed, "rev-parse", "HEAD");
    sh(seed, "push", "--quiet", "origin", "HEAD:main");
    await repo.sync();
    const range = await repo.listCommits(base, undefined);
    assert.equal(range.until, merge);
    assert.deepEqual(
      range.commits.map((c) => [c.sha, c.author.name, c.author.email, c.subject, c.changedPaths]),
      [
        [one, "Ada Lovelace", "ada@example.com", "one", ["a/x.py", "b/y.py"]],
        [two, "Ada Lovelace", "ada@example.com", "two", ["a/z.py"]],
        [merge, "Seed", "seed@example.com", "merge side", ["c/side file.txt"]],
      ],
    );
    assert.deepEqual([range.truncated, range.rewritten, range.sinceUnknown], [false, false, false]);
    const limited = await repo.listCommits(base, merge, 2);
    assert.deepEqual(
      limited.commits.map((c) => c.sha),
      [two, merge],
      "the newest within the limit",
    );
    assert.equal(limited.truncated, true);
    assert.deepEqual(
      (await repo.listCommits("", one)).commits.map((c) => c.sha),
      [one],
      "no since: the commit itself",
    );
    assert.deepEqual((await repo.listCommits(merge, merge)).commits, [], "nothing after the head");
    const unknown = await repo.listCommits("0".repeat(40), undefined);
    assert.deepEqual([unknown.sinceUnknown, unknown.commits.map((c) => c.sha)], [true, [merge]]);
    // History rewritten: the branch reset to `one` and a new commit pushed over it.
    sh(seed, "reset", "--quiet", "--hard", one);
    const fresh = commitAs("Ada Lovelace <ada@example.com>", { "a/x.py": "3" }, "rewritten");
    sh(seed, "push", "--quiet", "--force", "origin", "HEAD:main");
    await repo.sync();
    const forced = await repo.listCommits(merge, undefined);
    assert.equal(forced.rewritten, true);
    assert.deepEqual(
      forced.commits.map((c) => c.sha),
      [fresh],
    );
    await assert.rejects(repo.listCommits("HEAD~1", undefined), /not a full commit id/);
    repo.close();
  });

  test("a run-pinned checkout survives newer syncs and is pruned once released", async () => {
    const repo = await fx.open({ keepCheckouts: 0 });
    const pinned = repo.currentCommit();
    const { path } = await repo.acquireCheckout(pinned, "run-abc");
    for (let i = 0; i < 3; i++) {
      fx.commitElsewhere({ [`n${i}/main.yml`]: pipeline(`n${i}`) });
      await repo.sync();
    }
    assert.notEqual(repo.currentCommit(), pinned);
    assert.match(
      await readFile(join(path, "sst2", "main.yml"), "utf8"),
      /mead-train/,
      "the pinned commit's files are still there",
    );
    assert.equal(await repo.releaseCheckout(pinned, "run-abc"), true);
    await assert.rejects(lstat(path), /ENOENT/);
    repo.close();
  });

  test("bad pushes are refused with a clear error and nothing is written", async () => {
    const repo = await fx.open();
    const before = sh(fx.remote, "rev-parse", "main");
    const cases: [string, Parameters<PipelineRepository["push"]>[0], RegExp][] = [
      [
        "pipeline path with ..",
        {
          pipeline: "../etc",
          files: [file("main.yml", pipeline("x"))],
          replace: true,
          requestId: "x1",
          author: caller,
        },
        /may not leave/,
      ],
      [
        "absolute pipeline path",
        {
          pipeline: "/etc",
          files: [file("main.yml", pipeline("x"))],
          replace: true,
          requestId: "x2",
          author: caller,
        },
        /absolute/,
      ],
      [
        "file escaping the pipeline",
        {
          pipeline: "ok",
          files: [file("main.yml", pipeline("x")), file("../../evil", "x")],
          replace: true,
          requestId: "x3",
          author: caller,
        },
        /may not leave/,
      ],
      [
        "file into .git",
        {
          pipeline: "ok",
          files: [file("main.yml", pipeline("x")), file(".git/hooks/post-commit", "x")],
          replace: true,
          requestId: "x4",
          author: caller,
        },
        /\.git/,
      ],
      [
        "invalid pipeline",
        {
          pipeline: "ok",
          files: [file("main.yml", "tasks:\n- name: a\n  image: [\n")],
          replace: true,
          requestId: "x5",
          author: caller,
        },
        /not a valid pipeline/,
      ],
      [
        "oversized file",
        {
          pipeline: "ok",
          files: [
            file("main.yml", pipeline("x")),
            { path: "big.bin", content: new Uint8Array(17 * 1024 * 1024) },
          ],
          replace: true,
          requestId: "x6",
          author: caller,
        },
        /limit/,
      ],
      [
        "no main.yml",
        {
          pipeline: "ok",
          files: [file("x.txt", "x")],
          replace: true,
          requestId: "x7",
          author: caller,
        },
        /needs a main\.yml/,
      ],
    ];
    for (const [what, input, message] of cases) {
      await assert.rejects(repo.push(input), (err: Error) => {
        assert.equal(err.name, "InvalidArgumentError", what);
        assert.match(err.message, message, what);
        return true;
      });
    }
    assert.equal(sh(fx.remote, "rev-parse", "main"), before, "the remote did not move");
    repo.close();
  });

  test("symbolic links that leave the repository are not followed or served", async () => {
    const repo = await fx.open();
    const seed = join(fx.dir, "seed");
    sh(seed, "pull", "--quiet", "--rebase", "origin", "main");
    execFileSync("ln", ["-s", "/etc", join(seed, "escape")]);
    await mkdir(join(seed, "linked"), { recursive: true });
    execFileSync("ln", ["-s", "../../../../etc/hostname", join(seed, "linked", "main.yml")]);
    sh(seed, "add", "-A");
    sh(seed, "commit", "--quiet", "-m", "links");
    sh(seed, "push", "--quiet", "origin", "HEAD:main");
    const { commit } = await repo.sync();
    await assert.rejects(lstat(join(repo.checkoutPath(commit), "escape")), /ENOENT/);
    const listed = (await repo.listFiles(commit, "linked")).files;
    assert.deepEqual(
      listed.map((f) => [f.path, f.symlink]),
      [["linked/main.yml", true]],
    );
    await assert.rejects(repo.readFiles(commit, ["linked/main.yml"]), /symbolic link/);
    await assert.rejects(repo.readFiles(commit, ["../etc/passwd"]), /may not leave/);
    repo.close();
  });

  test("an unreachable remote shows in the status while the last good commit keeps being served", async () => {
    const f = await fixture();
    try {
      const repo = await f.open();
      const good = repo.currentCommit();
      await rename(f.remote, `${f.remote}.moved`);
      await assert.rejects(
        repo.sync(),
        (err: Error) => err.name === "UnavailableError" && /cannot sync/.test(err.message),
      );
      const status = repo.status();
      assert.equal(status.commit, good);
      assert.match(
        status.lastError ?? "",
        /does not appear to be a git repository|Could not read from remote|not found|No such/i,
      );
      assert.ok(status.lastErrorTime instanceof Date);
      assert.equal((await repo.readFiles(undefined, ["sst2/main.yml"])).commit, good);
      await rename(`${f.remote}.moved`, f.remote);
      await repo.sync();
      assert.equal(repo.status().lastError, undefined);
      repo.close();
    } finally {
      await rm(f.dir, { recursive: true, force: true });
    }
  });

  test("a service restarted while the remote is down serves what it served before", async () => {
    const f = await fixture();
    try {
      const root = join(f.dir, "persistent");
      const first = await f.open({ root });
      const good = first.currentCommit();
      first.close();
      await rename(f.remote, `${f.remote}.moved`);
      const second = await f.open({ root });
      assert.equal(second.currentCommit(), good);
      assert.ok(second.status().lastError);
      second.close();
    } finally {
      await rm(f.dir, { recursive: true, force: true });
    }
  });
});
