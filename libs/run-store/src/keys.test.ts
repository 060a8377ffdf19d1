import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonCodec } from "./codec.js";
import { runKeys } from "./keys.js";
import { InvalidKeyError, matchesFilter, normalizeFilter } from "./store.js";

test("runKeys lays out one key per run and one per task, and reads them back", () => {
  assert.equal(runKeys.run("train-x7k2"), "run.train-x7k2");
  assert.equal(runKeys.task("train-x7k2", "prep"), "run.train-x7k2.task.prep");
  assert.equal(runKeys.tasks("train-x7k2"), "run.train-x7k2.task.");
  assert.deepEqual(runKeys.parse("run.train-x7k2"), { runId: "train-x7k2" });
  assert.deepEqual(runKeys.parse("run.train-x7k2.task.prep"), {
    runId: "train-x7k2",
    taskName: "prep",
  });
  for (const key of ["run", "runs.a", "run.a.b", "run.a.task", "run.a.task.b.c"]) {
    assert.equal(runKeys.parse(key), undefined, key);
  }
  assert.throws(() => runKeys.run("a.b"), /run id "a.b" cannot be part of a key/);
  assert.throws(() => runKeys.task("a", ""), InvalidKeyError);
  assert.throws(() => runKeys.tasks("a*"), InvalidKeyError);
});

test("filters: empty is everything, a trailing dot is a prefix, * is one token, > the rest", () => {
  assert.equal(normalizeFilter(""), ">");
  assert.equal(normalizeFilter("run.a."), "run.a.>");
  assert.equal(normalizeFilter("run.*"), "run.*");
  const cases: [string, string, boolean][] = [
    ["run.a.>", "run.a.task.x", true],
    ["run.a.>", "run.a", false],
    ["run.a.>", "run.ab.task.x", false],
    ["run.*", "run.a", true],
    ["run.*", "run.a.task.x", false],
    ["run.*.task.x", "run.b.task.x", true],
    ["run.a", "run.a", true],
    ["run.a", "run.ab", false],
    [">", "anything.at.all", true],
  ];
  for (const [pattern, key, expected] of cases) {
    assert.equal(matchesFilter(pattern, key), expected, `${pattern} ~ ${key}`);
  }
  for (const bad of ["run..", "run.>.a", "a b.", ".", "run.a*"]) {
    assert.throws(() => normalizeFilter(bad), InvalidKeyError, bad);
  }
});

test("jsonCodec round-trips values and names bad bytes", () => {
  const codec = jsonCodec<{ state: string; attempt: number }>();
  const value = { state: "running", attempt: 2 };
  assert.deepEqual(codec.decode(codec.encode(value)), value);
  assert.throws(() => codec.decode(new Uint8Array([0xff, 0xfe])), /not UTF-8 JSON/);
  const checked = jsonCodec((v) => {
    if (typeof v !== "number") throw new TypeError("want a number");
    return v;
  });
  assert.throws(() => checked.decode(new TextEncoder().encode('"x"')), /want a number/);
});
