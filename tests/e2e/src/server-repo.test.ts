// `odin server --repo DIR` where DIR is someone's own git checkout: runs use its commits, pushes
// become commits there (authored as its git config says), a dirty work tree is used with a
// warning and refuses pushes until it is clean; a plain directory keeps its snapshot behaviour.
// With no --repo, a copy of the shipped examples is served, and pushes never touch Odin's files.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, writeFile, appendFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

const hello = `name: hello
tasks:
- name: a
  image: busybox
  command: echo
  args: [hi]
`;

let dir: { path: string; cleanup(): Promise<void> };
let repo: string;
let server: OdinServer;
const git = (...args: string[]): string =>
  execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();

before(async () => {
  dir = await tempDir("odin-e2e-server-repo-");
  repo = join(dir.path, "checkout");
  await mkdir(join(repo, "hello"), { recursive: true });
  await writeFile(join(repo, "hello", "main.yml"), hello);
  execFileSync("git", ["init", "-q", "-b", "main", repo]);
  git("config", "user.name", "Jane Doe");
  git("config", "user.email", "jane@example.com");
  git("add", "-A");
  git("commit", "-qm", "hello");
  server = await startOdinServer(["--repo", repo, "--data", join(dir.path, "data")]);
});

after(async () => {
  await server?.stop();
  await dir?.cleanup();
});

test("a run is pinned to a commit of the work tree; a push is a commit there, by its git identity", async () => {
  assert.match(server.output(), /your git work tree: runs use the commits of branch main/);
  const run = await odin(["--server", server.address, "-o", "json", "run", "hello"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal((JSON.parse(run.stdout) as { commit: string }).commit, git("rev-parse", "HEAD"));

  const local = join(dir.path, "new");
  await mkdir(local);
  await writeFile(join(local, "main.yml"), hello.replace("name: hello", "name: new"));
  const push = await odin(["--server", server.address, "push", local, "-m", "add new"]);
  assert.equal(push.code, 0, push.stderr);
  const commit = /as commit ([0-9a-f]{12})/.exec(push.stdout)![1]!;
  assert.equal(
    git("log", "-1", "--format=%h %an <%ae> %s", "--abbrev=12"),
    `${commit} Jane Doe <jane@example.com> add new`,
  );
  assert.equal(
    await readFile(join(repo, "new", "main.yml"), "utf8"),
    hello.replace("name: hello", "name: new"),
  );
  assert.equal(git("status", "--porcelain"), "", "the work tree matches the new commit");

  // A commit made in the work tree is what the next run uses.
  await appendFile(join(repo, "hello", "main.yml"), "# tuned\n");
  git("commit", "-qam", "tune hello");
  const next = await odin(["--server", server.address, "-o", "json", "run", "hello"]);
  assert.equal((JSON.parse(next.stdout) as { commit: string }).commit, git("rev-parse", "HEAD"));
});

test("a dirty work tree: a warning at start, runs use its commits, pushes are refused clearly", async () => {
  await appendFile(join(repo, "hello", "main.yml"), "# not committed\n");
  const dirty = await startOdinServer(["--repo", repo, "--data", join(dir.path, "dirty")]);
  try {
    assert.match(dirty.output(), /warning: .* has uncommitted changes; runs use its commits/);
    const run = await odin(["--server", dirty.address, "-o", "json", "run", "hello"]);
    assert.equal((JSON.parse(run.stdout) as { commit: string }).commit, git("rev-parse", "HEAD"));
    const local = join(dir.path, "other");
    await mkdir(local);
    await writeFile(join(local, "main.yml"), hello.replace("name: hello", "name: other"));
    const before = git("rev-parse", "HEAD");
    const push = await odin(["--server", dirty.address, "push", local]);
    assert.equal(push.code, 1);
    assert.match(
      push.stderr,
      /^odin: not pushed: .* has uncommitted changes, .* commit or stash them/,
    );
    assert.equal(git("rev-parse", "HEAD"), before);
    assert.match(await readFile(join(repo, "hello", "main.yml"), "utf8"), /# not committed/);
  } finally {
    await dirty.stop();
    git("checkout", "--", ".");
  }
});

test("a plain directory (not a git work tree) is snapshotted as before; a push writes its files", async () => {
  const plain = join(dir.path, "plain");
  await mkdir(join(plain, "hello"), { recursive: true });
  await writeFile(join(plain, "hello", "main.yml"), hello);
  const s = await startOdinServer(["--repo", plain, "--data", join(dir.path, "plain-data")]);
  try {
    assert.match(s.output(), /pipelines: .*plain \(commit [0-9a-f]{12}\)/);
    const local = join(dir.path, "third");
    await mkdir(local);
    await writeFile(join(local, "main.yml"), hello.replace("name: hello", "name: third"));
    const push = await odin(["--server", s.address, "push", local]);
    assert.equal(push.code, 0, push.stderr);
    assert.match(await readFile(join(plain, "third", "main.yml"), "utf8"), /name: third/);
  } finally {
    await s.stop();
  }
});

test("with no --repo, a copy of Odin's examples is served: a push lands in the copy, never in Odin's own files", async () => {
  const examples = fileURLToPath(new URL("../../../examples/pipelines", import.meta.url));
  const shipped = (await readdir(examples)).sort();
  const data = join(dir.path, "default-data");
  const copy = join(data, ".odin", "pipelines");
  const s = await startOdinServer(["--data", data]);
  try {
    assert.ok(
      s.output().includes(`pipelines: ${copy} (commit`),
      `the copy is named as what is served:\n${s.output()}`,
    );
    assert.match(s.output(), /a copy of Odin's examples/);
    assert.deepEqual((await readdir(copy)).sort(), shipped, "every example copied");
    const listed = await odin(["--server", s.address, "ls"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /diamond/);
    const local = join(dir.path, "mine");
    await mkdir(local);
    await writeFile(join(local, "main.yml"), hello.replace("name: hello", "name: mine"));
    const push = await odin(["--server", s.address, "push", local]);
    assert.equal(push.code, 0, push.stderr);
    assert.match(await readFile(join(copy, "mine", "main.yml"), "utf8"), /name: mine/);
    assert.equal(existsSync(join(examples, "mine")), false, "Odin's examples are untouched");
    assert.deepEqual((await readdir(examples)).sort(), shipped);
  } finally {
    await s.stop();
  }
  // Started again, it serves the same copy, with what was pushed.
  const again = await startOdinServer(["--data", data]);
  try {
    const shown = await odin(["--server", again.address, "show", "mine"]);
    assert.equal(shown.code, 0, shown.stderr);
  } finally {
    await again.stop();
  }
});
