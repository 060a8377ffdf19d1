// Helpers for the *.test.ts files: where fixtures live and how to read them. Paths are computed
// from this module's URL so the tests run the same from src/ (tsx) and dist/ (node --test), in any
// checkout where shared/ sits beside the repository.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadPipeline, type LoadOptions, type LoadResult } from "./load.js";
import { formatProblem, type Problem } from "./problems.js";

/** The package root (`libs/pipeline-spec/`), whether this runs from src/ or dist/. */
export const packageRoot = new URL("../", import.meta.url);

/** The conformance corpus: `shared/conformance/`, a sibling of the repository checkout. */
export const conformanceRoot = new URL("../../../shared/conformance/", packageRoot);

/** Reads a file under the package's `testdata/`. */
export function readTestdata(relative: string): string {
  return readFileSync(new URL(`testdata/${relative}`, packageRoot), "utf8");
}

/** Reads a file of the conformance corpus. */
export function readConformance(relative: string): string {
  return readFileSync(new URL(relative, conformanceRoot), "utf8");
}

/** File-system path of a conformance file or directory. */
export function conformancePath(relative: string): string {
  return fileURLToPath(new URL(relative, conformanceRoot));
}

/** Loads a pipeline from text with the file name `main.yml` unless told otherwise. */
export function load(text: string, options: LoadOptions = {}): LoadResult {
  return loadPipeline(text, { file: "main.yml", ...options });
}

/** Loads a pipeline that must be valid with no problems at all, and returns its parts. */
export function loadValid(
  text: string,
  options: LoadOptions = {},
): Required<Pick<LoadResult, "pipeline" | "graph">> {
  const result = load(text, options);
  assert.deepEqual(result.problems, [], "expected no problems");
  assert.equal(result.valid, true);
  assert.ok(result.pipeline && result.graph);
  return { pipeline: result.pipeline, graph: result.graph };
}

/**
 * Loads a pipeline that must be valid with no problems, for a `describe` block: registers the
 * test that says so (a failed load then fails that test rather than the whole suite) and returns
 * the pipeline and graph for the block's other tests.
 */
export function loadInSuite(
  text: string,
  options: LoadOptions = {},
): Required<Pick<LoadResult, "pipeline" | "graph">> {
  const result = load(text, options);
  void test("loads with no problems", () => {
    assert.deepEqual(result.problems.map(formatProblem), []);
    assert.equal(result.valid, true);
  });
  return { pipeline: result.pipeline!, graph: result.graph! };
}

/** What one expected problem must be; `message` lists text the message must contain. */
export interface ExpectedProblem {
  severity?: Problem["severity"];
  line: number;
  column: number;
  task?: string;
  field?: string;
  message: (string | RegExp)[];
}

/** Asserts that `problems` are exactly `expected`, in order, position, task, field and message. */
export function assertProblems(
  problems: readonly Problem[],
  expected: readonly ExpectedProblem[],
  file = "main.yml",
): void {
  const shown = problems
    .map(
      (p) => `${p.line}:${p.column} ${p.severity} ${p.task ?? "-"} ${p.field ?? "-"}: ${p.message}`,
    )
    .join("\n");
  assert.equal(
    problems.length,
    expected.length,
    `expected ${expected.length} problems, got:\n${shown}`,
  );
  expected.forEach((want, i) => {
    const got = problems[i]!;
    const where = {
      severity: got.severity,
      file: got.file,
      line: got.line,
      column: got.column,
      task: got.task,
      field: got.field,
    };
    assert.deepEqual(
      where,
      {
        severity: want.severity ?? "error",
        file,
        line: want.line,
        column: want.column,
        task: want.task,
        field: want.field,
      },
      `problem ${i}: ${got.message}`,
    );
    for (const part of want.message) {
      if (typeof part === "string")
        assert.ok(
          got.message.includes(part),
          `problem ${i} message ${JSON.stringify(got.message)} lacks ${JSON.stringify(part)}`,
        );
      else assert.match(got.message, part);
    }
  });
}
