// odin run, status, logs, events, cancel, retry, rm: runs over gRPC.
import { randomUUID } from "node:crypto";
import {
  common,
  k8slauncher,
  DagSchedulerServiceClient,
  K8sLauncherServiceClient,
  type dagscheduler,
} from "@odin/proto";
import { serverStream, unary } from "@odin/service-kit";
import { connect, type ConnectionOptions } from "../connection.js";
import { printData, shortCommit, table, type OutputFormat } from "../output.js";
import { duration, painter, stateColor, useColor } from "../style.js";

/** Options every run command takes. */
export interface RunCommandOptions extends ConnectionOptions {
  output: OutputFormat;
}

const runState = (s: common.RunState): string => common.runStateToJSON(s).replace("RUN_STATE_", "");
const taskState = (s: common.TaskState): string =>
  common.taskStateToJSON(s).replace("TASK_STATE_", "");
const finished = (s: string): boolean => s === "SUCCEEDED" || s === "FAILED" || s === "CANCELLED";

/** Splits `RUN` or a task id `RUN--TASK` into its parts. */
export function parseTarget(target: string): { runId: string; task?: string } {
  const at = target.indexOf("--");
  return at === -1 ? { runId: target } : { runId: target.slice(0, at), task: target.slice(at + 2) };
}

function parseLabels(labels: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new Error(`--label ${l}: use key=value`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

function taskDuration(t: common.TaskRun, now: number): string {
  const start = t.startTime ?? t.launchTime;
  if (!start) return "-";
  return duration((t.endTime?.getTime() ?? now) - start.getTime());
}

/** `odin run PIPELINE`: submits a run and prints its id; with --follow, shows it live until it ends. */
export async function runCommand(
  pipeline: string,
  options: RunCommandOptions & { commit?: string; label: string[]; follow?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  const { client } = connect(DagSchedulerServiceClient, options);
  try {
    const res = await unary(client, "submitRun", {
      pipeline,
      commit: options.commit ?? "",
      labels: parseLabels(options.label),
      requestId: randomUUID(),
    });
    const run = res.run!;
    if (!options.follow) {
      if (options.output !== "text") printData(out, options.output, common.Run.toJSON(run));
      else out.write(`${run.id}\n`);
      return 0;
    }
    out.write(
      `run ${run.id}: pipeline ${run.pipeline} at commit ${shortCommit(run.commit)}, ${run.taskCount} task${run.taskCount === 1 ? "" : "s"}\n`,
    );
    return await follow(client, run.id, out);
  } finally {
    client.close();
  }
}

/** Follows a run until it ends: a live table on a terminal, one line per change otherwise. */
async function follow(
  client: DagSchedulerServiceClient,
  runId: string,
  out: NodeJS.WritableStream,
): Promise<number> {
  const tty = Boolean((out as { isTTY?: boolean }).isTTY);
  const paint = painter(useColor(out));
  const tasks = new Map<string, common.TaskRun>();
  let run: common.Run | undefined;
  let drawn = 0;
  const render = (): void => {
    if (!tty) return;
    const now = Date.now();
    const rows = [...tasks.values()].map((t) => {
      const state = taskState(t.state);
      return [
        t.task,
        paint(stateColor(state), state.padEnd(9)),
        t.attempt > 0 ? String(t.attempt) : "-",
        taskDuration(t, now),
        t.reason ? `${t.reason}${t.message ? `: ${t.message}` : ""}`.slice(0, 80) : "",
      ];
    });
    const text = table(["TASK", "STATE", "ATTEMPT", "DURATION", "REASON"], rows);
    if (drawn > 0) out.write(`\u001b[${drawn}A\u001b[0J`);
    out.write(text);
    drawn = text.split("\n").length - 1;
  };
  const line = (t: common.TaskRun): void => {
    if (tty) return;
    const state = taskState(t.state);
    const extra = t.exitCode !== undefined && state !== "SUCCEEDED" ? ` exit ${t.exitCode}` : "";
    const why =
      t.reason && state !== "SUCCEEDED" && state !== "RUNNING"
        ? ` (${t.reason}${t.message ? `: ${t.message}` : ""})`
        : "";
    out.write(
      `${new Date().toISOString().slice(11, 19)} ${t.task} ${state}${t.attempt > 1 ? ` attempt ${t.attempt}` : ""}${extra}${why}\n`,
    );
  };
  const timer = tty ? setInterval(render, 1000) : undefined;
  try {
    for await (const msg of serverStream(client, "watchRun", { runId })) {
      const e = msg.event;
      if (!e) continue;
      if (e.$case === "snapshot") {
        if (e.value.run) run = e.value.run;
        for (const t of e.value.taskRuns) {
          tasks.set(t.task, t);
          if (t.state !== common.TaskState.TASK_STATE_PENDING) line(t);
        }
        if (e.value.last) render();
      } else if (e.$case === "taskRun") {
        const before = tasks.get(e.value.task);
        tasks.set(e.value.task, e.value);
        if (!before || before.state !== e.value.state || before.attempt !== e.value.attempt)
          line(e.value);
        render();
      } else if (e.$case === "run") {
        run = e.value;
      }
      if (run && finished(runState(run.state))) break;
    }
  } finally {
    if (timer) clearInterval(timer);
  }
  render();
  if (!run) return 1;
  const state = runState(run.state);
  const counts = new Map<string, number>();
  for (const t of tasks.values())
    counts.set(taskState(t.state), (counts.get(taskState(t.state)) ?? 0) + 1);
  const took =
    run.startTime && run.endTime
      ? ` in ${duration(run.endTime.getTime() - run.startTime.getTime())}`
      : "";
  const summary = [...counts.entries()].map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", ");
  out.write(
    `run ${run.id} ${paint(stateColor(state), state)}${took}: ${summary}${run.reason && state !== "SUCCEEDED" ? ` — ${run.reason}` : ""}\n`,
  );
  return state === "SUCCEEDED" ? 0 : 1;
}

/** `odin status [RUN]`: a table of runs, or one run's tasks. */
export async function statusCommand(
  target: string | undefined,
  options: RunCommandOptions & { pipeline?: string; all?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  const { client } = connect(DagSchedulerServiceClient, options);
  try {
    const paint = painter(useColor(out) && options.output === "text");
    const now = Date.now();
    if (!target) {
      const res = await unary(client, "listRuns", {
        pipeline: options.pipeline ?? "",
        states: [],
        labelSelector: "",
        pageSize: options.all ? 10_000 : 20,
        pageToken: "",
      });
      if (options.output !== "text") {
        printData(
          out,
          options.output,
          res.runs.map((r) => common.Run.toJSON(r)),
        );
        return 0;
      }
      const rows = res.runs.map((r) => {
        const state = runState(r.state);
        const took = r.startTime
          ? duration((r.endTime?.getTime() ?? now) - r.startTime.getTime())
          : "-";
        return [
          r.id,
          r.pipeline,
          paint(stateColor(state), state),
          String(r.taskCount),
          r.createTime?.toISOString().replace("T", " ").slice(0, 19) ?? "-",
          took,
        ];
      });
      out.write(table(["RUN", "PIPELINE", "STATE", "TASKS", "CREATED", "DURATION"], rows));
      if (res.nextPageToken) out.write("(newest 20 shown; --all for every run)\n");
      return 0;
    }
    const { runId, task } = parseTarget(target);
    const taskRuns: common.TaskRun[] = [];
    let run: common.Run | undefined;
    let token = "";
    do {
      const res: dagscheduler.GetRunResponse = await unary(client, "getRun", {
        runId,
        taskPageSize: 5000,
        taskPageToken: token,
      });
      run = res.run;
      taskRuns.push(...res.taskRuns);
      token = res.nextTaskPageToken;
    } while (token);
    const shown = task ? taskRuns.filter((t) => t.task === task) : taskRuns;
    if (task && shown.length === 0) throw new Error(`run ${runId} has no task ${task}`);
    if (options.output !== "text") {
      const tasksJson = shown.map((t) => common.TaskRun.toJSON(t));
      printData(
        out,
        options.output,
        task ? tasksJson[0] : { run: common.Run.toJSON(run!), tasks: tasksJson },
      );
      return 0;
    }
    const state = runState(run!.state);
    out.write(
      `run ${run!.id}: ${paint(stateColor(state), state)} — pipeline ${run!.pipeline} at commit ${shortCommit(run!.commit)}, attempt ${run!.attempt}${run!.reason && state !== "SUCCEEDED" ? `, ${run!.reason}` : ""}\n`,
    );
    const rows = shown.map((t) => {
      const s = taskState(t.state);
      return [
        t.task,
        paint(stateColor(s), s),
        t.attempt > 0 ? String(t.attempt) : "-",
        taskDuration(t, now),
        t.exitCode !== undefined ? String(t.exitCode) : "-",
        t.objectName || "-",
        t.reason ? `${t.reason}${t.message ? `: ${t.message}` : ""}` : "",
      ];
    });
    out.write(table(["TASK", "STATE", "ATTEMPT", "DURATION", "EXIT", "OBJECT", "REASON"], rows));
    return 0;
  } finally {
    client.close();
  }
}

/** `odin cancel RUN`, `odin retry RUN`. */
export async function cancelOrRetryCommand(
  what: "cancel" | "retry",
  runId: string,
  options: RunCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const { client } = connect(DagSchedulerServiceClient, options);
  try {
    const res =
      what === "cancel"
        ? await unary(client, "cancelRun", {
            runId: parseTarget(runId).runId,
            reason: "cancelled with odin cancel",
          })
        : await unary(client, "retryRun", {
            runId: parseTarget(runId).runId,
            requestId: randomUUID(),
          });
    if (options.output !== "text") printData(out, options.output, common.Run.toJSON(res.run!));
    else
      out.write(
        what === "cancel"
          ? `run ${res.run!.id}: cancelling (running tasks are being stopped)\n`
          : `run ${res.run!.id}: retrying as attempt ${res.run!.attempt}\n`,
      );
    return 0;
  } finally {
    client.close();
  }
}

/** `odin rm RUN [--purge]`: removes a run's Kubernetes objects; --purge also its records and data. */
export async function rmCommand(
  runId: string,
  options: RunCommandOptions & { purge?: boolean; purgeRecords?: boolean; purgeData?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  const { client } = connect(DagSchedulerServiceClient, options);
  try {
    const res = await unary(client, "deleteRun", {
      runId: parseTarget(runId).runId,
      purgeRecords: Boolean(options.purge || options.purgeRecords),
      purgeData: Boolean(options.purge || options.purgeData),
    });
    if (options.output !== "text") printData(out, options.output, res);
    else {
      out.write(
        `run ${runId}: ${res.deletedObjects} Kubernetes object${res.deletedObjects === 1 ? "" : "s"} removed${res.recordsPurged ? ", records purged" : ""}${res.dataPurged ? ", data purged" : ""}\n`,
      );
    }
    return 0;
  } finally {
    client.close();
  }
}

/** `odin logs RUN|TASK`: a task's log (every task's, in order, for a run); -f follows. */
export async function logsCommand(
  target: string,
  options: RunCommandOptions & { follow?: boolean; tail?: number; attempt?: number },
  out: NodeJS.WritableStream,
): Promise<number> {
  const { runId, task } = parseTarget(target);
  let tasks: string[];
  if (task) tasks = [task];
  else {
    const scheduler = connect(DagSchedulerServiceClient, options).client;
    try {
      const res = await unary(scheduler, "getRun", {
        runId,
        taskPageSize: 100_000,
        taskPageToken: "",
      });
      tasks = res.taskRuns.filter((t) => t.attempt > 0).map((t) => t.task);
    } finally {
      scheduler.close();
    }
  }
  const { client } = connect(K8sLauncherServiceClient, options);
  const prefix = tasks.length > 1;
  try {
    // Multi-worker tasks (TFJob, PyTorchJob, MPIJob, ElasticJob) have several pods: their lines
    // carry the pod's name. A finished task's pods are known before printing; while following,
    // replica pods are recognised by name, and any second pod turns prefixes on from then on.
    const replicaPod = /-(worker|master|launcher|chief|ps)(-\d+)?$/;
    const stream = async (name: string): Promise<void> => {
      const lines: k8slauncher.LogLine[] = [];
      const pods = new Set<string>();
      const write = (l: k8slauncher.LogLine, byPod: boolean): void => {
        const tags = [prefix ? name : "", byPod ? l.pod : ""].filter(Boolean).map((t) => `[${t}] `);
        out.write(`${tags.join("")}${l.line}\n`);
      };
      for await (const res of serverStream(client, "streamLogs", {
        runId,
        task: name,
        attempt: options.attempt ?? 0,
        follow: Boolean(options.follow),
        tailLines: options.tail,
        pod: "",
        container: "",
      })) {
        for (const l of res.lines) {
          pods.add(l.pod);
          if (options.follow) write(l, pods.size > 1 || replicaPod.test(l.pod));
          else lines.push(l);
        }
      }
      for (const l of lines) write(l, pods.size > 1);
    };
    if (options.follow) await Promise.all(tasks.map(stream));
    else for (const t of tasks) await stream(t);
    return 0;
  } finally {
    client.close();
  }
}

/** `odin events RUN|TASK`: Kubernetes events of a task's objects and pods. */
export async function eventsCommand(
  target: string,
  options: RunCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const { runId, task } = parseTarget(target);
  const { client } = connect(K8sLauncherServiceClient, options);
  try {
    const res = await unary(client, "listTaskEvents", { runId, task: task ?? "", attempt: 0 });
    if (options.output !== "text") {
      printData(
        out,
        options.output,
        res.events.map((e) => k8slauncher.ObjectEvent.toJSON(e)),
      );
      return 0;
    }
    const rows = res.events.map((e) => [
      e.time?.toISOString().replace("T", " ").slice(0, 19) ?? "-",
      e.type,
      e.reason,
      `${e.objectKind}/${e.objectName}`,
      e.message,
    ]);
    out.write(table(["TIME", "TYPE", "REASON", "OBJECT", "MESSAGE"], rows));
    return 0;
  } finally {
    client.close();
  }
}
