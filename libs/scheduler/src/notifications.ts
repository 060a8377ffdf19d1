// A run's end posted to its pipeline's `notify:` webhooks. The replica whose compare-and-set wrote
// the end (exactly one: the write is conditional on the run not having ended) writes the due
// notifications in that same write, then delivers them and records how each went on the run.
import {
  runEndBody,
  type FailedTask,
  type NotificationStatus,
  type RunEndBody,
  type WebhookNotifier,
} from "@odin/notify";
import {
  isFinishedRun,
  mergeNotifyTargets,
  type NotifyTarget,
  type Pipeline,
  type RunState,
} from "@odin/pipeline-spec";
import type { RunRecord, TaskRecord } from "./records.js";
import type { SchedulerStore } from "./store.js";

/** The web UI's address when none is configured: where `kubectl port-forward svc/gateway 8080` serves it. */
export const defaultPublicUrl = "http://localhost:8080";

/**
 * How long after a run's end its notifications may stay pending before another replica takes
 * them over: far longer than a live delivery takes (5 attempts of at most 10 s with 30 s of
 * waits between them), so only a deliverer that stopped leaves them pending that long.
 */
export const notifyTakeoverMs = 10 * 60_000;

/** Whether an ended run's notifications were left pending by a deliverer that went away (or stalled). */
export function orphanedNotifications(run: RunRecord, now: number): boolean {
  // Since its end, or since another replica last took them over.
  const since = run.notifyClaimTime ?? run.endTime;
  return (
    isFinishedRun(run.state) &&
    since !== undefined &&
    now - since > notifyTakeoverMs &&
    (run.notifications ?? []).some((n) => n.state === "pending")
  );
}

/**
 * One pending notification per webhook whose `on` holds `state`, of the pipeline's `notify:` and
 * the run's own targets (a schedule's): a webhook named twice, or by both, is posted once.
 */
export function dueNotifications(
  pipeline: Pipeline,
  state: RunState,
  runTargets?: readonly NotifyTarget[],
): NotificationStatus[] | undefined {
  const secrets = mergeNotifyTargets(pipeline.notify, runTargets)
    .filter((target) => (target.on as readonly string[]).includes(state))
    .map((target) => target.webhookSecret);
  if (secrets.length === 0) return undefined;
  return secrets.map((webhookSecret) => ({ webhookSecret, state: "pending", attempts: 0 }));
}

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

/** The body posted for an ended run; `tasks` in pipeline order. */
export function runEndMessage(
  run: RunRecord,
  tasks: readonly { name: string; record: TaskRecord | undefined }[],
  publicUrl: string,
): RunEndBody {
  const failed: FailedTask[] = [];
  for (const { name, record } of tasks) {
    if (!record || (record.state !== "FAILED" && record.state !== "ERROR")) continue;
    const task: FailedTask = { name, state: record.state.toLowerCase(), attempt: record.attempt };
    if (record.exitCode !== undefined) task.exitCode = record.exitCode;
    if (record.reason) task.reason = record.reason;
    if (record.message) task.message = record.message;
    failed.push(task);
  }
  const summary: RunEndBody["run"] = {
    id: run.id,
    pipeline: run.pipeline,
    pipelineName: run.pipelineName,
    commit: run.commit,
    state: run.state.toLowerCase(),
    attempt: run.attempt,
    submittedBy: run.submittedBy,
    parameters: run.parameters ?? {},
    labels: run.labels,
    createTime: iso(run.createTime)!,
    taskCounts: Object.fromEntries(
      Object.entries(run.taskCounts ?? {})
        .filter(([, n]) => n > 0)
        .map(([state, n]) => [state.toLowerCase(), n]),
    ),
  };
  if (run.startTime !== undefined) summary.startTime = iso(run.startTime);
  if (run.endTime !== undefined) summary.endTime = iso(run.endTime);
  if (run.reason) summary.reason = run.reason;
  if (run.message) summary.message = run.message;
  return runEndBody(summary, failed, publicUrl);
}

/**
 * Posts an ended run's pending notifications (all at once) and records each one's progress on
 * the run — only while the run is still this end (a retry started since makes them moot). Never
 * rejects; a failed delivery is on the run and in the log, never on the run's state.
 */
export async function deliverRunEnd(options: {
  store: SchedulerStore;
  notifier: WebhookNotifier;
  publicUrl: string;
  run: RunRecord;
  tasks: readonly { name: string; record: TaskRecord | undefined }[];
}): Promise<void> {
  const { store, notifier, run } = options;
  const due = run.notifications ?? [];
  if (due.length === 0) return;
  const body = runEndMessage(run, options.tasks, options.publicUrl);
  // Progress writes go one after another, so a later status never lands before an earlier one.
  let writes = Promise.resolve();
  const record = (i: number, status: NotificationStatus): void => {
    writes = writes.then(async () => {
      // A status left pending would be posted again by the takeover: retry a write the store
      // could not take (NATS away for a moment) a few times.
      for (let attempt = 0; attempt < 6; attempt++) {
        try {
          await store.updateRun(run.id, (r) => {
            const cur = r.notifications?.[i];
            if (
              r.attempt !== run.attempt ||
              (r.notifyClaim ?? 0) !== (run.notifyClaim ?? 0) ||
              !isFinishedRun(r.state) ||
              cur?.webhookSecret !== status.webhookSecret ||
              cur.state !== "pending"
            )
              return undefined;
            const notifications = [...r.notifications!];
            notifications[i] = status;
            return { ...r, notifications };
          });
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt).unref());
        }
      }
    });
  };
  await Promise.all(
    due.flatMap((n, i) =>
      n.state === "pending"
        ? [notifier.post(n.webhookSecret, body, { run: run.id }, (status) => record(i, status))]
        : [],
    ),
  );
  await writes;
}
