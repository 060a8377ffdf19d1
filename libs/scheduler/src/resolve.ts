import {
  resolveReferences,
  substituteVariables,
  taskId,
  taskVariables,
  type Pipeline,
  type Task,
} from "@odin/pipeline-spec";
import type { RunRecord, TaskRecord } from "./records.js";

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
      ...(run.workPath ? { workPath: run.workPath } : {}),
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
      args: task.args.map((a) => resolveReferences(sub(a), (t) => outputsOf(t)?.outputsJson)),
      env,
    },
    variables,
  };
}
