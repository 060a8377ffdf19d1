// The `^task.outputs.key` grammar, shared by validation (which references make a dependency, and
// which can be resolved) and the scheduler (resolving them at launch), so both read the same text
// the same way:
// - a whole value `^task` or `^task.field.path` — in any task field it makes `task` a dependency;
// - a span `{^task}` or `{^task.field.path}` inside an argument — a dependency too.
// In `args`, both forms are replaced at launch by the upstream task's reported output; only
// `outputs.<key>[.<key>…]` paths can be resolved.

/** A reference to another task found in a task value. */
export interface TaskReference {
  /** The referenced task's short name. */
  task: string;
  /** The field path after the task name (`["outputs", "words"]`); empty for a bare `^task`. */
  path: string[];
  /** The reference as written: the whole value, or the `{^…}` span. */
  text: string;
}

const taskName = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?";
const wholeReference = new RegExp(`^\\^(${taskName})((?:\\.[^.]*)*)$`);
const embeddedReference = new RegExp(`\\{\\^(${taskName})((?:\\.[^.{}]+)*)\\}`, "g");

function reference(task: string, rest: string, text: string): TaskReference {
  return { task, path: rest === "" ? [] : rest.slice(1).split("."), text };
}

/** The reference a whole value is (`^task…`), if it is one. */
export function parseReference(value: string): TaskReference | undefined {
  const m = wholeReference.exec(value);
  return m ? reference(m[1]!, m[2]!, value) : undefined;
}

/** The references in a value: the value itself when it is one, else the `{^…}` spans in it when `spans`. */
export function findReferences(value: string, spans: boolean): TaskReference[] {
  const whole = parseReference(value);
  if (whole) return [whole];
  if (!spans || !value.includes("{^")) return [];
  return [...value.matchAll(embeddedReference)].map((m) => reference(m[1]!, m[2]!, m[0]));
}

/** Why a reference cannot be resolved at launch, or undefined when it can (`outputs.<key>…`, no empty key). */
export function unresolvableReason(ref: TaskReference): string | undefined {
  if (ref.path[0] !== "outputs" || ref.path.length < 2 || ref.path.some((p) => p === "")) {
    return `${ref.text} cannot be resolved: only ^${ref.task}.outputs.<key> (or {^${ref.task}.outputs.<key>} inside an argument) is replaced by what task "${ref.task}" reported`;
  }
  return undefined;
}

/** A reference in a task's arguments has no value at launch: the task fails with reason MissingOutput. */
export class MissingOutputError extends Error {
  override readonly name = "MissingOutputError";
}

function lookup(ref: TaskReference, outputsJsonOf: (task: string) => string | undefined): string {
  const reason = unresolvableReason(ref);
  if (reason !== undefined) throw new MissingOutputError(reason);
  const json = outputsJsonOf(ref.task);
  let value: unknown;
  try {
    value = json ? JSON.parse(json) : undefined;
  } catch {
    value = undefined;
  }
  for (const f of ref.path.slice(1)) {
    value =
      typeof value === "object" && value !== null
        ? (value as Record<string, unknown>)[f]
        : undefined;
  }
  if (value === undefined || value === null) {
    throw new MissingOutputError(
      `${ref.text} has no value: task "${ref.task}" reported no output ${ref.path.slice(1).join(".")} (a task reports outputs as a JSON object in its termination message, or in $TASK_PATH/outputs.json locally)`,
    );
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * An argument with its references replaced by the upstream tasks' outputs (`outputsJsonOf` gives a
 * task's reported outputs as JSON text). Throws {@link MissingOutputError} when one has no value.
 */
export function resolveReferences(
  value: string,
  outputsJsonOf: (task: string) => string | undefined,
): string {
  const whole = parseReference(value);
  if (whole) return lookup(whole, outputsJsonOf);
  if (!value.includes("{^")) return value;
  return value.replace(embeddedReference, (text: string, task: string, rest: string) =>
    lookup(reference(task, rest, text), outputsJsonOf),
  );
}
