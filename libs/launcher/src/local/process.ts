// The pieces of running a task as a local process that need no backend state: its environment,
// finding its program, the supervisor that records its exit status, its outputs file, and telling
// processes and process groups apart.
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { taskId } from "@odin/pipeline-spec";
import { InvalidArgumentError } from "@odin/service-kit";
import type { Observation } from "../attempt/core.js";
import type { LaunchSpec } from "../backend.js";

/** Variables of the parent's environment a task gets by default; everything else stays out. */
export const defaultInheritedEnv: readonly string[] = Object.freeze(["PATH", "HOME", "LANG"]);

/**
 * The environment of a task's process, lowest layer first: the inherited variables, the task's
 * `env`, the processing variables, Odin's ids. A task's `env` may replace an inherited variable
 * (its own `PATH`, say) but not a processing variable or an `ODIN_*` id, which say where the task
 * runs and who it is — the Kubernetes backend protects the ids the same way.
 */
export function taskEnvironment(
  spec: LaunchSpec,
  inherited: Readonly<Record<string, string>>,
): Record<string, string> {
  const id = taskId(spec.runId, spec.task.name);
  const reserved: Record<string, string> = {
    ROOT_PATH: spec.paths.rootPath,
    WORK_PATH: spec.paths.workPath,
    DATA_PATH: spec.paths.dataPath,
    RUN_PATH: spec.paths.runPath,
    TASK_PATH: spec.paths.taskPath,
    PIPE_ID: spec.runId,
    TASK_ID: id,
    TASK_NAME: spec.task.name,
    ODIN_TASK_ID: id,
    ODIN_RUN_ID: spec.runId,
    ODIN_ATTEMPT: String(spec.attempt),
  };
  return { ...inherited, ...spec.task.env, ...reserved };
}

/** Picks `names` out of `source`, skipping the unset ones. */
export function pickEnv(
  source: Readonly<Record<string, string | undefined>>,
  names: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = source[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Throws when the task's program cannot be handed to `spawn` (empty command, NUL bytes, bad env names). */
export function checkProgram(spec: LaunchSpec): void {
  const { command, args, env } = spec.task;
  const where = `task "${spec.task.name}"`;
  if (!Array.isArray(command) || command.length === 0 || !command[0]) {
    throw new InvalidArgumentError(`${where} has no command to run`);
  }
  for (const [field, list] of [
    ["command", command],
    ["args", args],
  ] as const) {
    list.forEach((value, i) => {
      if (typeof value !== "string" || value.includes("\0")) {
        throw new InvalidArgumentError(`${where}: ${field}[${i}] must be text without NUL bytes`);
      }
    });
  }
  for (const [name, value] of Object.entries(env)) {
    if (name.length === 0 || name.includes("=") || name.includes("\0")) {
      throw new InvalidArgumentError(`${where}: env name ${JSON.stringify(name)} is not valid`);
    }
    if (typeof value !== "string" || value.includes("\0")) {
      throw new InvalidArgumentError(`${where}: env ${name} must be text without NUL bytes`);
    }
  }
}

/** What came of reading `$TASK_PATH/outputs.json`. */
export interface OutputsResult {
  /** The outputs, as compact JSON text of an object. */
  json?: string;
  /** Why the file was ignored, for a warning. */
  problem?: string;
}

/** Default limit on the size of `outputs.json` (64 KiB). */
export const defaultMaxOutputsBytes = 64 * 1024;

/**
 * Reads `outputs.json` in `taskPath`. No file: nothing. A symbolic link, a non-regular file, a
 * file over `maxBytes`, or anything but a JSON object: ignored, with the reason.
 */
export async function readOutputs(taskPath: string, maxBytes: number): Promise<OutputsResult> {
  const path = join(taskPath, "outputs.json");
  let file;
  try {
    // No following links (the file must be the task's own), no blocking on a FIFO.
    file = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return {};
    if (code === "ELOOP") return { problem: "outputs.json is a symbolic link" };
    return { problem: `outputs.json cannot be read (${(error as Error).message})` };
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) return { problem: "outputs.json is not a regular file" };
    if (stat.size > maxBytes) {
      return { problem: `outputs.json is ${stat.size} bytes; the limit is ${maxBytes}` };
    }
    const buf = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await file.read(buf, 0, maxBytes + 1, 0);
    if (bytesRead > maxBytes)
      return { problem: `outputs.json is over the limit of ${maxBytes} bytes` };
    let value: unknown;
    try {
      value = JSON.parse(buf.subarray(0, bytesRead).toString("utf8"));
    } catch (error) {
      return { problem: `outputs.json is not valid JSON (${(error as Error).message})` };
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return { problem: "outputs.json must hold a JSON object" };
    }
    return { json: JSON.stringify(value) };
  } finally {
    await file.close();
  }
}

/** The program a task's command names, found as `execvp` finds it, or why it cannot run. */
export type ProgramLookup = { path: string } | { reason: string; message: string };

/** The search path `execvp` uses when the environment has no PATH. */
const defaultSearchPath = "/usr/bin:/bin";

/**
 * Finds `file` as `execvp` would with the task's PATH (relative to `cwd` when it holds a `/`):
 * the first executable regular file. Says why not when there is none — not found, found but not
 * executable, or a script whose `#!` interpreter is missing — in the words a failed spawn used.
 */
export function findProgram(file: string, cwd: string, searchPath?: string): ProgramLookup {
  const candidates = file.includes("/")
    ? [resolve(cwd, file)]
    : (searchPath ?? defaultSearchPath).split(delimiter).map((dir) => resolve(cwd, dir, file));
  let denied = false;
  for (const path of candidates) {
    let regular: boolean;
    try {
      regular = statSync(path).isFile();
    } catch {
      continue;
    }
    try {
      if (!regular) throw new Error("not a regular file");
      accessSync(path, fsConstants.X_OK);
    } catch {
      denied = true;
      continue;
    }
    const interpreter = shebangInterpreter(path);
    if (interpreter !== undefined && isAbsolute(interpreter) && !existsSync(interpreter)) {
      return {
        reason: "CommandNotFound",
        message: `command not found: the interpreter on the #! line of ${file}`,
      };
    }
    return { path };
  }
  return denied
    ? {
        reason: "CommandNotExecutable",
        message: `command cannot be executed (permission denied): ${file}`,
      }
    : { reason: "CommandNotFound", message: `command not found: ${file}` };
}

/** The interpreter a script's `#!` line names, if it has one. */
function shebangInterpreter(path: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const head = Buffer.alloc(256);
    const n = readSync(fd, head, 0, head.length, 0);
    const text = head.subarray(0, n).toString("latin1");
    if (!text.startsWith("#!")) return undefined;
    return (
      text
        .slice(2)
        .split("\n")[0]!
        .trim()
        .split(/[ \t]+/)[0] || undefined
    );
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The supervisor each task runs under (bash, `-c`): it leads the task's process group, starts the
 * program as a child (`exec -a` keeps its argv[0] as the command gave it), waits for it — a
 * SIGTERM/SIGINT/SIGHUP to the group reaches the program while the supervisor waits on — and
 * writes its exit status (128+n for a signal, as a shell reports it) to a file. Task processes
 * outlive a launcher killed with SIGKILL; that file tells the next launcher how they ended, which
 * only a parent could otherwise learn. Arguments: the status file, argv[0], the program's path,
 * its arguments. The supervisor's own stderr goes nowhere; the program's goes to the log.
 */
export const supervisorScript = [
  "exec 3>&2 2>/dev/null",
  "trap : TERM INT HUP",
  '(exec 2>&3 3>&-; exec -a "$2" "$3" "${@:4}")',
  "code=$?",
  'printf "%d\\n" "$code" >"$1"',
  'exit "$code"',
].join("\n");

/**
 * The command line running `program` under {@link supervisorScript} with `bash` (POSIX mode: it
 * reads no startup file, whatever the task's environment says).
 */
export function supervisedCommand(
  bash: string,
  statusFile: string,
  argv0: string,
  program: string,
  args: readonly string[],
): [string, string[]] {
  return [
    bash,
    ["--posix", "-c", supervisorScript, "odin-task", statusFile, argv0, program, ...args],
  ];
}

/** The exit status a supervisor recorded, or undefined when it wrote none (it was killed, or runs). */
export function readExitStatus(statusFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(statusFile, "utf8");
  } catch {
    return undefined;
  }
  const code = Number(text.trim());
  return text.trim() !== "" && Number.isInteger(code) && code >= 0 && code <= 255
    ? code
    : undefined;
}

/**
 * The exit code and signal a recorded status stands for: above 128, a known signal's 128+n is
 * death by that signal (as a shell, and a container runtime, report it).
 */
export function statusToExit(code: number): { code: number | null; signal: NodeJS.Signals | null } {
  if (code > 128) {
    const signal = Object.entries(osConstants.signals).find(([, n]) => n === code - 128)?.[0];
    if (signal !== undefined) return { code: null, signal: signal as NodeJS.Signals };
  }
  return { code, signal: null };
}

/** What `/proc/<pid>/stat` says about a process (Linux). */
export interface ProcessInfo {
  /** One-letter state (`R`, `S`, `Z` for a zombie …). */
  state: string;
  /** Process group id. */
  pgrp: number;
  /** Start time in clock ticks since boot: with the pid, it identifies a process despite pid reuse. */
  start: string;
}

/** The process's state, group and start time, or undefined when it is gone or there is no /proc. */
export function processInfo(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses; the fields after it are plain.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const [state, pgrp, start] = [fields[0], fields[2], fields[19]];
  if (state === undefined || pgrp === undefined || start === undefined) return undefined;
  return { state, pgrp: Number(pgrp), start };
}

/** The exit code a shell (and a container runtime) reports for death by `signal`: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number | undefined {
  const n = (osConstants.signals as Partial<Record<string, number>>)[signal];
  return n === undefined ? undefined : 128 + n;
}

/** Sends `signal` to the process group led by `pid`; false when the group is gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/** What the local backend reports as the image digest of every attempt (it runs no image). */
export const localImageDigest = "local";

/**
 * How a process's exit ends its attempt: exit code 0 is SUCCEEDED, another code FAILED/`Error`,
 * a signal FAILED with the signal's name (exit code 128+n, as a shell reports it).
 */
export function exitOutcome(
  code: number | null,
  signal: NodeJS.Signals | null,
  outputsJson?: string,
): Observation {
  const exitCode = code ?? (signal ? signalExitCode(signal) : undefined);
  let outcome: Observation;
  // The local backend runs no image: `local` stands for "the host's programs" in the cache key.
  if (code === 0) outcome = { state: "SUCCEEDED", imageDigest: localImageDigest };
  else if (code !== null) {
    outcome = { state: "FAILED", reason: "Error", message: `exited with code ${code}` };
  } else {
    const name = signal ?? "unknown signal";
    outcome = { state: "FAILED", reason: name, message: `killed by signal ${name}` };
  }
  if (exitCode !== undefined) outcome.exitCode = exitCode;
  if (outputsJson !== undefined) outcome.outputsJson = outputsJson;
  return outcome;
}

/** Why `spawn` could not start `file` (run in `cwd`), in words for the task's log and event. */
export function spawnFailure(
  error: NodeJS.ErrnoException,
  file: string,
  cwd: string,
): { reason: string; message: string } {
  if (error.code === "ENOENT") {
    // A script that exists but whose interpreter does not fails the same way.
    const message =
      file.includes("/") && existsSync(resolve(cwd, file))
        ? `command not found: the interpreter on the #! line of ${file}`
        : `command not found: ${file}`;
    return { reason: "CommandNotFound", message };
  }
  if (error.code === "EACCES") {
    return {
      reason: "CommandNotExecutable",
      message: `command cannot be executed (permission denied): ${file}`,
    };
  }
  return { reason: "SpawnFailed", message: `cannot run ${file}: ${error.message}` };
}
