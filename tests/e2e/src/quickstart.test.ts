// Quick start command 1, after its install step: odin server (embedded), the diamond example run
// end to end, its result and logs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "@odin/test-stack";

test("the quick start runs the diamond example in embedded mode and shows its result and logs", async () => {
  const { code, stdout, stderr } = await new Promise<{
    code: number;
    stdout: string;
    stderr: string;
  }>((resolve) => {
    execFile(
      "bash",
      [join(repoRoot, "tools", "quickstart.sh"), "--no-install"],
      { timeout: 120_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
  assert.equal(code, 0, stderr + stdout);
  assert.match(stdout, /^odin server listening on 127\.0\.0\.1:\d+ — auth off/m);
  assert.match(stdout, /^diamond\s+diamond\s+4\s+yes$/m);
  assert.match(stdout, /^run (diamond-[a-z0-9]{8}) SUCCEEDED in .*: 4 succeeded$/m);
  const runId = /^run (diamond-[a-z0-9]{8}) SUCCEEDED/m.exec(stdout)![1]!;
  assert.match(
    stdout,
    new RegExp(`^\\[prepare\\] prepare: ${runId}--prepare counted 7 words in words\\.txt$`, "m"),
  );
  assert.match(
    stdout,
    /^\[right\] right: prepare reported 7 words$/m,
    "^prepare.outputs.words reached the dependent",
  );
  assert.match(stdout, new RegExp(`^\\[report\\] report: done \\(run ${runId}\\)$`, "m"));
  assert.match(stdout, new RegExp(`^web UI: http://127\\.0\\.0\\.1:\\d+/runs/${runId}$`, "m"));
});
