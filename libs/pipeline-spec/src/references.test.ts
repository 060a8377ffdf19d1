import { test } from "node:test";
import assert from "node:assert/strict";
import { loadPipeline } from "./load.js";
import {
  findReferences,
  MissingOutputError,
  parseReference,
  resolveReferences,
  unresolvableReason,
} from "./references.js";

const outputs: Record<string, string> = {
  prep: JSON.stringify({ words: 7, nested: { path: "/data/x" }, list: [1, 2] }),
};
const outputsOf = (task: string): string | undefined => outputs[task];

test("one grammar: what validation calls a reference is what the scheduler resolves", () => {
  assert.deepEqual(parseReference("^prep.outputs.words"), {
    task: "prep",
    path: ["outputs", "words"],
    text: "^prep.outputs.words",
  });
  assert.deepEqual(parseReference("^prep"), { task: "prep", path: [], text: "^prep" });
  assert.equal(parseReference("x^prep"), undefined);
  assert.deepEqual(
    findReferences("--in={^prep.outputs.nested.path} --n={^prep}", true).map((r) => r.text),
    ["{^prep.outputs.nested.path}", "{^prep}"],
  );
  // Spans count only where they are resolved (args).
  assert.deepEqual(findReferences("{^prep.outputs.words}", false), []);
  // An unclosed span is plain text for both.
  assert.deepEqual(findReferences("{^prep.outputs.words", true), []);
  assert.equal(resolveReferences("{^prep.outputs.words", outputsOf), "{^prep.outputs.words");
});

test("references resolve to the upstream outputs, whole values and spans alike", () => {
  assert.equal(resolveReferences("^prep.outputs.words", outputsOf), "7");
  assert.equal(resolveReferences("--in={^prep.outputs.nested.path}", outputsOf), "--in=/data/x");
  assert.equal(resolveReferences("^prep.outputs.list", outputsOf), "[1,2]");
  assert.equal(resolveReferences("plain {not a ref}", outputsOf), "plain {not a ref}");
});

test("a reference that cannot be resolved fails the same way whole or embedded", () => {
  for (const value of ["^prep", "{^prep}", "^prep.name", "x-{^prep.name}"]) {
    assert.throws(() => resolveReferences(value, outputsOf), MissingOutputError, value);
  }
  assert.throws(() => resolveReferences("^prep.outputs.missing", outputsOf), /reported no output/);
  assert.throws(() => resolveReferences("{^other.outputs.x}", outputsOf), MissingOutputError);
  assert.equal(unresolvableReason(parseReference("^prep.outputs.words")!), undefined);
  assert.match(unresolvableReason(parseReference("^prep.outputs.")!) ?? "", /cannot be resolved/);
});

test("validation refuses an argument reference that could never be resolved, at its position", () => {
  const text = [
    "tasks:",
    "- {name: prep, image: i, command: c}",
    "- name: use",
    "  image: i",
    "  command: c",
    "  args: ['--a={^prep}', '^prep.outputs.words']",
    "  env: {X: ^prep}",
  ].join("\n");
  const result = loadPipeline(text, { file: "p/main.yml", path: "p" });
  const errors = result.problems.filter((p) => p.severity === "error");
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0]!.message, /\{\^prep\} cannot be resolved/);
  assert.equal(errors[0]!.line, 6);
  assert.equal(errors[0]!.field, "args[0]");
  // Both references and the env value still make prep a dependency.
  const ok = loadPipeline(text.replace("'--a={^prep}', ", ""), { file: "p/main.yml", path: "p" });
  assert.equal(ok.valid, true);
  assert.deepEqual(ok.pipeline?.tasks[1]?.depends, ["prep"]);
});
