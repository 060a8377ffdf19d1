// The cache's file digests on the launcher's volume: files, directory trees, what is missing, and
// the paths it refuses (outside its roots, or leading out through a symbolic link).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CacheFiles } from "./files.js";
import { digestOfImageId } from "./kubernetes/classify.js";

async function volume(): Promise<{ root: string; outside: string; done(): Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), "odin-cache-files-"));
  const root = join(base, "data");
  const outside = join(base, "outside");
  await mkdir(root);
  await mkdir(outside);
  return { root, outside, done: () => rm(base, { recursive: true, force: true }) };
}

test("a file's digest is the SHA-256 of its bytes, streamed; one byte changes it; missing is missing", async () => {
  const v = await volume();
  try {
    const files = new CacheFiles([v.root]);
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 1);
    await writeFile(join(v.root, "big.bin"), big);
    const [digest, missing] = await files.digests([
      join(v.root, "big.bin"),
      join(v.root, "nope", "x"),
    ]);
    assert.equal(digest, `sha256:${createHash("sha256").update(big).digest("hex")}`);
    assert.equal(missing, "missing");
    big[big.length - 1] = 2;
    await writeFile(join(v.root, "big.bin"), big);
    assert.notEqual((await files.digests([join(v.root, "big.bin")]))[0], digest);
  } finally {
    await v.done();
  }
});

test("a directory's digest covers its names and contents, in any order of creation", async () => {
  const v = await volume();
  try {
    const files = new CacheFiles([v.root]);
    const a = join(v.root, "a");
    const b = join(v.root, "b");
    for (const [dir, order] of [
      [a, ["x", "y/z"]],
      [b, ["y/z", "x"]],
    ] as const) {
      for (const name of order) {
        await mkdir(join(dir, name, ".."), { recursive: true });
        await writeFile(join(dir, name), name);
      }
    }
    const [da, db] = await files.digests([a, b]);
    assert.match(da!, /^dir-sha256:[0-9a-f]{64}$/);
    assert.equal(da, db);
    await writeFile(join(b, "y", "z"), "changed");
    assert.notEqual((await files.digests([b]))[0], da);
  } finally {
    await v.done();
  }
});

test("paths outside the roots, relative, or through a link leading out are refused", async () => {
  const v = await volume();
  try {
    const files = new CacheFiles([v.root]);
    await writeFile(join(v.outside, "secret"), "s");
    await symlink(join(v.outside, "secret"), join(v.root, "escape"));
    await assert.rejects(files.digests([join(v.outside, "secret")]), /not under a directory/);
    await assert.rejects(files.digests(["relative/path"]), /absolute path/);
    await assert.rejects(files.digests([join(v.root, "..", "outside", "secret")]), /not under/);
    await assert.rejects(files.digests([join(v.root, "escape")]), /symbolic link/);
  } finally {
    await v.done();
  }
});

test("links for cached outputs: made under the data root only, never over what exists", async () => {
  const v = await volume();
  try {
    const files = new CacheFiles([v.root]);
    await mkdir(join(v.root, "run-1", "train"), { recursive: true });
    await writeFile(join(v.root, "run-1", "train", "model"), "m");
    await files.link([
      {
        target: join(v.root, "run-1", "train", "model"),
        path: join(v.root, "run-2", "train", "model"),
      },
    ]);
    assert.equal(
      await readlink(join(v.root, "run-2", "train", "model")),
      join(v.root, "run-1", "train", "model"),
    );
    const [a, b] = await files.digests([
      join(v.root, "run-1", "train", "model"),
      join(v.root, "run-2", "train", "model"),
    ]);
    assert.equal(a, b);
    await writeFile(join(v.root, "run-3"), "kept");
    await files.link([
      { target: join(v.root, "run-1", "train", "model"), path: join(v.root, "run-3") },
    ]);
    assert.equal(await readFile(join(v.root, "run-3"), "utf8"), "kept");
    await assert.rejects(
      files.link([{ target: join(v.root, "run-3"), path: join(v.outside, "x") }]),
      /not under/,
    );
  } finally {
    await v.done();
  }
});

test("the digest in a container status's imageID, whatever its prefix", () => {
  const hex = "a".repeat(64);
  assert.equal(digestOfImageId(`docker-pullable://repo/x@sha256:${hex}`), `sha256:${hex}`);
  assert.equal(digestOfImageId(`repo/x@sha256:${hex}`), `sha256:${hex}`);
  assert.equal(digestOfImageId(`sha256:${hex}`), `sha256:${hex}`);
  assert.equal(digestOfImageId(""), undefined);
  assert.equal(digestOfImageId("repo/x:latest"), undefined);
});
