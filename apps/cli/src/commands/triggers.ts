// odin triggers: the commit triggers pipelines declare, and the last commit each started a run for.
import { dagscheduler, DagSchedulerServiceService as Scheduler } from "@odin/proto";
import { connect } from "../connection.js";
import { ExitCode } from "../exit.js";
import { printData, shortCommit, table } from "../output.js";
import type { RunCommandOptions } from "./runs.js";

/** A trigger's policy as `main.yml` spells it. */
const policyName = (p: dagscheduler.TriggerPolicy): string =>
  p === dagscheduler.TriggerPolicy.TRIGGER_POLICY_EACH ? "each" : "newest";

/** A path pattern as people read it: from the repository root, `/` for all of it. */
const pathText = (p: string): string => (p.startsWith("!") ? `!/${p.slice(1)}` : `/${p}`);

/** `odin triggers [-p PIPELINE]`: every declared commit trigger with the last commit it ran. */
export async function listTriggersCommand(
  options: RunCommandOptions & { pipeline?: string },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const res = await channel.unary(Scheduler.listTriggers, { pipeline: options.pipeline ?? "" });
    if (options.output !== "text") {
      await printData(out, options.output, {
        checkedCommit: res.checkedCommit,
        triggers: res.triggers.map((t) => ({
          ...(dagscheduler.Trigger.toJSON(t) as object),
          policy: policyName(t.policy),
        })),
      });
      return ExitCode.ok;
    }
    if (res.triggers.length === 0) {
      out.write("no commit triggers (declare triggers: in a pipeline's main.yml)\n");
      return ExitCode.ok;
    }
    const rows = res.triggers.map((t) => [
      t.name,
      policyName(t.policy),
      t.paths.map(pathText).join(" "),
      t.lastCommit ? shortCommit(t.lastCommit) : "-",
      t.lastRunId || "-",
      String(t.runsStarted),
      t.lastError || (t.lastAuthor ? `by ${t.lastAuthor}` : ""),
    ]);
    out.write(table(["NAME", "POLICY", "PATHS", "LAST COMMIT", "LAST RUN", "RUNS", "NOTE"], rows));
    if (res.checkedCommit) out.write(`checked up to commit ${shortCommit(res.checkedCommit)}\n`);
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}
