// The child processes a benchmark starts (Odin's apps, kube-sim): started with a minimal
// environment, ready when a line of their output matches, killed when the benchmark exits however
// it exits, and their CPU time read from /proc. With BENCH_CPU_PROF=<dir>, each child writes a V8
// CPU profile there when it exits (named after `label`), to see where a benchmark's CPU goes.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";

/** Every process started by {@link startChild}, in start order. */
export const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/**
 * The Node.js options of every child: those the image runs the services with (deploy/Dockerfile),
 * unless `BENCH_NODE_OPTIONS` says otherwise (empty: Node's defaults).
 */
const nodeOptions = process.env.BENCH_NODE_OPTIONS ?? "--v8-pool-size=1";

/** Starts `node args…` and resolves with it and the first match of `ready` in its output. */
export function startChild(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  label = basename(args[0] ?? "child"),
): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  const profileDir = process.env.BENCH_CPU_PROF;
  const profile = profileDir
    ? [
        "--cpu-prof",
        `--cpu-prof-dir=${profileDir}`,
        `--cpu-prof-name=${label}.${children.length}.cpuprofile`,
      ]
    : [];
  const proc = spawn(process.execPath, [...profile, ...args], {
    env: { PATH: process.env.PATH ?? "", NODE_OPTIONS: nodeOptions, ...env },
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

/** Pids of this process and its children (the services, nats-server, …). */
export function treePids(): number[] {
  const out = [process.pid];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * The pid of this process's child running `command` (e.g. `nats-server`), if there is one, other
 * than those in `except`.
 */
export function childNamed(command: string, except: readonly number[] = []): number | undefined {
  return treePids()
    .slice(1)
    .find((pid) => {
      if (except.includes(pid)) return false;
      try {
        return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === command;
      } catch {
        return false;
      }
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

/**
 * What a process has read and written so far through system calls (sockets and files), from
 * /proc: bytes and calls. Unlike CPU time these count work, so they do not move with the load.
 */
export function ioOf(pid: number | undefined): { bytes: number; calls: number } {
  try {
    const io = Object.fromEntries(
      readFileSync(`/proc/${pid}/io`, "utf8")
        .trim()
        .split("\n")
        .map((line) => line.split(": ") as [string, string]),
    );
    return {
      bytes: Number(io.rchar) + Number(io.wchar),
      calls: Number(io.syscr) + Number(io.syscw),
    };
  } catch {
    return { bytes: Number.NaN, calls: Number.NaN };
  }
}

/** Stops a child with SIGTERM and waits (up to `ms`) until it has exited. */
export async function stopChild(proc: ChildProcess, ms = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
