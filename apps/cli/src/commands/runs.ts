// odin run, status, logs, events, cancel, retry, rm: runs over gRPC.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import {
  common,
  DagSchedulerServiceService as Scheduler,
  K8sLauncherServiceService as Launcher,
  type k8slauncher,
} from "@odin/proto";
import { connect, type ConnectionOptions } from "../connection.js";
import { CommandError, ExitCode } from "../exit.js";
import {
  printData,
  printEvent,
  runJson,
  runStateName,
  shortCommit,
  table,
  taskRunJson,
  taskStateName,
  type OutputFormat,
} from "../output.js";
import type { RpcChannel } from "../rpc.js";
import { duration, painter, stateColor, useColor } from "../style.js";

/** Options every run command takes. */
export interface RunCommandOptions extends ConnectionOptions {
  output: OutputFormat;
}

const NOT_FOUND = 5;
const finished = (s: string): boolean => s === "SUCCEEDED" || s === "FAILED" || s === "CANCELLED";
const taskFinished = (s: string): boolean => finished(s) || s === "ERROR" || s === "SKIPPED";

/** Splits `RUN` or a task id `RUN--TASK` into its parts. */
export function parseTarget(target: string): { runId: string; task?: string } {
  const at = target.indexOf("--");
  return at === -1 ? { runId: target } : { runId: target.slice(0, at), task: target.slice(at + 2) };
}

function parseLabels(labels: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new CommandError(`--label ${l}: use key=value`, ExitCode.usage);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

function taskDuration(t: common.TaskRun, now: number): string {
  const start = t.startTime ?? t.launchTime;
  if (!start) return "-";
  return duration((t.endTime?.getTime() ?? now) - start.getTime());
}

const why = (t: { reason: string; message: string }): string =>
  t.reason ? `${t.reason}${t.message ? `: ${t.message}` : ""}` : "";

/** The exit code of a finished run: 0 succeeded, 1 failed, 3 cancelled. */
function runExitCode(state: string): number {
  if (state === "SUCCEEDED") return ExitCode.ok;
  if (state === "CANCELLED") return ExitCode.cancelled;
  return ExitCode.failed;
}

/** Reads a run and all its task runs (a page at a time). */
async function getRun(
  channel: RpcChannel,
  runId: string,
): Promise<{ run: common.Run; tasks: common.TaskRun[] }> {
  const tasks: common.TaskRun[] = [];
  let run: common.Run | undefined;
  let token = "";
  do {
    const res = await channel.unary(Scheduler.getRun, {
      runId,
      taskPageSize: 5000,
      taskPageToken: token,
      tasks: [],
    });
    run = res.run;
    tasks.push(...res.taskRuns);
    token = res.nextTaskPageToken;
  } while (token);
  return { run: run!, tasks };
}

/** A parameter value as `--set` would write it: text as is, the rest as JSON. */
const parameterText = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));

/** `--values FILE`: a YAML (or JSON) map of parameter names to values. */
export async function readValues(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new CommandError(
      `--values ${file}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`,
      ExitCode.usage,
    );
  }
  const { default: jsyaml } = await import("js-yaml");
  let values: unknown;
  try {
    values = jsyaml.load(text, { schema: jsyaml.JSON_SCHEMA });
  } catch (error) {
    const e = error as { mark?: { line: number; column: number }; reason?: string };
    const at = e.mark ? `:${e.mark.line + 1}:${e.mark.column + 1}` : "";
    throw new CommandError(`${file}${at}: ${e.reason ?? (error as Error).message}`, ExitCode.usage);
  }
  if (values === null || values === undefined) return {};
  if (typeof values !== "object" || Array.isArray(values))
    throw new CommandError(
      `${file}: must be a map of parameter names to values (e.g. "lr: 0.01")`,
      ExitCode.usage,
    );
  return values as Record<string, unknown>;
}

/** `--set key=value` (repeatable): values as text; the server reads each as its declared type. */
export function parseSets(sets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new CommandError(`--set ${s}: use name=value`, ExitCode.usage);
    out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

/** `odin run PIPELINE`: submits a run and prints its id; with --follow, shows it live until it ends. */
export async function runCommand(
  pipeline: string | undefined,
  options: RunCommandOptions & {
    commit?: string;
    label: string[];
    follow?: boolean;
    set: string[];
    values?: string;
    sameAs?: string;
    /** false: `--no-cache`. */
    cache?: boolean;
  },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    // --same-as RUN: that run's pipeline, commit, labels and parameters; what is given here wins.
    let base: common.Run | undefined;
    if (options.sameAs) {
      base = (
        await channel.unary(Scheduler.getRun, {
          runId: options.sameAs,
          taskPageSize: 1,
          taskPageToken: "",
          tasks: [],
        })
      ).run!;
      if (pipeline && pipeline !== base.pipeline)
        throw new CommandError(
          `run ${base.id} is of pipeline ${base.pipeline}, not ${pipeline}; leave the pipeline out with --same-as`,
          ExitCode.usage,
        );
    }
    const path = pipeline ?? base?.pipeline;
    if (!path) throw new CommandError("name the pipeline to run, or --same-as RUN", ExitCode.usage);
    const parameters = {
      ...base?.parameters,
      ...(options.values ? await readValues(options.values) : {}),
      ...parseSets(options.set),
    };
    const res = await channel.unary(Scheduler.submitRun, {
      pipeline: path,
      commit: options.commit ?? base?.commit ?? "",
      labels: { ...base?.labels, ...parseLabels(options.label) },
      requestId: randomUUID(),
      parameters,
      noCache: options.cache === false,
    });
    const run = res.run!;
    if (!options.follow) {
      if (options.output !== "text") await printData(out, options.output, runJson(run));
      else out.write(`${run.id}\n`);
      return ExitCode.ok;
    }
    if (options.output === "text")
      out.write(
        `run ${run.id}: pipeline ${run.pipeline} at commit ${shortCommit(run.commit)}, ${run.taskCount} task${run.taskCount === 1 ? "" : "s"}\n`,
      );
    return await follow(channel, run.id, out, options.output);
  } finally {
    channel.close();
  }
}

/** A summary such as `3 succeeded, 2 errors, 1 skipped`. */
export function summarize(states: Iterable<string>): string {
  const counts = new Map<string, number>();
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts.entries()]
    .map(([s, n]) => {
      const word = s.toLowerCase();
      // ERROR is a noun; the other states read as adjectives ("2 failed").
      return `${n} ${s === "ERROR" && n !== 1 ? "errors" : word}`;
    })
    .join(", ");
}

/**
 * Follows a run until it ends: a live table on a terminal, one line per change otherwise, or one
 * JSON (or YAML) document per event with -o.
 */
async function follow(
  channel: RpcChannel,
  runId: string,
  out: NodeJS.WritableStream,
  format: OutputFormat,
): Promise<number> {
  const tty = format === "text" && Boolean((out as { isTTY?: boolean }).isTTY);
  const paint = painter(useColor(out) && format === "text");
  const tasks = new Map<string, common.TaskRun>();
  let run: common.Run | undefined;
  let drawn = 0;
  const render = (): void => {
    if (!tty) return;
    const now = Date.now();
    const rows = [...tasks.values()].map((t) => {
      const state = taskStateName(t.state);
      return [
        t.task,
        paint(stateColor(state), state.padEnd(9)),
        t.attempt > 0 ? String(t.attempt) : "-",
        taskDuration(t, now),
        why(t).slice(0, 80),
      ];
    });
    const text = table(["TASK", "STATE", "ATTEMPT", "DURATION", "REASON"], rows);
    if (drawn > 0) out.write(`\u001b[${drawn}A\u001b[0J`);
    out.write(text);
    drawn = text.split("\n").length - 1;
  };
  const line = async (t: common.TaskRun): Promise<void> => {
    if (format !== "text") {
      await printEvent(out, format, { kind: "task", task: taskRunJson(t) });
      return;
    }
    if (tty) return;
    const state = taskStateName(t.state);
    const extra = t.exitCode !== undefined && state !== "SUCCEEDED" ? ` exit ${t.exitCode}` : "";
    const reason = t.cachedFrom
      ? ` (cached from ${t.cachedFrom.runId})`
      : t.reason && state !== "SUCCEEDED" && state !== "RUNNING"
        ? ` (${why(t)})`
        : "";
    out.write(
      `${new Date().toISOString().slice(11, 19)} ${t.task} ${state}${t.attempt > 1 ? ` attempt ${t.attempt}` : ""}${extra}${reason}\n`,
    );
  };
  const runChanged = async (r: common.Run): Promise<void> => {
    const before = run;
    run = r;
    if (format !== "text" && (!before || before.state !== r.state || before.reason !== r.reason))
      await printEvent(out, format, { kind: "run", run: runJson(r) });
  };
  const timer = tty ? setInterval(render, 1000) : undefined;
  try {
    for await (const msg of channel.stream(Scheduler.watchRun, {
      runId,
      taskStatesFirst: false,
      maxSnapshotTaskRuns: 0,
    })) {
      const e = msg.event;
      if (!e) continue;
      if (e.$case === "snapshot") {
        if (e.value.run) await runChanged(e.value.run);
        for (const t of e.value.taskRuns) {
          tasks.set(t.task, t);
          if (t.state !== common.TaskState.TASK_STATE_PENDING) await line(t);
        }
        if (e.value.last) render();
      } else if (e.$case === "taskRun") {
        const before = tasks.get(e.value.task);
        tasks.set(e.value.task, e.value);
        if (!before || before.state !== e.value.state || before.attempt !== e.value.attempt)
          await line(e.value);
        render();
      } else if (e.$case === "run") {
        await runChanged(e.value);
      }
      if (run && finished(runStateName(run.state))) break;
    }
  } finally {
    if (timer) clearInterval(timer);
  }
  render();
  if (!run) return ExitCode.failed;
  const state = runStateName(run.state);
  if (format !== "text") return runExitCode(state);
  const took =
    run.startTime && run.endTime
      ? ` in ${duration(run.endTime.getTime() - run.startTime.getTime())}`
      : "";
  const cachedTasks = [...tasks.values()].filter((t) => t.cachedFrom).length;
  const summary =
    summarize([...tasks.values()].map((t) => taskStateName(t.state))) +
    (cachedTasks > 0 ? ` (${cachedTasks} cached)` : "");
  out.write(
    `run ${run.id} ${paint(stateColor(state), state)}${took}: ${summary}${run.reason ? ` — ${run.reason}` : ""}\n`,
  );
  return runExitCode(state);
}

/** The columns `odin status RUN` can show (`--columns`), in their default order. */
const taskColumns: Record<
  string,
  { header: string; cell(t: common.TaskRun, now: number): string }
> = {
  task: { header: "TASK", cell: (t) => t.task },
  state: { header: "STATE", cell: (t) => taskStateName(t.state) },
  attempt: { header: "ATTEMPT", cell: (t) => (t.attempt > 0 ? String(t.attempt) : "-") },
  duration: { header: "DURATION", cell: taskDuration },
  exit: { header: "EXIT", cell: (t) => (t.exitCode !== undefined ? String(t.exitCode) : "-") },
  object: { header: "OBJECT", cell: (t) => t.objectName || "-" },
  reason: { header: "REASON", cell: (t) => why(t) },
  launched: { header: "LAUNCHED", cell: (t) => time(t.launchTime) },
  started: { header: "STARTED", cell: (t) => time(t.startTime) },
  ended: { header: "ENDED", cell: (t) => time(t.endTime) },
  outputs: { header: "OUTPUTS", cell: (t) => t.outputsJson || "-" },
};
const defaultColumns = ["task", "state", "attempt", "duration", "exit", "object", "reason"];
// The original's column names (odin-status --columns) and what they are here.
const originalColumns: Record<string, string> = {
  status: "state",
  resource_id: "object",
  submitted: "launched",
  completed: "ended",
};

const time = (d: Date | undefined): string =>
  d ? d.toISOString().replace("T", " ").slice(0, 19) : "-";

function chooseColumns(spec: string | undefined, note: (text: string) => void): string[] {
  if (!spec) return defaultColumns;
  if (spec === "all") return Object.keys(taskColumns);
  const chosen: string[] = [];
  for (const raw of spec.split(",").map((c) => c.trim().toLowerCase())) {
    if (!raw) continue;
    const name = originalColumns[raw] ?? raw;
    if (taskColumns[name]) chosen.push(name);
    else
      note(
        `column "${raw}" is not recorded per task run here; the columns are ${Object.keys(taskColumns).join(", ")}`,
      );
  }
  return chosen.length > 0 ? chosen : defaultColumns;
}

/** A run's TASKS cell: finished of all (`3/4`), or the count alone for a run that kept no counts. */
function tasksDone(r: common.Run): string {
  const c = r.taskCounts;
  if (c === undefined) return String(r.taskCount);
  return `${c.succeeded + c.failed + c.error + c.skipped + c.cancelled}/${r.taskCount}`;
}

/** `odin status [RUN | RUN--TASK | PATTERN]`: a table of runs, one run's tasks, or one task. */
export async function statusCommand(
  target: string | undefined,
  options: RunCommandOptions & {
    pipeline?: string;
    all?: boolean;
    selector?: string;
    columns?: string;
  },
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const channel = connect(options);
  try {
    const paint = painter(useColor(out) && options.output === "text");
    const listRuns = async (): Promise<common.Run[]> =>
      (
        await channel.unary(Scheduler.listRuns, {
          pipeline: options.pipeline ?? "",
          states: [],
          labelSelector: options.selector ?? "",
          pageSize: options.all || target ? 10_000 : 20,
          pageToken: "",
        })
      ).runs;
    const printRuns = async (runs: common.Run[], more: boolean): Promise<number> => {
      if (options.output !== "text") {
        await printData(out, options.output, runs.map(runJson));
        return ExitCode.ok;
      }
      if (runs.length === 0) {
        // As kubectl's "No resources found": nothing on stdout, a line saying so on stderr.
        const filters = [
          options.pipeline ? `pipeline ${options.pipeline}` : "",
          options.selector ? `labels ${options.selector}` : "",
        ].filter(Boolean);
        err.write(
          filters.length > 0
            ? `no run matches ${filters.join(" and ")}\n`
            : 'no runs yet ("odin run PIPELINE" starts one)\n',
        );
        return ExitCode.ok;
      }
      const now = Date.now();
      const rows = runs.map((r) => {
        const state = runStateName(r.state);
        const took = r.startTime
          ? duration((r.endTime?.getTime() ?? now) - r.startTime.getTime())
          : "-";
        return [
          r.id,
          r.pipeline,
          paint(stateColor(state), state),
          tasksDone(r),
          time(r.createTime),
          took,
          runState(r).waiting,
        ];
      });
      out.write(
        table(["RUN", "PIPELINE", "STATE", "TASKS", "CREATED", "DURATION", "WAITING FOR"], rows),
      );
      if (more) out.write("(newest 20 shown; --all for every run)\n");
      return ExitCode.ok;
    };
    if (!target) {
      const runs = await listRuns();
      return printRuns(
        runs.slice(0, options.all ? runs.length : 20),
        !options.all && runs.length >= 20,
      );
    }
    const { runId, task } = parseTarget(target);
    let got: Awaited<ReturnType<typeof getRun>>;
    try {
      got = await getRun(channel, runId);
    } catch (e) {
      if ((e as { code?: number }).code !== NOT_FOUND || task) throw e;
      // Not a run id: the original's odin-status took a pattern, matched against run ids and
      // pipelines. One match shows that run; several, a table of them.
      const matches = (await listRuns()).filter(
        (r) =>
          r.id.startsWith(runId) ||
          r.pipeline.startsWith(runId) ||
          r.pipelineName.startsWith(runId),
      );
      if (matches.length === 0)
        throw new CommandError(
          `no run ${runId}, and no run whose id or pipeline starts with "${runId}" — odin status lists the runs`,
          ExitCode.notFound,
        );
      if (matches.length > 1) return printRuns(matches, false);
      got = await getRun(channel, matches[0]!.id);
    }
    const { run, tasks } = got;
    const shown = task ? tasks.filter((t) => t.task === task) : tasks;
    if (task && shown.length === 0)
      throw new CommandError(
        `run ${runId} has no task ${task}; its tasks are ${tasks.map((t) => t.task).join(", ")}`,
        ExitCode.notFound,
      );
    if (options.output !== "text") {
      await printData(
        out,
        options.output,
        task ? taskRunJson(shown[0]!) : { run: runJson(run), tasks: shown.map(taskRunJson) },
      );
      return ExitCode.ok;
    }
    const state = runStateName(run.state);
    if (task) {
      out.write(describeTask(shown[0]!, paint));
      return ExitCode.ok;
    }
    const waiting = runState(run).waiting;
    out.write(
      `run ${run.id}: ${paint(stateColor(state), state)} — pipeline ${run.pipeline} at commit ${shortCommit(run.commit)}, attempt ${run.attempt}${run.reason ? `, ${run.reason}` : ""}\n`,
    );
    if (waiting) out.write(`  waiting: ${waiting}\n`);
    if (run.submittedBy) out.write(`  submitted by: ${run.submittedBy}\n`);
    const params = Object.entries(run.parameters ?? {});
    if (params.length > 0)
      out.write(`  parameters: ${params.map(([k, v]) => `${k}=${parameterText(v)}`).join(" ")}\n`);
    for (const n of run.notifications)
      out.write(
        `  notify ${n.webhookSecret}: ${n.state}${n.attempts > 0 ? ` after ${n.attempts} attempt${n.attempts === 1 ? "" : "s"}` : ""}${n.error ? ` — ${n.error}` : ""}\n`,
      );
    const columns = chooseColumns(options.columns, (n) => err.write(`odin: note: ${n}\n`));
    const now = Date.now();
    const rows = shown.map((t) =>
      columns.map((c) => {
        const text = taskColumns[c]!.cell(t, now);
        return c === "state" ? paint(stateColor(text), text) : text;
      }),
    );
    out.write(
      table(
        columns.map((c) => taskColumns[c]!.header),
        rows,
      ),
    );
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}

/** Why a run that has not started is waiting, from its reason (e.g. the global task cap). */
function runState(r: common.Run): { waiting: string } {
  return { waiting: runStateName(r.state) === "PENDING" && r.reason ? why(r) : "" };
}

/** One task, every field, its outputs last. */
function describeTask(
  t: common.TaskRun,
  paint: (c: Parameters<ReturnType<typeof painter>>[0], s: string) => string,
): string {
  const state = taskStateName(t.state);
  const lines: [string, string][] = [
    ["task", t.taskId || t.task],
    ["state", paint(stateColor(state), state)],
    ["attempt", t.attempt > 0 ? String(t.attempt) : "-"],
    ["exit code", t.exitCode !== undefined ? String(t.exitCode) : "-"],
    ["reason", why(t) || "-"],
    ["object", t.objectName || "-"],
    ["launched", time(t.launchTime)],
    ["started", time(t.startTime)],
    ["ended", time(t.endTime)],
    ["duration", taskDuration(t, Date.now())],
  ];
  if (t.nextAttemptTime) lines.push(["next attempt", time(t.nextAttemptTime)]);
  if (t.cachedFrom)
    lines.push([
      "cached from",
      `run ${t.cachedFrom.runId} (attempt ${t.cachedFrom.attempt}), key ${t.cachedFrom.key.slice(0, 12)}`,
    ]);
  let text = lines.map(([k, v]) => `${k.padEnd(13)}${v}`).join("\n") + "\n";
  const outputs = t.outputsJson ? (JSON.parse(t.outputsJson) as unknown) : undefined;
  if (outputs && typeof outputs === "object" && Object.keys(outputs).length > 0) {
    text += "outputs:\n";
    for (const [k, v] of Object.entries(outputs as Record<string, unknown>))
      text += `  ${k}: ${typeof v === "string" ? v : JSON.stringify(v)}\n`;
  } else text += `outputs      -\n`;
  return text;
}

/** `odin cancel RUN`, `odin retry RUN`. */
export async function cancelOrRetryCommand(
  what: "cancel" | "retry",
  runId: string,
  options: RunCommandOptions & { follow?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const id = parseTarget(runId).runId;
    const res =
      what === "cancel"
        ? await channel.unary(Scheduler.cancelRun, {
            runId: id,
            reason: "cancelled with odin cancel",
          })
        : await channel.unary(Scheduler.retryRun, { runId: id, requestId: randomUUID() });
    const run = res.run!;
    // The server answers a cancel of an ended run with the run unchanged (cancelling is idempotent).
    if (what === "cancel" && finished(runStateName(run.state))) {
      if (options.output !== "text") await printData(out, options.output, runJson(run));
      throw new CommandError(
        `run ${run.id} already ended (${runStateName(run.state)}); there is nothing to cancel`,
        ExitCode.failed,
      );
    }
    if (options.follow) {
      // As odin run -f: the text line first, then the run live until it ends (its exit code).
      if (options.output === "text")
        out.write(`run ${run.id}: retrying as attempt ${run.attempt}\n`);
      return await follow(channel, run.id, out, options.output);
    }
    if (options.output !== "text") await printData(out, options.output, runJson(run));
    else
      out.write(
        what === "cancel"
          ? `run ${res.run!.id}: cancelling (running tasks are being stopped)\n`
          : `run ${res.run!.id}: retrying as attempt ${res.run!.attempt}\n`,
      );
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}

/** `odin rm RUN [--purge]`: stops a running run, removes its task objects; --purge also its records and data. */
export async function rmCommand(
  runId: string,
  options: RunCommandOptions & { purge?: boolean; purgeRecords?: boolean; purgeData?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const id = parseTarget(runId).runId;
    const res = await channel.unary(Scheduler.deleteRun, {
      runId: id,
      purgeRecords: Boolean(options.purge || options.purgeRecords),
      purgeData: Boolean(options.purge || options.purgeData),
    });
    if (options.output !== "text") await printData(out, options.output, res);
    else {
      const n = res.deletedObjects;
      out.write(
        `run ${id}: ${n} task object${n === 1 ? "" : "s"} removed${res.recordsPurged ? ", records purged" : ""}${res.dataPurged ? ", data purged" : ""}\n`,
      );
    }
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}

/** Waits (following the run) until `task` has an attempt, or returns its record if it ended without one. */
async function untilStarted(
  channel: RpcChannel,
  runId: string,
  task: string,
): Promise<common.TaskRun | undefined> {
  let current: common.TaskRun | undefined;
  for await (const msg of channel.stream(Scheduler.watchRun, {
    runId,
    taskStatesFirst: false,
    maxSnapshotTaskRuns: 0,
  })) {
    const e = msg.event;
    if (e?.$case === "snapshot") current = e.value.taskRuns.find((t) => t.task === task) ?? current;
    else if (e?.$case === "taskRun" && e.value.task === task) current = e.value;
    if (!current) continue;
    const state = taskStateName(current.state);
    if (state === "RUNNING" || (current.attempt > 0 && state !== "LAUNCHING")) return current;
    if (taskFinished(state)) return current;
  }
  return current;
}

/** `odin logs RUN|TASK`: a task's log (every task's, in order, for a run); -f follows. */
export async function logsCommand(
  target: string,
  options: RunCommandOptions & {
    follow?: boolean;
    tail?: number;
    attempt?: number;
    container?: string;
  },
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const { runId, task } = parseTarget(target);
  const channel = connect(options);
  try {
    const { tasks: all } = await getRun(channel, runId);
    const byName = new Map(all.map((t) => [t.task, t]));
    if (task && !byName.has(task))
      throw new CommandError(
        `run ${runId} has no task ${task}; its tasks are ${all.map((t) => t.task).join(", ")}`,
        ExitCode.notFound,
      );
    // A run's log is its started tasks' logs; following, tasks that start later are waited for.
    const names = task
      ? [task]
      : all.filter((t) => options.follow || t.attempt > 0).map((t) => t.task);
    const prefix = !task && names.length > 1;
    // Multi-worker tasks (TFJob, PyTorchJob, MPIJob, ElasticJob) have several pods: their lines
    // carry the pod's name. A finished task's pods are known before printing; while following,
    // replica pods are recognised by name, and any second pod turns prefixes on from then on.
    const replicaPod = /-(worker|master|launcher|chief|ps)(-\d+)?$/;
    const notStarted = (t: common.TaskRun): string =>
      `${t.task}: no log — the task ${taskStateName(t.state)} without running${why(t) ? ` (${why(t)})` : ""}`;
    let missing = 0;
    const stream = async (name: string): Promise<void> => {
      let record = byName.get(name)!;
      if (options.follow && !(record.attempt > 0 && taskStateName(record.state) !== "LAUNCHING")) {
        if (!taskFinished(taskStateName(record.state))) {
          if (options.output === "text" && !prefix)
            err.write(
              `odin: ${name} has not started yet (${taskStateName(record.state)}); waiting\n`,
            );
          record = (await untilStarted(channel, runId, name)) ?? record;
        }
      }
      const attempt = options.attempt ?? record.attempt;
      const lines: k8slauncher.LogLine[] = [];
      const pods = new Set<string>();
      const write = async (l: k8slauncher.LogLine, byPod: boolean): Promise<void> => {
        if (options.output !== "text") {
          await printEvent(out, options.output, {
            task: name,
            pod: l.pod,
            container: l.container,
            attempt,
            time: l.time?.toISOString(),
            text: l.line,
          });
          return;
        }
        const tags = [prefix ? name : "", byPod ? l.pod : ""].filter(Boolean).map((t) => `[${t}] `);
        out.write(`${tags.join("")}${l.line}\n`);
      };
      try {
        for await (const res of channel.stream(Launcher.streamLogs, {
          runId,
          task: name,
          attempt: options.attempt ?? 0,
          follow: Boolean(options.follow),
          tailLines: options.tail,
          pod: "",
          container: options.container ?? "",
        })) {
          for (const l of res.lines) {
            pods.add(l.pod);
            if (options.follow) await write(l, pods.size > 1 || replicaPod.test(l.pod));
            else lines.push(l);
          }
        }
      } catch (e) {
        // A task that ended before anything ran (e.g. MissingOutput) has no log: say so, go on.
        if ((e as { code?: number }).code !== NOT_FOUND) throw e;
        const now = (await getRun(channel, runId)).tasks.find((t) => t.task === name) ?? record;
        missing++;
        err.write(`odin: ${notStarted(now)}\n`);
        return;
      }
      for (const l of lines) await write(l, pods.size > 1);
    };
    if (options.follow) await Promise.all(names.map(stream));
    else for (const t of names) await stream(t);
    // One task asked for by name with no log at all is a failure; a run's missing ones are notes.
    return task && missing > 0 ? ExitCode.failed : ExitCode.ok;
  } finally {
    channel.close();
  }
}

/** `odin events RUN|TASK`: Kubernetes events of a task's objects and pods, or of every task of a run. */
export async function eventsCommand(
  target: string,
  options: RunCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const { runId, task } = parseTarget(target);
  const channel = connect(options);
  try {
    const names = task
      ? [task]
      : (await getRun(channel, runId)).tasks.filter((t) => t.attempt > 0).map((t) => t.task);
    const events: (k8slauncher.ObjectEvent & { task: string })[] = [];
    for (const name of names) {
      const res = await channel.unary(Launcher.listTaskEvents, { runId, task: name, attempt: 0 });
      events.push(...res.events.map((e) => ({ ...e, task: name })));
    }
    events.sort((a, b) => (a.time?.getTime() ?? 0) - (b.time?.getTime() ?? 0));
    if (options.output !== "text") {
      await printData(
        out,
        options.output,
        events.map((e) => ({ task: e.task, ...(eventJson(e) as object) })),
      );
      return ExitCode.ok;
    }
    const rows = events.map((e) => [
      time(e.time),
      ...(task ? [] : [e.task]),
      e.type,
      e.reason,
      `${e.objectKind}/${e.objectName}`,
      e.message,
    ]);
    out.write(
      table(["TIME", ...(task ? [] : ["TASK"]), "TYPE", "REASON", "OBJECT", "MESSAGE"], rows),
    );
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}

function eventJson(e: k8slauncher.ObjectEvent): unknown {
  return {
    time: e.time?.toISOString(),
    type: e.type,
    reason: e.reason,
    message: e.message,
    objectKind: e.objectKind,
    objectName: e.objectName,
    source: e.source,
    count: e.count,
    attempt: e.attempt,
  };
}
