import { test } from "node:test";
import assert from "node:assert/strict";
import { redactUrl } from "./git.js";
import { pipelinePath, safeRelativePath } from "./paths.js";

test("credentials in remote URLs are masked", () => {
  assert.equal(
    redactUrl("https://bot:s3cr3t@git.example.com/org/pipes.git"),
    "https://***@git.example.com/org/pipes.git",
  );
  assert.equal(
    redactUrl("fatal: unable to access 'https://tok@h/x': 403"),
    "fatal: unable to access 'https://***@h/x': 403",
  );
  assert.equal(redactUrl("git@github.com:org/repo.git"), "git@github.com:org/repo.git");
});

test("paths that leave their directory are refused", () => {
  for (const bad of [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "a\\b",
    "",
    ".",
    "a/.git/config",
    "x\0y",
  ]) {
    assert.throws(() => safeRelativePath(bad), { name: "UnsafePathError" }, bad);
  }
  assert.equal(safeRelativePath("a/./b//c/"), "a/b/c");
  assert.equal(pipelinePath("alice/sst2"), "alice/sst2");
  assert.throws(() => pipelinePath("alice/s s"), /must be letters/);
});
