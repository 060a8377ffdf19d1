// Commit triggers: the `triggers:` declarations and their problems (file:line:col), the path
// patterns, and which commits of a push start runs under each policy.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatProblem } from "./problems.js";
import { loadPipeline } from "./load.js";
import {
  commitMatches,
  pathMatches,
  resolveTriggerPath,
  triggeredCommits,
  type ChangedCommit,
} from "./triggers.js";

const base = `name: train
parameters:
  lr: {type: number, default: 0.001}
  slice: {type: string, default: all}
tasks:
- {name: a, image: busybox, command: echo, args: ["\${{ params.slice }}"]}
`;

const load = (triggers: string, path = "team/train") =>
  loadPipeline(`${base}triggers:\n${triggers}`, { file: `${path}/main.yml`, path });

const errors = (triggers: string, path = "team/train"): string[] =>
  load(triggers, path)
    .problems.filter((p) => p.severity === "error")
    .map(formatProblem);

describe("triggers in main.yml", () => {
  test("a trigger map, the list shorthand and a bare name are read with their defaults", () => {
    const r = load(`  code:
    paths: [src/, "*.py", /shared/lib, "!src/docs/**"]
    policy: each
    parameters: {lr: 0.01}
  data: [data/, /datasets/sst2]
  any:
`);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.pipeline?.triggers, [
      {
        name: "code",
        paths: ["team/train/src", "team/train/*.py", "shared/lib", "!team/train/src/docs/**"],
        policy: "each",
        parameters: { lr: 0.01 },
      },
      {
        name: "data",
        paths: ["team/train/data", "datasets/sst2"],
        policy: "newest",
        parameters: {},
      },
      { name: "any", paths: ["team/train"], policy: "newest", parameters: {} },
    ]);
  });

  test("a pipeline at the repository root defaults to every path", () => {
    const r = load("  all: {}\n", ".");
    assert.deepEqual(r.pipeline?.triggers?.[0]?.paths, [""]);
  });

  test("bad declarations are reported with file:line:col and a way out", () => {
    assert.deepEqual(errors(`  Code: {paths: [src]}\n`), [
      'team/train/main.yml:8:3: trigger name "Code" must be lower-case letters, digits and "-", starting and ending with a letter or digit (at most 63)',
    ]);
    assert.deepEqual(errors(`  code: {policy: every}\n`), [
      'team/train/main.yml:8:18: trigger "code": policy must be one of each, newest, not "every"',
    ]);
    assert.deepEqual(errors(`  code:\n    paths: [src, ../other]\n`), [
      'team/train/main.yml:9:18: trigger "code": path "../other" goes up with ".."; write it from the repository root with a leading "/" instead (e.g. /shared/lib)',
    ]);
    assert.deepEqual(errors(`  code: {paths: []}\n`), [
      'team/train/main.yml:8:17: trigger "code": paths is empty; leave it out to mean the pipeline\'s directory',
    ]);
    assert.deepEqual(errors(`  code: {paths: ["!docs"]}\n`), [
      'team/train/main.yml:8:17: trigger "code": every path excludes ("!"); add one that includes, e.g. "." for the pipeline\'s directory',
    ]);
    assert.deepEqual(errors(`  code: {paths: [{a: 1}]}\n`), [
      'team/train/main.yml:8:18: "triggers.code.paths[0]" must be a path, not a map',
    ]);
    assert.deepEqual(errors(`  code: {parameters: {rate: 1}}\n`), [
      'team/train/main.yml:8:29: trigger "code" gives parameter "rate", which the pipeline does not declare',
    ]);
    assert.deepEqual(errors(`  code: {parameters: {lr: fast}}\n`).length, 1);
    assert.match(
      errors(`  code: {parameters: {lr: fast}}\n`)[0]!,
      /^team\/train\/main.yml:8:27: trigger "code": /,
    );
    assert.deepEqual(errors(`  code: 3\n`), [
      'team/train/main.yml:8:9: trigger "code" must be a map with "paths", "policy" and "parameters", or a list of paths, not a number',
    ]);
    const r = loadPipeline(`${base}triggers: [src]\n`, { file: "main.yml" });
    assert.match(
      r.problems.map(formatProblem).join("\n"),
      /^main.yml:7:11: "triggers" must be a map of trigger names to triggers/,
    );
    const unknown = load(`  code: {paths: [src], branch: main}\n`).problems.map(formatProblem);
    assert.deepEqual(unknown, [
      'team/train/main.yml:8:24: warning: unknown key "triggers.code.branch" in trigger "code" is ignored — known keys are paths, policy, parameters',
    ]);
  });

  test("a required parameter needs a value on the trigger", () => {
    const r = loadPipeline(
      `name: t\nparameters: {slice: {type: string}}\ntasks:\n- {name: a, image: busybox, command: echo}\ntriggers:\n  code: {}\n`,
      { file: "main.yml" },
    );
    assert.deepEqual(r.problems.filter((p) => p.severity === "error").map(formatProblem), [
      'main.yml:6:9: trigger "code" gives no value for parameter "slice", which has no default; add it under triggers.code.parameters',
    ]);
  });
});

describe("trigger paths", () => {
  test("relative paths are from the pipeline's directory, /paths from the repository root", () => {
    assert.deepEqual(resolveTriggerPath("a/b", "."), { pattern: "a/b" });
    assert.deepEqual(resolveTriggerPath("a/b", "./src/"), { pattern: "a/b/src" });
    assert.deepEqual(resolveTriggerPath("a/b", "/"), { pattern: "" });
    assert.deepEqual(resolveTriggerPath(".", "src"), { pattern: "src" });
    assert.deepEqual(resolveTriggerPath("a/b", "!/x/**"), { pattern: "!x/**" });
    assert.ok("error" in resolveTriggerPath("a", "x/../y"));
    assert.ok("error" in resolveTriggerPath("a", " "));
    assert.ok("error" in resolveTriggerPath("a", "x\\y"));
  });

  test("a plain path matches itself and everything under it; globs match within segments", () => {
    assert.ok(pathMatches("src", "src"));
    assert.ok(pathMatches("src", "src/a/b.py"));
    assert.ok(!pathMatches("src", "srcs/a.py"), "a prefix is a whole segment");
    assert.ok(pathMatches("", "anything/at/all"));
    assert.ok(pathMatches("t/*.py", "t/train.py"));
    assert.ok(!pathMatches("t/*.py", "t/sub/train.py"), "* stays in one segment");
    assert.ok(pathMatches("t/**/*.py", "t/train.py"), "** may be no directory");
    assert.ok(pathMatches("t/**/*.py", "t/a/b/train.py"));
    assert.ok(pathMatches("t/*", "t/a/b.txt"), "under a matching directory");
    assert.ok(pathMatches("t/?.yml", "t/a.yml"));
    assert.ok(!pathMatches("t/?.yml", "t/ab.yml"));
    assert.ok(!pathMatches("t/a.b", "t/aXb"), "a dot is a dot");
    assert.ok(pathMatches("t/**", "t/x"));
  });

  test("a commit matches when one changed path is included and not excluded", () => {
    const paths = ["t", "shared/lib", "!t/docs"];
    assert.ok(commitMatches(paths, ["README.md", "t/train.py"]));
    assert.ok(commitMatches(paths, ["shared/lib/util.py"]));
    assert.ok(!commitMatches(paths, ["t/docs/index.md"]), "only excluded files");
    assert.ok(commitMatches(paths, ["t/docs/index.md", "t/main.yml"]));
    assert.ok(!commitMatches(paths, ["other/x", "README.md"]));
    assert.ok(!commitMatches(paths, []), "an empty commit changes nothing");
  });
});

describe("which commits of a push start runs", () => {
  // Ten commits pushed at once, oldest first; the even ones touch the pipeline.
  const commits: ChangedCommit[] = Array.from({ length: 10 }, (_, i) => ({
    sha: `c${i}`,
    changedPaths: i % 2 === 0 ? [`t/file${i}.py`] : [`elsewhere/file${i}.py`],
  }));

  test("each: one run per matching commit, oldest first", () => {
    assert.deepEqual(
      triggeredCommits({ paths: ["t"], policy: "each" }, commits).map((c) => c.sha),
      ["c0", "c2", "c4", "c6", "c8"],
    );
  });

  test("newest: only the newest matching commit", () => {
    assert.deepEqual(
      triggeredCommits({ paths: ["t"], policy: "newest" }, commits).map((c) => c.sha),
      ["c8"],
    );
  });

  test("nothing matching starts nothing", () => {
    assert.deepEqual(triggeredCommits({ paths: ["nope"], policy: "each" }, commits), []);
    assert.deepEqual(triggeredCommits({ paths: ["nope"], policy: "newest" }, commits), []);
    assert.deepEqual(triggeredCommits({ paths: ["t"], policy: "each" }, []), []);
  });
});
