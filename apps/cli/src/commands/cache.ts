// odin cache ls|rm: the task results later runs may reuse (docs/caching.md).
import { DagSchedulerServiceService as Scheduler, dagscheduler } from "@odin/proto";
import { connect } from "../connection.js";
import { CommandError, ExitCode } from "../exit.js";
import { printData, table } from "../output.js";
import type { RunCommandOptions } from "./runs.js";

const when = (d: Date | undefined): string =>
  d ? d.toISOString().replace("T", " ").slice(0, 19) : "-";

/** `odin cache ls [PIPELINE [TASK]]`: recorded results, newest first. */
export async function cacheLsCommand(
  pipeline: string | undefined,
  task: string | undefined,
  options: RunCommandOptions & { limit?: number },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const res = await channel.unary(Scheduler.listCacheEntries, {
      pipeline: pipeline ?? "",
      task: task ?? "",
      limit: options.limit ?? 0,
    });
    if (options.output !== "text") {
      await printData(out, options.output, {
        entries: res.entries.map((e) => dagscheduler.CacheEntry.toJSON(e)),
      });
      return ExitCode.ok;
    }
    if (res.entries.length === 0) {
      out.write("no cached results\n");
      return ExitCode.ok;
    }
    out.write(
      table(
        ["KEY", "PIPELINE", "TASK", "FROM RUN", "CREATED", "HITS", "IMAGE", "OUTPUTS"],
        res.entries.map((e) => [
          e.key.slice(0, 12),
          e.pipeline,
          e.task,
          e.attempt > 1 ? `${e.runId} (attempt ${e.attempt})` : e.runId,
          when(e.createTime),
          String(e.hits),
          e.image.length > 24 ? `${e.image.slice(0, 19)}…` : e.image,
          e.outputs.map((o) => o.name).join(",") || "-",
        ]),
      ),
    );
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}

/** `odin cache rm KEY…|--pipeline P [--task T]|--all`: forgets results (their files stay). */
export async function cacheRmCommand(
  keys: string[],
  options: RunCommandOptions & { pipeline?: string; task?: string; all?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  if (!options.all && keys.length === 0 && !options.pipeline)
    throw new CommandError(
      "say which results to forget: KEY… (from odin cache ls), --pipeline P [--task T], or --all",
      ExitCode.usage,
    );
  if (options.task && !options.pipeline)
    throw new CommandError("--task needs --pipeline", ExitCode.usage);
  const channel = connect(options);
  try {
    const res = await channel.unary(Scheduler.deleteCacheEntries, {
      keys,
      pipeline: options.pipeline ?? "",
      task: options.task ?? "",
      all: Boolean(options.all),
    });
    if (options.output !== "text") await printData(out, options.output, res);
    else out.write(`${res.deleted} cached result${res.deleted === 1 ? "" : "s"} removed\n`);
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}
