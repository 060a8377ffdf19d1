// The child processes a benchmark starts (Odin's apps, kube-sim): started with a minimal
// environment, ready when a line of their output matches, killed when the benchmark exits however
// it exits, and their CPU time read from /proc.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

/** Every process started by {@link startChild}, in start order. */
export const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/** Starts `node args…` and resolves with it and the first match of `ready` in its output. */
export function startChild(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  const proc = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        // Keep draining, but stop buffering.
        proc.stdout.off("data", onData);
        proc.stderr.off("data", onData);
        proc.stdout.resume();
        proc.stderr.resume();
        resolve({ proc, match: m });
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.once("exit", (code) => reject(new Error(`${args[0]} exited with ${code}:\n${out}`)));
  });
}

/** CPU time (user + system) of a process so far, in ms, from /proc; NaN once it is gone. */
export function cpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}
