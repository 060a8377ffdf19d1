import { common } from "@odin/proto";

/** How a command prints data: a human table/text, or machine-readable JSON/YAML. */
export type OutputFormat = "text" | "json" | "yaml";

const plainOf = (data: unknown): unknown =>
  JSON.parse(
    JSON.stringify(data, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v)),
  ) as unknown;

async function dumpYaml(data: unknown): Promise<string> {
  const { default: jsyaml } = await import("js-yaml");
  return jsyaml.dump(data, { noRefs: true, lineWidth: 120 });
}

/** Prints data as one JSON or YAML document (bigints as numbers, dates as ISO strings). */
export async function printData(
  out: NodeJS.WritableStream,
  format: "json" | "yaml",
  data: unknown,
): Promise<void> {
  const plain = plainOf(data);
  out.write(format === "json" ? JSON.stringify(plain, null, 2) + "\n" : await dumpYaml(plain));
}

/**
 * Prints one event of a stream (`run -f`, `logs`): JSON as one object per line, YAML as one
 * document per event (`---`), so a reader can process each as it arrives.
 */
export async function printEvent(
  out: NodeJS.WritableStream,
  format: "json" | "yaml",
  data: unknown,
): Promise<void> {
  const plain = plainOf(data);
  out.write(format === "json" ? JSON.stringify(plain) + "\n" : `---\n${await dumpYaml(plain)}`);
}

/** A run state as people read it: `SUCCEEDED`, not `RUN_STATE_SUCCEEDED` (text and JSON alike). */
export const runStateName = (s: common.RunState): string =>
  common.runStateToJSON(s).replace("RUN_STATE_", "");
/** A task state as people read it: `SKIPPED`, not `TASK_STATE_SKIPPED`. */
export const taskStateName = (s: common.TaskState): string =>
  common.taskStateToJSON(s).replace("TASK_STATE_", "");

/** A run as JSON with the state names the text shows. */
export function runJson(run: common.Run): Record<string, unknown> {
  return { ...(common.Run.toJSON(run) as object), state: runStateName(run.state) };
}

/** A task run as JSON with the state name the text shows and its outputs as an object. */
export function taskRunJson(t: common.TaskRun): Record<string, unknown> {
  const json = { ...(common.TaskRun.toJSON(t) as Record<string, unknown>) };
  delete json.outputsJson;
  let outputs: unknown;
  try {
    outputs = t.outputsJson ? JSON.parse(t.outputsJson) : {};
  } catch {
    outputs = t.outputsJson;
  }
  return { ...json, state: taskStateName(t.state), outputs };
}

/** Formats rows as an aligned table with a header. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** The first 12 characters of a commit id, as people quote them. */
export function shortCommit(commit: string): string {
  return commit.slice(0, 12);
}
