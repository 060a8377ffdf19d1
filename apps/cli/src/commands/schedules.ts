// odin schedule create, ls, pause, resume, rm: cron schedules over gRPC.
import { randomUUID } from "node:crypto";
import { notifyStates, parseNotifyTarget } from "@odin/pipeline-spec";
import { dagscheduler, notifyToProto, DagSchedulerServiceService as Scheduler } from "@odin/proto";
import { connect } from "../connection.js";
import { CommandError, ExitCode } from "../exit.js";
import { printData, table } from "../output.js";
import { parseSets, readValues, type RunCommandOptions } from "./runs.js";

const catchups: Record<string, dagscheduler.CatchupPolicy> = {
  skip: dagscheduler.CatchupPolicy.CATCHUP_POLICY_SKIP,
  once: dagscheduler.CatchupPolicy.CATCHUP_POLICY_ONCE,
};
const concurrencies: Record<string, dagscheduler.ConcurrencyPolicy> = {
  allow: dagscheduler.ConcurrencyPolicy.CONCURRENCY_POLICY_ALLOW,
  forbid: dagscheduler.ConcurrencyPolicy.CONCURRENCY_POLICY_FORBID,
  replace: dagscheduler.ConcurrencyPolicy.CONCURRENCY_POLICY_REPLACE,
};

const policyName = (json: string, prefix: string): string => json.replace(prefix, "").toLowerCase();

/** A schedule as JSON with its policies as the CLI spells them. */
function scheduleJson(s: dagscheduler.Schedule): Record<string, unknown> {
  return {
    ...(dagscheduler.Schedule.toJSON(s) as object),
    catchup: policyName(dagscheduler.catchupPolicyToJSON(s.catchup), "CATCHUP_POLICY_"),
    concurrency: policyName(
      dagscheduler.concurrencyPolicyToJSON(s.concurrency),
      "CONCURRENCY_POLICY_",
    ),
  };
}

/** Notification targets as `--notify` spells them: `team-slack, oncall:failed`. */
function notifyText(targets: readonly { webhookSecret: string; on: readonly string[] }[]): string {
  return targets
    .map((t) =>
      t.on.length === notifyStates.length || t.on.length === 0
        ? t.webhookSecret
        : `${t.webhookSecret}:${t.on.join(",")}`,
    )
    .join(", ");
}

function choose<T>(what: string, value: string | undefined, allowed: Record<string, T>): T | 0 {
  if (value === undefined) return 0;
  const got = allowed[value];
  if (got === undefined)
    throw new CommandError(
      `--${what} ${value}: use one of ${Object.keys(allowed).join(", ")}`,
      ExitCode.usage,
    );
  return got;
}

/** `odin schedule create NAME PIPELINE --cron EXPR`: makes a schedule and prints its next tick. */
export async function createScheduleCommand(
  name: string,
  pipeline: string,
  options: RunCommandOptions & {
    cron: string;
    timezone?: string;
    set: string[];
    values?: string;
    catchup?: string;
    concurrency?: string;
    /** `NAME` or `NAME:state,state`, as `--notify` gives them. */
    notify?: string[];
    paused?: boolean;
  },
  out: NodeJS.WritableStream,
): Promise<number> {
  const catchup = choose("catchup", options.catchup, catchups);
  const concurrency = choose("concurrency", options.concurrency, concurrencies);
  const notify = (options.notify ?? []).map((text) => {
    const got = parseNotifyTarget(text);
    if ("error" in got) throw new CommandError(got.error, ExitCode.usage);
    return notifyToProto(got.target);
  });
  const parameters = {
    ...(options.values ? await readValues(options.values) : {}),
    ...parseSets(options.set),
  };
  const channel = connect(options);
  try {
    const { schedule } = await channel.unary(Scheduler.createSchedule, {
      name,
      pipeline,
      cron: options.cron,
      timezone: options.timezone ?? "",
      parameters,
      catchup,
      concurrency,
      paused: options.paused ?? false,
      notify,
      requestId: randomUUID(),
    });
    if (options.output !== "text") await printData(out, options.output, scheduleJson(schedule!));
    else
      out.write(
        `schedule ${schedule!.name}: ${schedule!.pipeline} at "${schedule!.cron}" (${schedule!.timezone})${schedule!.nextTick ? `, next ${schedule!.nextTick.toISOString()}` : ", paused"}${schedule!.notify.length > 0 ? `; notifies ${notifyText(schedule!.notify)}` : ""}\n`,
      );
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}

/** `odin schedule ls`: every schedule with its next tick and last run. */
export async function listSchedulesCommand(
  options: RunCommandOptions & { pipeline?: string },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const { schedules } = await channel.unary(Scheduler.listSchedules, {
      pipeline: options.pipeline ?? "",
    });
    if (options.output !== "text") {
      await printData(out, options.output, schedules.map(scheduleJson));
      return ExitCode.ok;
    }
    if (schedules.length === 0) {
      out.write(
        'no schedules ("odin schedule create" makes one, or declare schedules: in main.yml)\n',
      );
      return ExitCode.ok;
    }
    const rows = schedules.map((s) => [
      s.name,
      s.pipeline,
      `${s.cron} ${s.timezone}`,
      s.paused ? "paused" : (s.nextTick?.toISOString() ?? "-"),
      s.lastRunId || "-",
      String(s.skippedTicks),
      s.lastError || "",
    ]);
    out.write(table(["NAME", "PIPELINE", "CRON", "NEXT", "LAST RUN", "SKIPPED", "NOTE"], rows));
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}

/** `odin schedule pause|resume|rm NAME`. */
export async function changeScheduleCommand(
  action: "pause" | "resume" | "rm",
  name: string,
  options: RunCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    if (action === "rm") {
      await channel.unary(Scheduler.deleteSchedule, { name });
      if (options.output === "text") out.write(`schedule ${name} removed\n`);
      else await printData(out, options.output, { name, removed: true });
      return ExitCode.ok;
    }
    const { schedule } = await channel.unary(
      action === "pause" ? Scheduler.pauseSchedule : Scheduler.resumeSchedule,
      { name },
    );
    if (options.output !== "text") await printData(out, options.output, scheduleJson(schedule!));
    else
      out.write(
        `schedule ${name} ${action === "pause" ? "paused" : `resumed, next ${schedule!.nextTick?.toISOString() ?? "-"}`}\n`,
      );
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}
