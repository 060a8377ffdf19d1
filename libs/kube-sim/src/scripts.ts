// What happens to a simulated pod: defaults, rules registered by tests (matched by image, pod name,
// namespace, labels), and the `kube-sim/script` annotation, in rising order of precedence.
import type { ContainerJson, PodJson } from "./types.js";
import { isRecord } from "./types.js";

/** Annotation whose JSON value scripts a pod (all its containers). */
export const SCRIPT_ANNOTATION = "kube-sim/script";

/**
 * What a container does. JSON-compatible: the same object is the value of the
 * `kube-sim/script` annotation.
 */
export interface PodScript {
  /** Exit code of the container; 0 (default) → pod Succeeded, anything else → Failed. */
  exitCode?: number;
  /** `state.terminated.reason`; default `Completed` for exit 0, else `Error` (e.g. `OOMKilled`). */
  reason?: string;
  /** Time the container runs before it exits, in ms (default: the simulator's `defaultRunMs`). */
  runMs?: number;
  /** Never exit on its own: runs until deleted or ended with `failPod`/`succeedPod`. */
  runForever?: boolean;
  /** Time from scheduling to Running (ContainerCreating), in ms (default `defaultStartMs`). */
  startMs?: number;
  /** Lines the container prints. */
  logs?: string[];
  /** Spread `logs` evenly over `runMs` (default true); false prints them all at start. */
  spreadLogs?: boolean;
  /** `state.terminated.message`, as if written to /dev/termination-log. */
  terminationMessage?: string;
  /** The image cannot be pulled: ErrImagePull, then ImagePullBackOff; the pod stays Pending. */
  imagePullError?: boolean | string;
  /** No node fits: PodScheduled=False/Unschedulable and a FailedScheduling event. */
  unschedulable?: boolean | string;
}

/** A text pattern: a RegExp, or a string with `*` wildcards matched against the whole text. */
export type TextPattern = RegExp | string;

/** A script registered by a test with `sim.script(rule)`; the most recent matching rule wins. */
export interface ScriptRule extends PodScript {
  /** Container image pattern, e.g. `"busybox*"` or `/fail/`. */
  image?: TextPattern;
  /** Pod name pattern. */
  name?: TextPattern;
  /** Only pods in this namespace. */
  namespace?: string;
  /** Only pods carrying all these labels. */
  labels?: Record<string, string>;
  /** Only the container with this name. */
  container?: string;
}

/** A script with every field decided, for one container. */
export interface ResolvedScript {
  exitCode: number;
  reason: string | undefined;
  runMs: number;
  runForever: boolean;
  startMs: number;
  logs: readonly string[];
  spreadLogs: boolean;
  terminationMessage: string | undefined;
  imagePullError: string | undefined;
  unschedulable: string | undefined;
}

const SCRIPT_KEYS: Record<keyof PodScript, "number" | "boolean" | "string" | "lines" | "flag"> = {
  exitCode: "number",
  reason: "string",
  runMs: "number",
  runForever: "boolean",
  startMs: "number",
  logs: "lines",
  spreadLogs: "boolean",
  terminationMessage: "string",
  imagePullError: "flag",
  unschedulable: "flag",
};

/** Parses and checks a `kube-sim/script` annotation value; throws an Error saying what is wrong. */
export function parseScriptAnnotation(text: string): PodScript {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (!isRecord(value)) throw new Error("must be a JSON object");
  const script: PodScript = {};
  for (const [key, field] of Object.entries(value)) {
    if (!Object.hasOwn(SCRIPT_KEYS, key)) {
      throw new Error(`unknown key "${key}"; known: ${Object.keys(SCRIPT_KEYS).join(", ")}`);
    }
    const kind = SCRIPT_KEYS[key as keyof PodScript];
    const ok =
      kind === "number"
        ? typeof field === "number" && Number.isFinite(field)
        : kind === "lines"
          ? Array.isArray(field) && field.every((l) => typeof l === "string")
          : kind === "flag"
            ? typeof field === "boolean" || typeof field === "string"
            : typeof field === kind;
    if (!ok) throw new Error(`"${key}" must be ${kind === "lines" ? "a list of strings" : kind}`);
    Object.assign(script, { [key]: field });
  }
  return script;
}

/** True when `text` matches a pattern (RegExp, or a `*` glob over the whole text). */
export function matchesPattern(pattern: TextPattern, text: string): boolean {
  if (pattern instanceof RegExp) {
    pattern.lastIndex = 0;
    return pattern.test(text);
  }
  if (!pattern.includes("*")) return pattern === text;
  const regex = new RegExp(
    `^${pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return regex.test(text);
}

/** Defaults applied to every pod. */
export interface ScriptDefaults {
  runMs: number | readonly [number, number];
  startMs: number;
}

/** The registered rules and how to resolve a container's script. */
export class ScriptBook {
  private rules: ScriptRule[] = [];

  constructor(private readonly defaults: ScriptDefaults) {}

  /** Adds a rule (it takes precedence over earlier ones); returns a function removing it. */
  add(rule: ScriptRule): () => void {
    this.rules.push(rule);
    return () => {
      this.rules = this.rules.filter((r) => r !== rule);
    };
  }

  /** Removes every rule. */
  clear(): void {
    this.rules = [];
  }

  /** The script of one container: defaults, then the newest matching rule, then the annotation. */
  resolve(
    pod: PodJson,
    container: ContainerJson,
    annotation: PodScript | undefined,
  ): ResolvedScript {
    const rule = this.findRule(pod, container);
    const merged: PodScript = { ...stripMatch(rule), ...annotation };
    const flag = (v: boolean | string | undefined): string | undefined =>
      v === undefined || v === false ? undefined : v === true ? "" : v;
    return {
      exitCode: merged.exitCode ?? 0,
      reason: merged.reason,
      runMs: Math.max(0, merged.runMs ?? this.defaultRunMs()),
      runForever: merged.runForever ?? false,
      startMs: Math.max(0, merged.startMs ?? this.defaults.startMs),
      logs: merged.logs ?? [],
      spreadLogs: merged.spreadLogs ?? true,
      terminationMessage: merged.terminationMessage,
      imagePullError: flag(merged.imagePullError),
      unschedulable: flag(merged.unschedulable),
    };
  }

  private defaultRunMs(): number {
    const d = this.defaults.runMs;
    if (typeof d === "number") return d;
    const [min, max] = d;
    return min + Math.floor(Math.random() * (max - min + 1));
  }

  private findRule(pod: PodJson, container: ContainerJson): ScriptRule | undefined {
    const meta = pod.metadata;
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const rule = this.rules[i];
      if (rule === undefined) continue;
      if (rule.image !== undefined && !matchesPattern(rule.image, container.image ?? "")) continue;
      if (rule.name !== undefined && !matchesPattern(rule.name, meta.name ?? "")) continue;
      if (rule.namespace !== undefined && rule.namespace !== meta.namespace) continue;
      if (rule.container !== undefined && rule.container !== container.name) continue;
      if (
        rule.labels !== undefined &&
        !Object.entries(rule.labels).every(([k, v]) => meta.labels?.[k] === v)
      ) {
        continue;
      }
      return rule;
    }
    return undefined;
  }
}

function stripMatch(rule: ScriptRule | undefined): PodScript {
  if (rule === undefined) return {};
  const { image: _i, name: _n, namespace: _ns, labels: _l, container: _c, ...script } = rule;
  return script;
}
