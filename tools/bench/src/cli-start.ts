// Benchmark: how fast the commands people type every day start, side by side with kubectl.
// Starts `odin server` on localhost, then runs `odin --version`, `odin status`,
// `kubectl version --client` and, as the floor any Node.js command starts from, `node -e 0`, in
// turn (A B C D A B C D …, so drifts in the machine's speed hit all alike), and prints each one's
// median wall time and the ratios to kubectl (pairwise, per round) as JSON.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const rounds = Number(process.env.BENCH_RUNS ?? 15);
const odin = fileURLToPath(new URL("../../../apps/cli/bin/odin.js", import.meta.url));
const kubectl = process.env.KUBECTL ?? "kubectl";

if (spawnSync(kubectl, ["version", "--client"], { stdio: "ignore" }).status !== 0) {
  process.stderr.write(
    `cli-start: ${kubectl} is not installed; it is the baseline (Debian: apt-get install kubernetes-client)\n`,
  );
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), "odin-bench-cli-"));
const server = spawn(process.execPath, [odin, "server", "--port", "0", "--data", dir], {
  stdio: ["ignore", "pipe", "inherit"],
});
try {
  const address = await new Promise<string>((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    server.once("exit", (code) => reject(new Error(`odin server exited with ${code}: ${out}`)));
  });

  const commands: Record<string, [string, string[]]> = {
    "odin --version": [process.execPath, [odin, "--version"]],
    "odin status": [process.execPath, [odin, "--server", address, "status"]],
    "kubectl version --client": [kubectl, ["version", "--client"]],
    "node -e 0": [process.execPath, ["-e", "0"]],
  };
  const times: Record<string, number[]> = {};
  const time = (name: string): number => {
    const [cmd, args] = commands[name]!;
    const start = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`${name} exited with ${r.status}: ${String(r.stderr)}`);
    return ms;
  };
  for (const name of Object.keys(commands)) time(name); // warm-up: the page cache, the server
  for (let i = 0; i < rounds; i++)
    for (const name of Object.keys(commands)) (times[name] ??= []).push(time(name));

  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  // Pairwise ratios (same round) are steadier on a busy machine than a ratio of medians.
  const ratio = (name: string): number =>
    median(times[name]!.map((t, i) => t / times["kubectl version --client"]![i]!));
  const round = (x: number, digits = 1): number => Number(x.toFixed(digits));
  process.stdout.write(
    JSON.stringify(
      {
        benchmark: "cli-start",
        rounds,
        medianWallMs: Object.fromEntries(
          Object.entries(times).map(([name, xs]) => [name, round(median(xs))]),
        ),
        ratioToKubectl: {
          "odin --version": round(ratio("odin --version"), 2),
          "odin status": round(ratio("odin status"), 2),
          "node -e 0 (Node.js's own start-up)": round(ratio("node -e 0"), 2),
        },
        target: "≤ 1.5 (issue 10)",
      },
      null,
      2,
    ) + "\n",
  );
} finally {
  server.kill("SIGTERM");
  await new Promise((done) => server.once("exit", done));
  rmSync(dir, { recursive: true, force: true });
}
