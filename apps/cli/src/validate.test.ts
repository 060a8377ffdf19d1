import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const conformance = fileURLToPath(new URL("../../../../shared/conformance", import.meta.url));

function odin(
  args: string[],
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function repo(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "odin-validate-"));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

test("every conformance pipeline is valid", async () => {
  const r = await odin(["validate", conformance]);
  assert.equal(r.stderr, "");
  assert.equal(r.stdout.trim(), "6 pipelines valid");
  assert.equal(r.code, 0);
});

test("problems are printed as file:line:col: task: message with a summary, exit 1", async () => {
  const dir = await repo({
    "good/main.yml": "tasks:\n- name: a\n  image: x\n  command: y\n",
    "alice/bad/main.yml":
      "name: bad\ntasks:\n- name: a\n  image: x\n  command: y\n  depends: [nope]\n  color: blue\n",
  });
  try {
    const r = await odin(["validate", "."], dir);
    assert.equal(r.code, 1);
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines, [
      'alice/bad/main.yml:6:13: a: depends on "nope", which is not a task of this pipeline',
      'alice/bad/main.yml:7:3: warning: a: unknown task key "color" is ignored',
      "1 of 2 pipelines invalid: 1 error, 1 warning",
    ]);
    const quiet = await odin(["validate", "-q", "alice"], dir);
    assert.equal(quiet.stdout.split("\n").filter((l) => l.includes("warning:")).length, 0);
    assert.match(quiet.stdout, /^alice\/bad\/main\.yml:6:13: a: depends on "nope"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("json output carries every pipeline with its path, name and problems", async () => {
  const dir = await repo({
    "x/y/main.yml": "name: xy\ntasks:\n- name: a\n  image: i\n  command: c\n",
  });
  try {
    const r = await odin(["validate", "-o", "json", dir]);
    assert.equal(r.code, 0);
    const body = JSON.parse(r.stdout) as {
      valid: boolean;
      pipelines: { path: string; name: string; taskCount: number }[];
    };
    assert.equal(body.valid, true);
    assert.equal(body.pipelines[0]?.path, "x/y");
    assert.equal(body.pipelines[0]?.name, "xy");
    assert.equal(body.pipelines[0]?.taskCount, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a missing directory or a directory without pipelines is one clear line, never a stack trace", async () => {
  const missing = await odin(["validate", "/definitely/not/here"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "odin: /definitely/not/here: no such file or directory\n");
  const dir = await repo({ "README.md": "nothing" });
  try {
    const empty = await odin(["validate", dir]);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /^odin: .*: no main\.yml found/);
    assert.doesNotMatch(empty.stderr, /\n\s+at /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("broken YAML is reported with its position", async () => {
  const dir = await repo({ "p/main.yml": "tasks:\n  - name: a\n   image: [\n" });
  try {
    const r = await odin(["validate", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /p\/main\.yml:3:4: invalid YAML: bad indentation/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
