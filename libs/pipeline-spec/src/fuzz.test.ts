// Fuzzing, bounded by count (not time): thousands of generated and mutated main.yml documents go
// through the validator. None may throw or hang; every refusal is a structured problem with a
// position inside the document; the work each takes (nodes read, keys merged) is bounded by its
// size. Seeded, so a failure names the seed and document that reproduce it.
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadPipeline } from "./load.js";
import { mergeKeyBudget, parseSource } from "./source.js";

/** Documents fuzzed per run; `ODIN_FUZZ_COUNT` raises it for a longer local session. */
const count = Number(process.env["ODIN_FUZZ_COUNT"] ?? 3000);
const seed = Number(process.env["ODIN_FUZZ_SEED"] ?? 20261202);

/** A small, fast, seeded PRNG (mulberry32). */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const testdata = new URL("../testdata/", import.meta.url);

function corpus(): string[] {
  const out: string[] = [];
  for (const dir of ["valid", "invalid"]) {
    for (const f of readdirSync(new URL(`${dir}/`, testdata))) {
      if (f.endsWith(".yml")) out.push(readFileSync(new URL(`${dir}/${f}`, testdata), "utf8"));
    }
  }
  return out;
}

/** Fragments that stress YAML and the pipeline format: anchors, merges, tags, odd scalars. */
const fragments = [
  ":",
  "- ",
  "  ",
  "\t",
  "\n",
  "{",
  "}",
  "[",
  "]",
  ",",
  "&a ",
  "*a",
  "<<: *a\n",
  "? ",
  "!!binary ",
  "!!map ",
  "%YAML 1.2\n",
  "---\n",
  "...\n",
  "#",
  "'",
  '"',
  "\\",
  "\u0000",
  "\uFEFF",
  "|\n",
  ">-\n",
  "name: ",
  "tasks:\n",
  "depends: ",
  "^",
  "{^a.out}",
  "$TASK_ID",
  "${RUN_PATH}",
  "retries: -1",
  "timeout: 1h30",
  "num_gpus: 1e400",
  "resource_type: TFJob",
  "num_workers: 0",
  "mounts: [",
  "0x1F",
  "0o777",
  "~",
  "null",
  ".inf",
  "2001-12-14t21:59:43.10-05:00",
  "[[[[[[[[",
  "]]]]]]]]",
  "x".repeat(300),
  "é中🙂",
];

function generated(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 8);
  const lines = rand() < 0.3 ? ["defaults: &d", "  image: i", "  command: c"] : [];
  lines.push(rand() < 0.9 ? "tasks:" : "tasks: 3");
  for (let i = 0; i < n; i++) {
    lines.push(`- name: t${Math.floor(rand() * n)}`);
    if (rand() < 0.8) lines.push("  image: python:3.11");
    if (rand() < 0.8) lines.push(`  command: ${rand() < 0.5 ? "echo" : "[sh, -c, 'exit 0']"}`);
    if (rand() < 0.4) lines.push(`  depends: t${Math.floor(rand() * n)}`);
    if (rand() < 0.2) lines.push("  <<: *d");
    if (rand() < 0.2)
      lines.push(
        `  resource_type: ${["Pod", "Job", "TFJob", "mpijob", "x"][Math.floor(rand() * 5)]}`,
      );
    if (rand() < 0.2) lines.push(`  num_workers: ${Math.floor(rand() * 5) - 1}`);
    if (rand() < 0.2) lines.push(`  args: ["{^t${Math.floor(rand() * n)}.out}", $TASK_PATH]`);
  }
  return lines.join("\n") + "\n";
}

function mutate(text: string, rand: () => number): string {
  let out = text;
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (out.length + 1));
    const len = Math.floor(rand() * 20);
    switch (Math.floor(rand() * 6)) {
      case 0: // insert a fragment
        out = out.slice(0, at) + fragments[Math.floor(rand() * fragments.length)]! + out.slice(at);
        break;
      case 1: // delete a range
        out = out.slice(0, at) + out.slice(at + len);
        break;
      case 2: // duplicate a range
        out = out.slice(0, at + len) + out.slice(at, at + len) + out.slice(at + len);
        break;
      case 3: // replace one character
        out = out.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + out.slice(at + 1);
        break;
      case 4: {
        // shift a line's indentation
        const lines = out.split("\n");
        const i = Math.floor(rand() * lines.length);
        lines[i] = rand() < 0.5 ? `  ${lines[i]}` : lines[i]!.replace(/^ {1,2}/, "");
        out = lines.join("\n");
        break;
      }
      default: {
        // swap two lines
        const lines = out.split("\n");
        const i = Math.floor(rand() * lines.length);
        const j = Math.floor(rand() * lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        out = lines.join("\n");
      }
    }
  }
  return out;
}

/** Checks one document's verdict; returns whether it was refused. */
function checkVerdict(text: string, label: string): boolean {
  const result = loadPipeline(text);
  assert.equal(typeof result.valid, "boolean", label);
  const lines = text.split("\n").length;
  for (const p of result.problems) {
    assert.equal(p.file, "main.yml", label);
    assert.ok(p.severity === "error" || p.severity === "warning", label);
    assert.ok(
      Number.isInteger(p.line) && p.line >= 1 && p.line <= lines + 1,
      `${label}: line ${p.line}`,
    );
    assert.ok(Number.isInteger(p.column) && p.column >= 1, `${label}: column ${p.column}`);
    assert.ok(typeof p.message === "string" && p.message.length > 0, label);
    assert.doesNotMatch(p.message, /\n\s+at /, `${label}: a stack trace in "${p.message}"`);
  }
  if (!result.valid)
    assert.ok(
      result.problems.some((p) => p.severity === "error"),
      label,
    );
  else assert.ok(result.pipeline && result.pipeline.tasks.length > 0, label);
  const { work } = parseSource(text);
  // A node takes at least one character or a key's colon; merges stay within their budget.
  assert.ok(work.nodes <= 2 * text.length + 2, `${label}: ${work.nodes} nodes`);
  assert.ok(
    work.mergedKeys <= mergeKeyBudget(text.length) + 1000,
    `${label}: ${work.mergedKeys} merged keys`,
  );
  return !result.valid;
}

test(`fuzz: ${count} generated and mutated documents get a structured verdict (seed ${seed})`, () => {
  const rand = prng(seed);
  const bases = corpus();
  let refused = 0;
  for (let i = 0; i < count; i++) {
    const base = i % 3 === 0 ? generated(rand) : bases[Math.floor(rand() * bases.length)]!;
    const text = i % 3 === 1 ? base : mutate(base, rand);
    if (checkVerdict(text, `document ${i} (seed ${seed}): ${JSON.stringify(text.slice(0, 200))}`))
      refused++;
  }
  console.log(`fuzz: ${count} documents, ${refused} refused, ${count - refused} accepted`);
  assert.ok(refused > count / 10 && refused < count, `${refused} of ${count} refused`);
});
