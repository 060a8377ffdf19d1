import {
  substituteVariables,
  taskId,
  taskVariables,
  type Pipeline,
  type Task,
} from "@odin/pipeline-spec";
import type { RunRecord, TaskRecord } from "./records.js";

/** A `^task.outputs.key` a task uses has no value: the task fails with this reason. */
export class MissingOutputError extends Error {
  override name = "MissingOutputError";
}

const wholeReference = /^\^([a-z0-9]([-a-z0-9]*[a-z0-9])?)((?:\.[^.]+)+)$/;
const embeddedReference = /\{\^([a-z0-9]([-a-z0-9]*[a-z0-9])?)((?:\.[^.{}]+)+)\}/g;

function lookup(
  ref: string,
  task: string,
  path: string,
  outputsOf: (task: string) => TaskRecord | undefined,
): string {
  const fields = path.slice(1).split(".");
  if (fields[0] !== "outputs" || fields.length < 2) {
    throw new MissingOutputError(`${ref}: only ^${task}.outputs.<key> can be resolved`);
  }
  const record = outputsOf(task);
  let value: unknown;
  try {
    value = record?.outputsJson ? JSON.parse(record.outputsJson) : undefined;
  } catch {
    value = undefined;
  }
  for (const f of fields.slice(1)) {
    value =
      typeof value === "object" && value !== null
        ? (value as Record<string, unknown>)[f]
        : undefined;
  }
  if (value === undefined || value === null) {
    throw new MissingOutputError(
      `${ref} has no value: task "${task}" reported no output ${fields.slice(1).join(".")} (a task reports outputs as a JSON object in its termination message, or in $TASK_PATH/outputs.json locally)`,
    );
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Replaces `^task.outputs.key` values and `{^task.outputs.key}` spans with the upstream outputs. */
export function resolveReferences(
  value: string,
  outputsOf: (task: string) => TaskRecord | undefined,
): string {
  const whole = wholeReference.exec(value);
  if (whole) return lookup(value, whole[1]!, whole[3]!, outputsOf);
  if (!value.includes("{^")) return value;
  return value.replace(embeddedReference, (span: string, task: string, _x: string, path: string) =>
    lookup(span, task, path, outputsOf),
  );
}

/**
 * The task as it is launched: processing variables substituted in command, args and env values
 * (SPEC.md), then upstream outputs resolved in args. `TASK_IDS` is computed only when used.
 */
export function resolveTask(
  run: RunRecord,
  pipeline: Pipeline,
  task: Task,
  outputsOf: (task: string) => TaskRecord | undefined,
): { task: Task; variables: Record<string, string> } {
  const variables: Record<string, string> = taskVariables(
    {
      rootPath: run.rootPath,
      dataPath: run.dataPath,
      pipelinePath: run.pipeline,
      runId: run.id,
      taskNames: [],
    },
    task.name,
  );
  const usesTaskIds = [...task.command, ...task.args, ...Object.values(task.env)].some((s) =>
    s.includes("TASK_IDS"),
  );
  variables.TASK_IDS = usesTaskIds
    ? pipeline.tasks.map((t) => taskId(run.id, t.name)).join(",")
    : "";
  const sub = (s: string): string => substituteVariables(s, variables);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(task.env)) env[k] = sub(v);
  return {
    task: {
      ...task,
      command: task.command.map(sub),
      args: task.args.map((a) => resolveReferences(sub(a), outputsOf)),
      env,
    },
    variables,
  };
}
