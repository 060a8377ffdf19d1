// A templated pipeline directory rendered per holder by the repository: real git repositories in
// temp dirs, the files as tasks would read them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "@odin/service-kit";
import { PipelineRepository } from "./repository.js";
import { git } from "./testing/git.js";

const main = `name: tpl
tasks:
- name: a
  image: busybox
  command: cat
  args: ["\${WORK_PATH}/conf.yml"]
`;

let dir: string;
let seed: string;
let repo: PipelineRepository;
let root: string;

/** Commits files (text, or `{ link }` for a symbolic link) and syncs; resolves to the commit. */
async function commit(files: Record<string, string | { link: string }>): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(seed, path, ".."), { recursive: true });
    await rm(join(seed, path), { force: true });
    if (typeof content === "string") await writeFile(join(seed, path), content);
    else await symlink(content.link, join(seed, path));
  }
  git(seed, "add", "-A");
  git(seed, "commit", "--quiet", "-m", "change");
  git(seed, "push", "--quiet", "origin", "HEAD:main");
  return (await repo.sync()).commit;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "odin-render-"));
  const remote = join(dir, "remote.git");
  git(dir, "init", "--quiet", "--bare", "--initial-branch=main", remote);
  seed = join(dir, "seed");
  git(dir, "clone", "--quiet", remote, seed);
  await mkdir(join(seed, "shared"), { recursive: true });
  await writeFile(join(seed, "shared", "vocab.txt"), "a b c\n");
  await mkdir(join(seed, "tpl", "data", "deep"), { recursive: true });
  await writeFile(join(seed, "tpl", "main.yml"), main);
  await writeFile(join(seed, "tpl", "conf.yml.jinja2"), "lr: {{ lr }}\nmodel: {{ name }}\n");
  await writeFile(join(seed, "tpl", "run.sh.jinja2"), "echo {{ lr | default(1) }} {{ missing }}\n");
  await writeFile(join(seed, "tpl", "data", "deep", "rows.csv"), "1,2\n");
  await writeFile(join(seed, "tpl", "data", "deep", "sub.yml.jinja2"), "x: {{ lr * 2 }}\n");
  await symlink("../shared/vocab.txt", join(seed, "tpl", "vocab.txt"));
  await symlink("conf.yml", join(seed, "tpl", "conf-link.yml"));
  await mkdir(join(seed, "plain"));
  await writeFile(join(seed, "plain", "main.yml"), main.replace("tpl", "plain"));
  git(seed, "add", "-A");
  git(seed, "commit", "--quiet", "-m", "seed");
  git(seed, "push", "--quiet", "origin", "HEAD:main");
  root = join(dir, "root");
  repo = await PipelineRepository.open({ remote, rootPath: root });
});

after(async () => {
  repo?.close();
  // Read-only trees: make them writable so the temp dir can go.
  execFileSync("chmod", ["-R", "u+w", dir]);
  await rm(dir, { recursive: true, force: true });
});

describe("rendered pipeline directories", () => {
  test("every template is rendered with the context, the rest laid out beside, the checkout untouched", async () => {
    const got = await repo.acquireCheckout(undefined, "run-1", {
      pipeline: "tpl",
      parameters: { lr: 0.5 },
      attempt: 1,
    });
    assert.ok(got.workPath, "a templated directory is rendered");
    assert.equal(got.workPath, join(root, "renders", got.commit, "run-1"));
    assert.match(got.workDigest ?? "", /^sha256:[0-9a-f]{64}$/);
    const work = got.workPath;
    assert.equal(await readFile(join(work, "conf.yml"), "utf8"), "lr: 0.5\nmodel: tpl\n");
    // Undefined names render empty, as Jinja2's default did.
    assert.equal(await readFile(join(work, "run.sh"), "utf8"), "echo 0.5 \n");
    assert.equal(await readFile(join(work, "data", "deep", "sub.yml"), "utf8"), "x: 1\n");
    assert.equal(await readFile(join(work, "data", "deep", "rows.csv"), "utf8"), "1,2\n");
    assert.equal(await readFile(join(work, "main.yml"), "utf8"), main);
    // The templates themselves stay, as the original's copy kept them.
    assert.match(await readFile(join(work, "conf.yml.jinja2"), "utf8"), /\{\{ lr \}\}/);
    // A link to the repository reaches the checkout; one within the directory, the rendering.
    assert.equal(await readFile(join(work, "vocab.txt"), "utf8"), "a b c\n");
    assert.equal(await readlink(join(work, "vocab.txt")), join(got.path, "shared", "vocab.txt"));
    assert.equal(await readlink(join(work, "conf-link.yml")), "conf.yml");
    assert.equal(await readFile(join(work, "conf-link.yml"), "utf8"), "lr: 0.5\nmodel: tpl\n");
    // Read-only, like the checkout; the checkout has no rendering in it.
    assert.equal((await stat(join(work, "conf.yml"))).mode & 0o222, 0);
    assert.equal((await stat(work)).mode & 0o222, 0);
    await assert.rejects(lstat(join(got.path, "tpl", "conf.yml")), { code: "ENOENT" });
    // Files are linked, not copied: the same inode as the checkout's.
    assert.equal(
      (await stat(join(work, "data", "deep", "rows.csv"))).ino,
      (await stat(join(got.path, "tpl", "data", "deep", "rows.csv"))).ino,
    );
  });

  test("the digest follows the content: same context, same digest; another value, another", async () => {
    const a = await repo.acquireCheckout(undefined, "run-2", {
      pipeline: "tpl",
      parameters: { lr: 0.5 },
    });
    const b = await repo.acquireCheckout(undefined, "run-3", {
      pipeline: "tpl",
      parameters: { lr: 0.7 },
    });
    const first = await repo.acquireCheckout(undefined, "run-1", {
      pipeline: "tpl",
      parameters: { lr: 0.5 },
    });
    assert.equal(a.workDigest, first.workDigest);
    assert.notEqual(a.workDigest, b.workDigest);
    assert.notEqual(a.workPath, first.workPath);
    for (const holder of ["run-2", "run-3"]) await repo.releaseCheckout(a.commit, holder);
  });

  test("a pipeline without templates, or no pipeline given, is not rendered", async () => {
    const plain = await repo.acquireCheckout(undefined, "run-plain", { pipeline: "plain" });
    assert.equal(plain.workPath, undefined);
    const none = await repo.acquireCheckout(undefined, "run-none");
    assert.equal(none.workPath, undefined);
    await repo.releaseCheckout(plain.commit, "run-plain");
    await repo.releaseCheckout(none.commit, "run-none");
  });

  test("acquiring again keeps the rendering; a release for an earlier attempt keeps it; the last release removes it", async () => {
    const first = await repo.acquireCheckout(undefined, "run-r", {
      pipeline: "tpl",
      parameters: { lr: 1 },
      attempt: 1,
    });
    const before = (await stat(join(first.workPath!, "conf.yml"))).ino;
    // The retry (attempt 2) acquires before attempt 1's release arrives.
    const again = await repo.acquireCheckout(first.commit, "run-r", {
      pipeline: "tpl",
      parameters: { lr: 1 },
      attempt: 2,
    });
    assert.equal(again.workPath, first.workPath);
    assert.equal((await stat(join(again.workPath!, "conf.yml"))).ino, before, "not written again");
    assert.equal(await repo.releaseCheckout(first.commit, "run-r", 1), false);
    assert.equal(await readFile(join(first.workPath!, "conf.yml"), "utf8"), "lr: 1\nmodel: tpl\n");
    assert.equal(await repo.releaseCheckout(first.commit, "run-r", 2), true);
    await assert.rejects(lstat(first.workPath!), { code: "ENOENT" });
  });

  test("a template that does not render is refused at file:line:col and nothing is held", async () => {
    const sha = await commit({ "bad/main.yml": main, "bad/conf.yml.jinja2": "a: 1\nb: {{ x }\n" });
    await assert.rejects(
      repo.acquireCheckout(sha, "run-bad", { pipeline: "bad", parameters: {} }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(
          err.message,
          /^pipeline bad at commit \w{12} cannot be rendered: bad\/conf\.yml\.jinja2:2:\d+: /,
        );
        assert.equal(err.problems[0]?.file, "bad/conf.yml.jinja2");
        assert.equal(err.problems[0]?.line, 2);
        return true;
      },
    );
    await assert.rejects(lstat(join(root, ".odin", "holds", sha, "run-bad")), { code: "ENOENT" });
    await assert.rejects(lstat(join(root, "renders", sha, "run-bad")), { code: "ENOENT" });

    // Names that reach the JavaScript runtime are refused, at their position.
    const evil = await commit({
      "bad/conf.yml.jinja2": "a: 1\nb: {{ range.constructor('return 1')() }}\n",
    });
    await assert.rejects(
      repo.acquireCheckout(evil, "run-evil", { pipeline: "bad", parameters: {} }),
      /bad\/conf\.yml\.jinja2:\d+:\d+: .*"constructor" cannot be used in a template/,
    );

    // A rendered .yml must be YAML; other files are text.
    const yaml = await commit({
      "bad/conf.yml.jinja2": "a: 1\nb: [{{ x }}\n",
      "bad/notes.txt.jinja2": "b: [{{ x }}\n",
    });
    await assert.rejects(
      repo.acquireCheckout(yaml, "run-yaml", { pipeline: "bad", parameters: { x: 1 } }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.equal(err.problems.length, 1, JSON.stringify(err.problems));
        assert.equal(err.problems[0]?.file, "bad/conf.yml.jinja2");
        assert.match(err.problems[0]?.message ?? "", /the rendered conf\.yml is not valid YAML/);
        return true;
      },
    );
  });

  test("a link of the directory that leaves the repository is refused, clearly", async () => {
    const sha = await commit({
      "out/main.yml": main,
      "out/conf.yml.jinja2": "a: 1\n",
      "out/passwd": { link: "/etc/passwd" },
      "out/up": { link: "../../outside" },
    });
    await assert.rejects(
      repo.acquireCheckout(sha, "run-out", { pipeline: "out", parameters: {} }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        const files = err.problems.map((p) => p.file).sort();
        assert.deepEqual(files, ["out/passwd", "out/up"]);
        assert.match(err.message, /symbolic link to "\/etc\/passwd", outside the repository/);
        return true;
      },
    );
  });

  test("pipeline paths that leave the repository are refused", async () => {
    await assert.rejects(
      repo.acquireCheckout(undefined, "run-x", { pipeline: "../etc", parameters: {} }),
      InvalidArgumentError,
    );
  });
});
