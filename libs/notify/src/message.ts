// What a run's end is posted as: one JSON body for any webhook receiver, whose `text` field makes
// a Slack incoming webhook (and Mattermost, Rocket.Chat, Teams' Slack-compatible ones) show it as is.
import type { ParameterValue } from "@odin/pipeline-spec";

/** A run as a notification tells it (times as ISO 8601 text). */
export interface RunSummary {
  id: string;
  /** The pipeline's directory in the repository. */
  pipeline: string;
  pipelineName: string;
  commit: string;
  /** Lower case: `succeeded`, `failed`, `cancelled`. */
  state: string;
  attempt: number;
  submittedBy: string;
  parameters: Record<string, ParameterValue>;
  labels: Record<string, string>;
  createTime: string;
  startTime?: string;
  endTime?: string;
  reason?: string;
  message?: string;
  /** How many tasks ended in each state (lower case). */
  taskCounts: Record<string, number>;
}

/** A task that did not succeed, as a notification tells it. */
export interface FailedTask {
  name: string;
  /** Lower case: `failed`, `error`. */
  state: string;
  attempt: number;
  exitCode?: number;
  reason?: string;
  message?: string;
}

/** The JSON body posted when a run ends (docs/notifications.md). */
export interface RunEndBody {
  /** A one-paragraph summary in Slack's mrkdwn: shown as is by a Slack incoming webhook. */
  text: string;
  /** What happened: `run.ended`. */
  event: "run.ended";
  run: RunSummary;
  /** The tasks that failed or errored, at most {@link maxFailedTasks}, in pipeline order. */
  failedTasks: FailedTask[];
  /** How many tasks failed or errored in all (more than `failedTasks` holds when it was cut). */
  failedTaskCount: number;
  /** The run's page in the web UI. */
  url: string;
}

/** Most failed tasks a body lists (a 10,000-task run's body stays small). */
export const maxFailedTasks = 20;

/** Escapes text for Slack's mrkdwn (`&`, `<`, `>` are control characters there). */
export function slackEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The link to a run's page in the web UI under a public base URL (`https://odin.example.com`). */
export function runPageUrl(publicUrl: string, runId: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/runs/${encodeURIComponent(runId)}`;
}

const stateWord: Record<string, string> = {
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "was cancelled",
};
const stateIcon: Record<string, string> = {
  succeeded: ":white_check_mark:",
  failed: ":x:",
  cancelled: ":no_entry_sign:",
};

/** The body for a run's end: the run, its failed tasks (all of them are counted), the link and the text. */
export function runEndBody(
  run: RunSummary,
  failed: readonly FailedTask[],
  publicUrl: string,
): RunEndBody {
  const url = runPageUrl(publicUrl, run.id);
  const parts = [
    `${stateIcon[run.state] ?? ""} Odin run <${url}|${slackEscape(run.id)}> of *${slackEscape(run.pipeline)}* ${stateWord[run.state] ?? run.state}`.trim(),
  ];
  const total = Object.values(run.taskCounts).reduce((a, b) => a + b, 0);
  if (failed.length > 0) {
    const names = failed
      .slice(0, 5)
      .map((t) => `\`${slackEscape(t.name)}\``)
      .join(", ");
    parts.push(
      `${failed.length} of ${total} task${total === 1 ? "" : "s"} failed: ${names}${failed.length > 5 ? ` and ${failed.length - 5} more` : ""}`,
    );
  } else if (run.reason && run.state !== "succeeded") {
    parts.push(slackEscape(run.message ? `${run.reason}: ${run.message}` : run.reason));
  }
  const params = Object.entries(run.parameters);
  if (params.length > 0)
    parts.push(
      `parameters: ${params.map(([k, v]) => `${slackEscape(k)}=${slackEscape(JSON.stringify(v))}`).join(" ")}`,
    );
  parts.push(`submitted by ${slackEscape(run.submittedBy || "unknown")}`);
  return {
    text: parts.join("\n"),
    event: "run.ended",
    run,
    failedTasks: failed.slice(0, maxFailedTasks),
    failedTaskCount: failed.length,
    url,
  };
}
