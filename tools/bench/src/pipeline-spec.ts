// Benchmark: parse + validate + build the DAG of a 100,000-task pipeline. Prints JSON.
// Each measurement runs in a fresh child process so its peak memory is its own.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadPipeline } from "@odin/pipeline-spec";
import { generatePipelineYaml } from "./generate.js";

interface Sample {
  ms: number;
  peakRssMB: number;
  tasks: number;
  valid: boolean;
}

function measure(file: string): Sample {
  const text = readFileSync(file, "utf8");
  const start = performance.now();
  const result = loadPipeline(text, { file: "main.yml", path: "bench" });
  const order = result.graph?.topologicalOrder() ?? [];
  const ms = performance.now() - start;
  if (order.length !== result.pipeline?.tasks.length) throw new Error("the DAG lost tasks");
  return {
    ms,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    tasks: order.length,
    valid: result.valid,
  };
}

const childFlag = process.argv.indexOf("--child");
if (childFlag !== -1) {
  process.stdout.write(JSON.stringify(measure(process.argv[childFlag + 1]!)));
} else {
  const tasks = Number(process.env.BENCH_TASKS ?? 100_000);
  const runs = Number(process.env.BENCH_RUNS ?? 5);
  const dir = mkdtempSync(join(tmpdir(), "odin-bench-"));
  try {
    const file = join(dir, "main.yml");
    const yaml = generatePipelineYaml(tasks);
    writeFileSync(file, yaml);
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const out = execFileSync(
        process.execPath,
        [fileURLToPath(import.meta.url), "--child", file],
        {
          encoding: "utf8",
          maxBuffer: 1 << 20,
        },
      );
      samples.push(JSON.parse(out) as Sample);
    }
    const times = samples.map((s) => s.ms).sort((a, b) => a - b);
    const round = (n: number): number => Math.round(n * 10) / 10;
    process.stdout.write(
      JSON.stringify(
        {
          benchmark: "pipeline-spec: parse + validate + DAG",
          tasks: samples[0]!.tasks,
          valid: samples.every((s) => s.valid),
          bytes: Buffer.byteLength(yaml),
          runs,
          ms: {
            min: round(times[0]!),
            median: round(times[Math.floor(times.length / 2)]!),
            max: round(times[times.length - 1]!),
          },
          peakRssMB: round(Math.max(...samples.map((s) => s.peakRssMB))),
          target: { ms: 2000, peakRssMB: 500 },
        },
        null,
        2,
      ) + "\n",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
