import { TaskGraph } from "./graph.js";
import {
  defaultRetryBackoffMs,
  multiWorkerTypes,
  notifyStates,
  resourceTypes,
  type ConfigMapMount,
  type EphemeralVolume,
  type Mount,
  type NotifyState,
  type NotifyTarget,
  type Pipeline,
  type ResourceAmounts,
  type ResourceType,
  type SecretMount,
  type SecurityContext,
  type Task,
  type Toleration,
} from "./model.js";
import {
  defaultPipelineName,
  isDnsLabel,
  isDnsSubdomain,
  isLabelValue,
  maxNameLength,
  maxPipelineNameLength,
  pipelineNamePattern,
} from "./names.js";
import { odinKeyPrefix } from "./labels.js";
import {
  coerceParameter,
  escapeDollars,
  mayUseParameters,
  parameterNamePattern,
  parameterText,
  parameterTypes,
  sampleValue,
  scanParameters,
  sortedParameters,
  typeOfValue,
  type ParameterSpec,
  type ParameterType,
  type ParameterValue,
} from "./parameters.js";
import {
  catchupPolicies,
  checkCron,
  checkTimezone,
  concurrencyPolicies,
  scheduleNamePattern,
  type ScheduleSpec,
} from "./schedules.js";
import { notifyStateProblem, webhookSecretProblem } from "./notify.js";
import {
  resolveTriggerPath,
  triggerNamePattern,
  triggerPolicies,
  type TriggerPolicy,
  type TriggerSpec,
} from "./triggers.js";
import type { Problem, Severity } from "./problems.js";
import { findReferences, unresolvableReason, type TaskReference } from "./references.js";
import { defaultSourceLimits, parseSource, type SourceIndex, type SourceLimits } from "./source.js";
import { scanVariables } from "./variables.js";

/** How to read one `main.yml`. */
export interface LoadOptions {
  /** File name used in problems (default `main.yml`). */
  file?: string;
  /** Pipeline directory relative to the repository root (default `.`). */
  path?: string;
  /** Size limits for the document. */
  limits?: SourceLimits;
  /**
   * Values of the run's parameters (`--set`). Absent: the pipeline is checked on its own, each
   * required parameter standing in with a sample value of its type.
   */
  parameters?: Readonly<Record<string, unknown>>;
  /** Values the pipeline does not declare are allowed (they were a template's context). */
  allowUndeclared?: boolean;
}

/** The outcome of reading one `main.yml`: the normalized pipeline and every problem found. */
export interface LoadResult {
  /** True when no problem is an error; only then may the pipeline run. */
  valid: boolean;
  /** Every problem, errors and warnings, in file order. */
  problems: Problem[];
  /**
   * The pipeline as far as it could be read. Present whenever the document is a map with a
   * task list, even when invalid (so listings can show a name and a task count).
   */
  pipeline?: Pipeline;
  /** The dependency graph; present with `pipeline`. */
  graph?: TaskGraph;
  /** The run's parameter values: each given one as its declared type, else its default. */
  parameters: Record<string, ParameterValue>;
}

type Json = Record<string, unknown>;

/** Where a problem points: a map key or list item of a parsed container. */
interface Where {
  container: object | undefined;
  key?: string | number;
  /** Point at the key itself (unknown keys, duplicates) rather than its value. */
  atKey?: boolean;
  task?: string;
  field?: string;
}

class Problems {
  readonly list: Problem[] = [];
  constructor(
    readonly file: string,
    readonly index: SourceIndex,
  ) {}

  add(severity: Severity, where: Where, message: string): void {
    const { container, key } = where;
    let offset: number | undefined;
    if (container !== undefined) {
      offset =
        key === undefined
          ? this.index.offsetOf(container)
          : where.atKey
            ? this.index.keyOffset(container, key)
            : this.index.valueOffset(container, key);
    }
    const pos = offset === undefined ? { line: 1, column: 1 } : this.index.position(offset);
    const problem: Problem = {
      severity,
      file: this.file,
      line: pos.line,
      column: pos.column,
      message,
    };
    if (where.task !== undefined) problem.task = where.task;
    if (where.field !== undefined) problem.field = where.field;
    this.list.push(problem);
  }

  error(where: Where, message: string): void {
    this.add("error", where, message);
  }

  warn(where: Where, message: string): void {
    this.add("warning", where, message);
  }
}

function isMap(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (v instanceof Date) return "a date";
  if (typeof v === "object") return "a map";
  if (typeof v === "number") return "a number";
  if (typeof v === "boolean") return "a boolean";
  return "a string";
}

/** Reads fields of one map (a task, or a map nested in one) and reports what is wrong with them. */
class Fields {
  constructor(
    readonly problems: Problems,
    readonly map: Json,
    readonly task: string | undefined,
    /** Field path of this map inside the task (`""` for the task itself, `mounts[0].` below). */
    readonly prefix: string,
  ) {}

  where(key: string, atKey = false): Where {
    return { container: this.map, key, atKey, task: this.task, field: this.prefix + key };
  }

  error(key: string, message: string): void {
    this.problems.error(this.where(key), message);
  }

  /** The value of a key, with explicit null meaning absent (SPEC: null means "use the default"). */
  get(key: string): unknown {
    const v = this.map[key];
    return v === null ? undefined : v;
  }

  /** A scalar as text: numbers and booleans keep the spelling they had in the file. */
  text(container: object, key: string | number, v: unknown): string | undefined {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean" || v instanceof Date) {
      return (
        this.problems.index.raw(container, key) ?? (v instanceof Date ? v.toISOString() : String(v))
      );
    }
    return undefined;
  }

  string(key: string, required = false): string | undefined {
    const v = this.get(key);
    if (v === undefined) {
      if (required) {
        this.problems.error(
          { container: this.map, task: this.task, field: this.prefix + key },
          `missing required key "${key}"`,
        );
      }
      return undefined;
    }
    const s = this.text(this.map, key, v);
    if (s === undefined)
      this.error(key, `"${this.prefix}${key}" must be a string, not ${typeName(v)}`);
    return s;
  }

  /** A string or a list of scalars, as a list of strings (numbers coerced as written). */
  stringList(key: string, what = "string"): string[] {
    const v = this.get(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      const s = this.text(this.map, key, v);
      if (s === undefined)
        this.error(
          key,
          `"${this.prefix}${key}" must be a ${what} or a list of them, not ${typeName(v)}`,
        );
      return s === undefined ? [] : [s];
    }
    // A list that is all strings already is what we want; share it rather than copy it.
    if (v.every((item) => typeof item === "string")) return v;
    const out: string[] = [];
    v.forEach((item, i) => {
      const s = this.text(v, i, item);
      if (s === undefined) {
        this.problems.error(
          { container: v, key: i, task: this.task, field: `${this.prefix}${key}[${i}]` },
          item === null
            ? `"${this.prefix}${key}[${i}]" is empty; quote it ("null") if you mean the word, or remove it`
            : `"${this.prefix}${key}[${i}]" must be a ${what}, not ${typeName(item)}`,
        );
      } else {
        out.push(s);
      }
    });
    return out;
  }

  int(key: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
      this.error(
        key,
        `"${this.prefix}${key}" must be a whole number ${range}, not ${typeof v === "number" ? v : typeName(v)}`,
      );
      return undefined;
    }
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v === "boolean") return v;
    // YAML 1.1 (the original's PyYAML) read these words as booleans.
    if (typeof v === "string") {
      const w = v.toLowerCase();
      if (["yes", "y", "on", "true"].includes(w)) return true;
      if (["no", "n", "off", "false"].includes(w)) return false;
    }
    this.error(key, `"${this.prefix}${key}" must be true or false, not ${typeName(v)}`);
    return undefined;
  }

  /** A map of string to string; scalar values are coerced as written. */
  stringMap(key: string): Record<string, string> {
    const v = this.get(key);
    if (v === undefined) return {};
    if (!isMap(v)) {
      this.error(
        key,
        `"${this.prefix}${key}" must be a map of names to values, not ${typeName(v)}`,
      );
      return {};
    }
    const out: Record<string, string> = {};
    for (const [k, item] of Object.entries(v)) {
      const s = item === null ? "" : this.text(v, k, item);
      if (s === undefined) {
        this.problems.error(
          { container: v, key: k, task: this.task, field: `${this.prefix}${key}.${k}` },
          `"${this.prefix}${key}.${k}" must be a string, not ${typeName(item)}`,
        );
      } else {
        out[k] = s;
      }
    }
    return out;
  }

  /** A map or list of maps (e.g. `mount` / `mounts`); the singular spelling wins, as in the original. */
  maps(singular: string, plural: string): Fields[] {
    let key = singular;
    if (this.get(singular) !== undefined) {
      if (plural !== singular && this.get(plural) !== undefined) {
        this.problems.warn(
          this.where(plural, true),
          `both "${singular}" and "${plural}" are given; "${singular}" is used and "${plural}" ignored (as in the original Odin) — keep one`,
        );
      }
    } else {
      key = plural;
    }
    const v = this.get(key);
    if (v === undefined) return [];
    if (isMap(v)) return [new Fields(this.problems, v, this.task, `${this.prefix}${key}.`)];
    if (!Array.isArray(v)) {
      this.error(key, `"${this.prefix}${key}" must be a map or a list of maps, not ${typeName(v)}`);
      return [];
    }
    const out: Fields[] = [];
    v.forEach((item, i) => {
      if (isMap(item))
        out.push(new Fields(this.problems, item, this.task, `${this.prefix}${key}[${i}].`));
      else
        this.problems.error(
          { container: v, key: i, task: this.task, field: `${this.prefix}${key}[${i}]` },
          `"${this.prefix}${key}[${i}]" must be a map, not ${typeName(item)}`,
        );
    });
    return out;
  }

  /** A nested map read with its own Fields, or undefined. */
  sub(key: string): Fields | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (!isMap(v)) {
      this.error(key, `"${this.prefix}${key}" must be a map, not ${typeName(v)}`);
      return undefined;
    }
    return new Fields(this.problems, v, this.task, `${this.prefix}${key}.`);
  }

  /** Warns about keys outside `known`. */
  unknownKeys(known: ReadonlySet<string>, what: string): void {
    for (const k of Object.keys(this.map)) {
      if (!known.has(k)) {
        this.problems.warn(
          this.where(k, true),
          `unknown key "${this.prefix}${k}" in ${what} is ignored — known keys are ${[...known].filter((x) => !x.startsWith("_")).join(", ")}`,
        );
      }
    }
  }
}

const quantityPattern = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$/;

function quantity(f: Fields, key: string): string | undefined {
  const s = f.string(key);
  if (s === undefined) return undefined;
  if (!quantityPattern.test(s)) {
    f.error(
      key,
      `"${f.prefix}${key}" is "${s}", which is not a Kubernetes quantity (e.g. 4, 4.5, 500m, 16Gi)`,
    );
    return undefined;
  }
  return s;
}

function amounts(f: Fields, key: string): ResourceAmounts | undefined {
  const sub = f.sub(key);
  if (sub === undefined) return undefined;
  sub.unknownKeys(new Set(["limits", "requests"]), `"${key}"`);
  const out: ResourceAmounts = {};
  const limits = quantity(sub, "limits");
  const requests = quantity(sub, "requests");
  if (limits !== undefined) out.limits = limits;
  if (requests !== undefined) out.requests = requests;
  return out;
}

const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/;
const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `90s`, `1h30m`, `500ms`, or a plain number of seconds, into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  let rest = s;
  let total = 0;
  if (rest === "") return undefined;
  while (rest !== "") {
    const m = durationPattern.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * unitMs[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

function duration(f: Fields, key: string, allowZero = false): number | undefined {
  const s = f.string(key);
  if (s === undefined) return undefined;
  const ms = parseDuration(s);
  if (ms === undefined || ms < 0 || (ms === 0 && !allowZero)) {
    f.error(key, `"${key}" is "${s}", which is not a duration — write e.g. 30s, 10m, 2h or 1h30m`);
    return undefined;
  }
  return ms;
}

/** Every spelling of `resource_type` the original accepted, and a few it declared but forgot. */
const resourceTypeAliases = new Map<string, ResourceType>([
  ...resourceTypes.map((t): [string, ResourceType] => [t.toLowerCase(), t]),
  ["tensorflowjob", "TFJob"],
  ["pytjob", "PyTorchJob"],
  ["pytorchelastic", "ElasticJob"],
]);

const pullPolicies = new Map<string, Task["pullPolicy"]>([
  ["always", "Always"],
  ["ifnotpresent", "IfNotPresent"],
  ["never", "Never"],
]);

const taskKeys = new Set([
  "name",
  "image",
  "command",
  "args",
  "depends",
  "mount",
  "mounts",
  "ephem_volume",
  "ephem_volumes",
  "secret",
  "secrets",
  "config_map",
  "config_maps",
  "num_gpus",
  "cpu",
  "memory",
  "security_context",
  "pull_policy",
  "node_selector",
  "resource_type",
  "num_workers",
  "inputs",
  "outputs",
  "env",
  "tolerations",
  "labels",
  "annotations",
  "service_account",
  "retries",
  "retry_backoff",
  "timeout",
  "pending_timeout",
  "cache",
  "cache_ttl",
  "cache_image_tag",
]);

/** Keys the original's own HTTP tier wrote into tasks; they mean nothing and are not warned about. */
const ignoredTaskKeys = new Set(["id"]);

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const qualifiedName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function isLabelKey(k: string): boolean {
  const slash = k.lastIndexOf("/");
  const name = slash === -1 ? k : k.slice(slash + 1);
  const prefix = slash === -1 ? undefined : k.slice(0, slash);
  return (
    name.length <= 63 &&
    qualifiedName.test(name) &&
    (prefix === undefined || isDnsSubdomain(prefix))
  );
}

/** A `^task.field` reference found in a task value, and where. */
interface Reference extends TaskReference {
  where: Where;
  /** In `args`, where it is resolved at launch. */
  inArgs: boolean;
}

/** Finds implicit dependencies (references.ts): whole `^task…` values anywhere, and `{^task…}` spans in args. */
function collectReferences(map: Json, taskName: string, out: Reference[]): void {
  for (const [key, value] of Object.entries(map)) {
    if (key === "depends" || key === "name") continue;
    const items = Array.isArray(value) ? value : [value];
    items.forEach((item, i) => {
      if (typeof item !== "string") return;
      const container = Array.isArray(value) ? value : map;
      const where: Where = {
        container,
        key: Array.isArray(value) ? i : key,
        task: taskName,
        field: Array.isArray(value) ? `${key}[${i}]` : key,
      };
      const inArgs = key === "args";
      for (const ref of findReferences(item, inArgs)) out.push({ ...ref, where, inArgs });
    });
  }
}

// Most tasks leave most fields empty; sharing one frozen empty value per kind keeps a
// 100,000-task pipeline small.
const noItems: readonly never[] = Object.freeze([]);
const noEntries: Readonly<Record<string, never>> = Object.freeze({});

function list<T>(items: readonly T[]): readonly T[] {
  return items.length === 0 ? noItems : items;
}

function dict<T>(entries: Readonly<Record<string, T>>): Readonly<Record<string, T>> {
  for (const _ in entries) return entries;
  return noEntries;
}

/** JSON-safe copy of an unknown key's value (dates as ISO strings). */
function jsonSafe(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  return v;
}

function readTask(problems: Problems, map: Json, references: Reference[]): Task {
  const nameField = new Fields(problems, map, undefined, "");
  const name = nameField.string("name", true) ?? "";
  const f = new Fields(problems, map, name || undefined, "");

  if (name !== "") {
    if (name.includes(".")) {
      f.error(
        "name",
        `task name "${name}" may not contain "." (it separates task and field in ^task.field references)`,
      );
    } else if (!isDnsLabel(name)) {
      const suggestion = name
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, maxNameLength);
      f.error(
        "name",
        name.length > maxNameLength
          ? `task name "${name}" is ${name.length} characters; at most ${maxNameLength} fit in a Kubernetes label`
          : `task name "${name}" must be lower-case letters, digits and "-", starting and ending with a letter or digit${suggestion && suggestion !== name ? ` (e.g. "${suggestion}")` : ""}`,
      );
    }
  }

  const image = f.string("image", true) ?? "";
  let command = f.stringList("command");
  if (f.get("command") === undefined) {
    problems.error(
      { container: map, task: name || undefined, field: "command" },
      `missing required key "command"`,
    );
  } else if (command.length === 0 && Array.isArray(f.get("command"))) {
    f.error("command", `"command" is an empty list; give the program to run`);
  }
  command = command.filter((c) => c !== undefined);
  const args = f.stringList("args");

  const depends: string[] = [];
  const rawDepends = f.get("depends");
  if (rawDepends !== undefined) {
    const list = Array.isArray(rawDepends) ? rawDepends : [rawDepends];
    const seen = new Set<string>();
    list.forEach((d, i) => {
      const container = Array.isArray(rawDepends) ? rawDepends : map;
      const key = Array.isArray(rawDepends) ? i : "depends";
      const text = f.text(container, key, d);
      if (text === undefined) {
        problems.error(
          {
            container,
            key,
            task: name || undefined,
            field: Array.isArray(rawDepends) ? `depends[${i}]` : "depends",
          },
          `"depends" must name tasks, not ${typeName(d)}`,
        );
        return;
      }
      const dep = text.startsWith("^") ? text.slice(1) : text;
      if (!seen.has(dep)) {
        seen.add(dep);
        depends.push(dep);
      }
    });
  }

  let resourceType: ResourceType = "Pod";
  const rt = f.string("resource_type");
  if (rt !== undefined) {
    const found = resourceTypeAliases.get(rt.toLowerCase());
    if (found === undefined) {
      f.error(
        "resource_type",
        `unknown resource_type "${rt}"; use one of ${resourceTypes.join(", ")}`,
      );
    } else {
      resourceType = found;
    }
  }
  const multi = multiWorkerTypes.has(resourceType);
  const numWorkers = f.int("num_workers", 1) ?? 1;
  if (!multi && numWorkers > 1) {
    f.problems.warn(
      f.where("num_workers"),
      `num_workers is ignored for resource_type ${resourceType}; use a multi-worker type (TFJob, PyTorchJob, MPIJob, ElasticJob)`,
    );
  }
  const gpus = f.int("num_gpus", 0);
  const numGpus = gpus ?? (multi ? 1 : 0);

  let pullPolicy: Task["pullPolicy"] = "IfNotPresent";
  const pp = f.string("pull_policy");
  if (pp !== undefined) {
    const found = pullPolicies.get(pp.toLowerCase());
    if (found === undefined)
      f.error("pull_policy", `pull_policy "${pp}" must be Always, IfNotPresent or Never`);
    else pullPolicy = found;
  }

  const ephemeralVolumes: EphemeralVolume[] = [];
  for (const e of f.maps("ephem_volume", "ephem_volumes")) {
    e.unknownKeys(new Set(["name", "type", "medium", "size_limit"]), "an ephemeral volume");
    const vname = e.string("name", true);
    const type = e.string("type") ?? "emptyDir";
    if (type !== "emptyDir")
      e.error("type", `ephemeral volume type "${type}" is not supported; use emptyDir`);
    const medium = e.string("medium");
    if (medium !== undefined && medium !== "" && medium !== "Memory") {
      e.error("medium", `medium "${medium}" must be Memory or empty (node disk)`);
    }
    const sizeLimit = quantity(e, "size_limit");
    if (vname === undefined) continue;
    if (!isDnsLabel(vname))
      e.error(
        "name",
        `volume name "${vname}" must be a DNS label (lower-case letters, digits, "-")`,
      );
    const vol: EphemeralVolume = { name: vname, type: "emptyDir" };
    if (medium) vol.medium = medium;
    if (sizeLimit !== undefined) vol.sizeLimit = sizeLimit;
    ephemeralVolumes.push(vol);
  }
  const ephemeralNames = new Set(ephemeralVolumes.map((v) => v.name));

  const mountPaths = new Map<string, string>();
  const checkPath = (m: Fields, path: string, owner: string): void => {
    if (!path.startsWith("/"))
      m.error("path", `mount path "${path}" must be absolute (start with /)`);
    const other = mountPaths.get(path);
    if (other !== undefined)
      m.error("path", `${owner} is mounted at ${path}, where ${other} is already mounted`);
    else mountPaths.set(path, owner);
  };

  const mounts: Mount[] = [];
  for (const m of f.maps("mount", "mounts")) {
    m.unknownKeys(new Set(["name", "path", "claim"]), "a mount");
    const mname = m.string("name", true);
    const path = m.string("path", true);
    const claim = m.string("claim");
    if (mname === undefined || path === undefined) continue;
    if (!isDnsLabel(mname))
      m.error(
        "name",
        `volume name "${mname}" must be a DNS label (lower-case letters, digits, "-")`,
      );
    if (claim !== undefined && !isDnsSubdomain(claim)) {
      m.error("claim", `claim "${claim}" is not a valid PersistentVolumeClaim name`);
    }
    if (claim === undefined && !ephemeralNames.has(mname)) {
      m.problems.error(
        { container: m.map, task: name || undefined, field: m.prefix.slice(0, -1) },
        `mount "${mname}" has no claim and no ephem_volumes entry is named "${mname}" — add "claim: <pvc name>" or an ephem_volumes entry named "${mname}"`,
      );
    }
    checkPath(m, path, `volume "${mname}"`);
    mounts.push(claim === undefined ? { name: mname, path } : { name: mname, path, claim });
  }

  const secrets: SecretMount[] = [];
  for (const s of f.maps("secret", "secrets")) {
    s.unknownKeys(new Set(["name", "path", "sub_path", "mode"]), "a secret");
    const sname = s.string("name", true);
    if (sname === undefined) continue;
    // The original gave its own two secrets well-known places.
    const known =
      sname === "odin-cred"
        ? { path: "/etc/odind/odin-cred.yml", subPath: "odin-cred.yml", mode: undefined }
        : sname === "ssh-key"
          ? { path: "/etc/odind/identity", subPath: "identity", mode: 0o400 }
          : undefined;
    const path = s.string("path", known === undefined) ?? known?.path;
    const subPath = s.string("sub_path") ?? known?.subPath;
    const mode = fileMode(s, "mode") ?? known?.mode;
    if (!isDnsSubdomain(sname))
      s.error("name", `secret name "${sname}" is not a valid Kubernetes name`);
    if (path === undefined) continue;
    checkPath(s, path, `secret "${sname}"`);
    const secret: SecretMount = { name: sname, path };
    if (subPath) secret.subPath = subPath;
    if (mode !== undefined) secret.mode = mode;
    secrets.push(secret);
  }

  const configMaps: ConfigMapMount[] = [];
  for (const c of f.maps("config_map", "config_maps")) {
    c.unknownKeys(new Set(["name", "path", "sub_path"]), "a config map");
    const cname = c.string("name", true);
    const path = c.string("path", true);
    const subPath = c.string("sub_path");
    if (cname === undefined || path === undefined) continue;
    if (!isDnsSubdomain(cname))
      c.error("name", `config map name "${cname}" is not a valid Kubernetes name`);
    checkPath(c, path, `config map "${cname}"`);
    configMaps.push(subPath ? { name: cname, path, subPath } : { name: cname, path });
  }

  let securityContext: SecurityContext | undefined;
  const sc = f.sub("security_context");
  if (sc !== undefined) {
    sc.unknownKeys(new Set(["fs_group", "run_as_user", "run_as_group"]), "security_context");
    securityContext = {};
    const fsGroup = sc.int("fs_group", 0);
    const runAsUser = sc.int("run_as_user", 0);
    const runAsGroup = sc.int("run_as_group", 0);
    if (fsGroup !== undefined) securityContext.fsGroup = fsGroup;
    if (runAsUser !== undefined) securityContext.runAsUser = runAsUser;
    if (runAsGroup !== undefined) securityContext.runAsGroup = runAsGroup;
  }

  const nodeSelector = f.stringMap("node_selector");
  for (const k of Object.keys(nodeSelector)) {
    if (!isLabelKey(k))
      f.error("node_selector", `node_selector key "${k}" is not a valid Kubernetes label key`);
  }

  const outputs: Record<string, string> = {};
  const rawOutputs = f.get("outputs");
  if (Array.isArray(rawOutputs)) {
    f.stringList("outputs").forEach((p, i) => (outputs[String(i)] = p));
  } else if (rawOutputs !== undefined) {
    Object.assign(outputs, f.stringMap("outputs"));
  }

  const env = f.stringMap("env");
  for (const k of Object.keys(env)) {
    if (!envName.test(k))
      f.error(
        "env",
        `environment variable name "${k}" must be letters, digits and "_", not starting with a digit`,
      );
    else if (k === "ODIN_TASK_ID" || k === "ODIN_RUN_ID" || k === "ODIN_ATTEMPT") {
      problems.warn(
        {
          container: isMap(map.env) ? map.env : map,
          key: k,
          atKey: true,
          task: name || undefined,
          field: `env.${k}`,
        },
        `env.${k} is set by Odin for every task; this value is ignored`,
      );
    }
  }

  const labels = f.stringMap("labels");
  for (const [k, v] of Object.entries(labels)) {
    if (!isLabelKey(k)) f.error("labels", `label key "${k}" is not a valid Kubernetes label key`);
    else if (!isLabelValue(v))
      f.error(
        "labels",
        `label "${k}" has value "${v}", which is not a valid Kubernetes label value (63 characters of letters, digits, "-", "_", ".")`,
      );
    if (k.startsWith(odinKeyPrefix))
      f.error(
        "labels",
        `label "${k}" uses the ${odinKeyPrefix} prefix, which Odin reserves for its own labels`,
      );
  }
  const annotations = f.stringMap("annotations");
  for (const k of Object.keys(annotations)) {
    if (!isLabelKey(k))
      f.error("annotations", `annotation key "${k}" is not a valid Kubernetes annotation key`);
  }

  const tolerations: Toleration[] = [];
  const rawTolerations = f.get("tolerations");
  if (rawTolerations !== undefined && !Array.isArray(rawTolerations)) {
    f.error("tolerations", `"tolerations" must be a list of maps, not ${typeName(rawTolerations)}`);
  } else if (Array.isArray(rawTolerations)) {
    for (const t of f.maps("tolerations", "tolerations")) {
      t.unknownKeys(
        new Set(["key", "operator", "value", "effect", "toleration_seconds", "tolerationSeconds"]),
        "a toleration",
      );
      const tol: Toleration = {};
      const key = t.string("key");
      const operator = t.string("operator");
      const value = t.string("value");
      const effect = t.string("effect");
      const seconds = t.int("toleration_seconds", 0) ?? t.int("tolerationSeconds", 0);
      if (key !== undefined) tol.key = key;
      if (operator !== undefined) {
        if (operator === "Exists" || operator === "Equal") tol.operator = operator;
        else t.error("operator", `toleration operator "${operator}" must be Exists or Equal`);
      }
      if (value !== undefined) tol.value = value;
      if (effect !== undefined) {
        if (effect === "NoSchedule" || effect === "PreferNoSchedule" || effect === "NoExecute")
          tol.effect = effect;
        else
          t.error(
            "effect",
            `toleration effect "${effect}" must be NoSchedule, PreferNoSchedule or NoExecute`,
          );
      }
      if (seconds !== undefined) tol.tolerationSeconds = seconds;
      tolerations.push(tol);
    }
  }

  const serviceAccount = f.string("service_account");
  if (serviceAccount !== undefined && !isDnsSubdomain(serviceAccount)) {
    f.error(
      "service_account",
      `service account "${serviceAccount}" is not a valid Kubernetes name`,
    );
  }

  const extra: Record<string, unknown> = {};
  for (const k of Object.keys(map)) {
    if (taskKeys.has(k) || ignoredTaskKeys.has(k)) continue;
    extra[k] = jsonSafe(map[k]);
    problems.warn(
      { container: map, key: k, atKey: true, task: name || undefined, field: k },
      `unknown task key "${k}" is ignored${typeof map[k] === "string" && map[k].startsWith("^") ? " (its ^ reference still adds a dependency)" : ""}`,
    );
  }

  // Processing variables: substituted in command, args and env values at launch; checked now.
  const checkVariables = (
    container: object,
    key: string | number,
    field: string,
    value: string,
  ): void => {
    for (const p of scanVariables(value).problems) {
      problems.error({ container, key, task: name || undefined, field }, `${field}: ${p.message}`);
    }
  };
  const rawCommand = map.command;
  const rawArgs = map.args;
  command.forEach((c, i) =>
    Array.isArray(rawCommand)
      ? checkVariables(rawCommand, i, `command[${i}]`, c)
      : checkVariables(map, "command", "command", c),
  );
  args.forEach((a, i) =>
    Array.isArray(rawArgs)
      ? checkVariables(rawArgs, i, `args[${i}]`, a)
      : checkVariables(map, "args", "args", a),
  );
  const rawEnv = map.env;
  for (const [k, v] of Object.entries(env))
    checkVariables(isMap(rawEnv) ? rawEnv : map, k, `env.${k}`, v);

  collectReferences(map, name, references);

  const task: Task = {
    name,
    image,
    command,
    args,
    depends,
    mounts: list(mounts),
    ephemeralVolumes: list(ephemeralVolumes),
    secrets: list(secrets),
    configMaps: list(configMaps),
    numGpus,
    pullPolicy,
    nodeSelector: dict(nodeSelector),
    resourceType,
    numWorkers,
    inputs: list(f.stringList("inputs")),
    outputs: dict(outputs),
    env: dict(env),
    tolerations: list(tolerations),
    labels: dict(labels),
    annotations: dict(annotations),
    retries: f.int("retries", 0, 100) ?? 0,
    retryBackoffMs: duration(f, "retry_backoff", true) ?? defaultRetryBackoffMs,
    extra: dict(extra),
  };
  const cpu = amounts(f, "cpu");
  const memory = amounts(f, "memory");
  const timeoutMs = duration(f, "timeout");
  const pendingTimeoutMs = duration(f, "pending_timeout");
  if (cpu !== undefined) task.cpu = cpu;
  if (memory !== undefined) task.memory = memory;
  if (securityContext !== undefined) task.securityContext = securityContext;
  if (serviceAccount !== undefined) task.serviceAccount = serviceAccount;
  if (timeoutMs !== undefined) task.timeoutMs = timeoutMs;
  if (pendingTimeoutMs !== undefined) task.pendingTimeoutMs = pendingTimeoutMs;
  // Caching (docs/caching.md): on unless `cache: false`; only tasks that declare outputs are cached.
  if (f.bool("cache") === false) task.cache = false;
  const cacheTtlMs = duration(f, "cache_ttl");
  if (cacheTtlMs !== undefined) task.cacheTtlMs = cacheTtlMs;
  if (f.bool("cache_image_tag") === true) task.cacheImageTag = true;
  return task;
}

/** A file mode written as YAML 1.1 octal (`0400`), `0o400`, a quoted "0400", or decimal (`256`). */
function fileMode(f: Fields, key: string): number | undefined {
  const v = f.get(key);
  if (v === undefined) return undefined;
  const text = f.text(f.map, key, v);
  let mode: number | undefined;
  if (text !== undefined) {
    if (/^0o?[0-7]+$/.test(text)) mode = parseInt(text.replace(/^0o?/, "") || "0", 8);
    else if (/^\d+$/.test(text)) mode = Number(text);
  }
  if (mode === undefined || mode > 0o777) {
    f.error(key, `"${key}" must be a file mode such as 0644 or 0400`);
    return undefined;
  }
  return mode;
}

function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(name, c, bestDistance);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** A cycle as `a → b → a`, eliding the middle of very long ones so the message stays readable. */
function describeCycle(cycle: readonly string[]): string {
  if (cycle.length <= 20) return cycle.join(" → ");
  const head = cycle.slice(0, 10).join(" → ");
  const tail = cycle.slice(-5).join(" → ");
  return `${head} → … ${cycle.length - 15} more … → ${tail}`;
}

/**
 * Reads, normalizes and validates one `main.yml`. Never throws on bad input: every problem in the
 * document is returned at once, each with its file, line and column.
 */
export function loadPipeline(text: string, options: LoadOptions = {}): LoadResult {
  const file = options.file ?? "main.yml";
  const parsed = parseSource(text, options.limits ?? defaultSourceLimits);
  if (!parsed.ok) {
    const { message, position } = parsed.error;
    return {
      valid: false,
      problems: [
        { severity: "error", file, line: position.line, column: position.column, message },
      ],
      parameters: {},
    };
  }
  const problems = new Problems(file, parsed.index);
  const doc = parsed.value;
  if (!isMap(doc)) {
    problems.error(
      { container: isMap(doc) || Array.isArray(doc) ? doc : undefined },
      doc === undefined || doc === null
        ? `the file is empty; a pipeline needs a "tasks" list`
        : `a pipeline must be a map with a "tasks" list, not ${typeName(doc)}`,
    );
    return { valid: false, problems: problems.list, parameters: {} };
  }

  const declared = readParameters(problems, doc);
  const schedules = readSchedules(problems, doc, declared);
  const triggers = readTriggers(problems, doc, declared, options.path ?? ".");
  const parameters = resolveParameters(problems, doc, declared, options);
  substituteParameters(problems, doc, declared, parameters);

  const top = new Fields(problems, doc, undefined, "");
  let name = defaultPipelineName;
  const givenName = top.string("name");
  if (givenName !== undefined) {
    if (!pipelineNamePattern.test(givenName)) {
      top.error(
        "name",
        `pipeline name "${givenName}" must be lower-case letters, digits, "-" and ".", starting with a letter or digit`,
      );
    } else if (givenName.length > maxPipelineNameLength) {
      top.error(
        "name",
        `pipeline name "${givenName}" is ${givenName.length} characters; at most ${maxPipelineNameLength} leave room for the run id suffix in a Kubernetes label`,
      );
    } else {
      name = givenName;
    }
  }
  const failFast = top.bool("fail_fast") ?? true;
  const parallelism = top.int("parallelism", 1);
  const notify = readNotify(top);

  const rawTasks = doc.tasks;
  if (rawTasks === undefined || rawTasks === null) {
    problems.error({ container: doc }, `missing required key "tasks": list the pipeline's tasks`);
    return { valid: false, problems: problems.list, parameters: {} };
  }
  if (!Array.isArray(rawTasks)) {
    top.error("tasks", `"tasks" must be a list of tasks, not ${typeName(rawTasks)}`);
    return { valid: false, problems: problems.list, parameters: {} };
  }
  if (rawTasks.length === 0) {
    top.error("tasks", `"tasks" is empty; a pipeline needs at least one task`);
  }

  const tasks: Task[] = [];
  const taskMaps: Json[] = [];
  const references: Reference[] = [];
  rawTasks.forEach((item, i) => {
    if (!isMap(item)) {
      problems.error(
        { container: rawTasks, key: i, field: `tasks[${i}]` },
        `tasks[${i}] must be a map describing a task, not ${typeName(item)}`,
      );
      return;
    }
    tasks.push(readTask(problems, item, references));
    taskMaps.push(item);
  });

  const byName = new Map<string, number>();
  tasks.forEach((t, i) => {
    if (t.name === "") return;
    const first = byName.get(t.name);
    if (first !== undefined) {
      problems.error(
        { container: taskMaps[i], key: "name", task: t.name, field: "name" },
        `task name "${t.name}" is used twice (first at line ${problems.index.position(problems.index.valueOffset(taskMaps[first]!, "name") ?? 0).line}); task names must be unique`,
      );
    } else {
      byName.set(t.name, i);
    }
  });

  const suggest = (missing: string): string => {
    if (byName.size > 5000) return "";
    const near = closest(missing, byName.keys());
    return near !== undefined ? ` (did you mean "${near}"?)` : "";
  };

  tasks.forEach((t, i) => {
    const map = taskMaps[i]!;
    const raw = map.depends;
    // Where a dependency is written; looked up only for a problem (a 10,000-task join's depends
    // would otherwise be searched once per entry).
    const whereOf = (dep: string, k: number): Where => {
      if (!Array.isArray(raw))
        return { container: map, key: "depends", task: t.name, field: "depends" };
      // Point at the entry as written (duplicates were merged, so find it by text).
      const at = raw.findIndex((x) => String(x).replace(/^\^/, "") === dep);
      return {
        container: raw,
        key: at === -1 ? k : at,
        task: t.name,
        field: `depends[${at === -1 ? k : at}]`,
      };
    };
    t.depends.forEach((dep, k) => {
      if (dep === t.name)
        problems.error(
          whereOf(dep, k),
          `task "${t.name}" depends on itself; remove "${dep}" from its depends`,
        );
      else if (!byName.has(dep))
        problems.error(
          whereOf(dep, k),
          `depends on "${dep}", which is not a task of this pipeline${suggest(dep)}`,
        );
    });
  });

  for (const ref of references) {
    const owner = ref.where.task ?? "";
    const task = tasks[byName.get(owner) ?? -1];
    if (ref.task === owner) {
      problems.error(
        ref.where,
        `"${ref.text}" refers to this task itself; a task can only use results of tasks before it`,
      );
    } else if (!byName.has(ref.task)) {
      problems.error(
        ref.where,
        `"${ref.text}" refers to task "${ref.task}", which is not a task of this pipeline${suggest(ref.task)}`,
      );
    } else {
      if (task !== undefined && !task.depends.includes(ref.task)) task.depends.push(ref.task);
      const unresolvable = ref.inArgs ? unresolvableReason(ref) : undefined;
      if (unresolvable !== undefined) problems.error(ref.where, unresolvable);
    }
  }

  const graph = TaskGraph.build(tasks);
  for (const cycle of graph.cycles()) {
    // A task that depends on itself was reported above with a message of its own.
    if (cycle.length === 2) continue;
    const first = byName.get(cycle[0]!)!;
    const rawDepends = taskMaps[first]!.depends;
    problems.error(
      {
        container:
          rawDepends !== undefined && rawDepends !== null
            ? Array.isArray(rawDepends)
              ? rawDepends
              : taskMaps[first]
            : taskMaps[first],
        key: Array.isArray(rawDepends) ? undefined : "depends",
        task: cycle[0],
        field: "depends",
      },
      `dependency cycle: ${describeCycle(cycle)} (each task depends on the next); remove one of these dependencies`,
    );
  }

  problems.list.sort((a, b) => a.line - b.line || a.column - b.column);
  const pipeline: Pipeline = { path: options.path ?? ".", name, failFast, tasks };
  if (parallelism !== undefined) pipeline.parallelism = parallelism;
  if (declared.length > 0) pipeline.parameters = declared;
  if (schedules.length > 0) pipeline.schedules = schedules;
  if (triggers.length > 0) pipeline.triggers = triggers;
  if (notify.length > 0) pipeline.notify = notify;
  const valid = !problems.list.some((p) => p.severity === "error");
  return { valid, problems: problems.list, pipeline, graph, parameters };
}

// -- Notifications ---------------------------------------------------------------------------

const notifyKeys = new Set(["webhook", "on"]);

/**
 * The `notify:` entries: a map or a list of maps `{webhook: {secret: NAME}, on: [failed, …]}`.
 * `webhook: NAME` is short for `{secret: NAME}`; `on` defaults to every end state.
 */
function readNotify(top: Fields): NotifyTarget[] {
  const out: NotifyTarget[] = [];
  for (const f of top.maps("notify", "notify")) {
    f.unknownKeys(notifyKeys, "a notify entry");
    const webhook = f.get("webhook");
    if (webhook === undefined) {
      f.problems.error(
        { container: f.map, field: `${f.prefix}webhook` },
        `missing required key "webhook": name the secret holding the webhook's URL, e.g. webhook: {secret: slack-ml}`,
      );
      continue;
    }
    // `webhook: NAME` or `webhook: {secret: NAME}`; `at` reports on the name as written.
    const w = typeof webhook === "string" ? undefined : f.sub("webhook");
    if (typeof webhook !== "string" && !w) continue;
    if (w) w.unknownKeys(new Set(["secret"]), `"${f.prefix}webhook"`);
    const secret = w ? w.string("secret", true) : webhook;
    if (typeof secret !== "string") continue;
    const at = w ?? f;
    const key = w ? "secret" : "webhook";
    const badName = webhookSecretProblem(
      secret,
      `"${at.prefix}${key}"`,
      "write webhook: {secret: NAME}",
    );
    if (badName !== undefined) {
      at.error(key, badName);
      continue;
    }
    const on: NotifyState[] = [];
    for (const [i, word] of f.stringList("on").entries()) {
      const problem = notifyStateProblem(word);
      if (problem !== undefined) {
        const raw = f.get("on");
        f.problems.error(
          Array.isArray(raw)
            ? { container: raw, key: i, field: `${f.prefix}on[${i}]` }
            : { container: f.map, key: "on", field: `${f.prefix}on` },
          problem,
        );
      } else if (!on.includes(word.toUpperCase() as NotifyState))
        on.push(word.toUpperCase() as NotifyState);
    }
    out.push({ webhookSecret: secret, on: on.length > 0 ? on : notifyStates });
  }
  return out;
}

// -- Parameters ------------------------------------------------------------------------------

/**
 * The `parameters:` declarations: a map of name to `{type, default, description}` (or to a bare
 * default, whose type is the value's; or to nothing: a required string), or a list of such maps
 * with a `name`.
 */
function readParameters(problems: Problems, doc: Json): ParameterSpec[] {
  const raw = doc.parameters;
  if (raw === undefined || raw === null) return [];
  const entries: [name: string, value: unknown, container: object, key: string | number][] = [];
  if (isMap(raw)) {
    for (const [k, v] of Object.entries(raw)) entries.push([k, v, raw, k]);
  } else if (Array.isArray(raw)) {
    raw.forEach((item, i) => {
      if (isMap(item) && typeof item.name === "string") entries.push([item.name, item, raw, i]);
      else
        problems.error(
          { container: raw, key: i, field: `parameters[${i}]` },
          `parameters[${i}] must be a map with a "name", e.g. {name: lr, type: number, default: 0.01}`,
        );
    });
  } else {
    problems.error(
      { container: doc, key: "parameters" },
      `"parameters" must be a map of parameter names to declarations, e.g. {lr: {type: number, default: 0.01}}, not ${typeName(raw)}`,
    );
    return [];
  }
  const out: ParameterSpec[] = [];
  const seen = new Set<string>();
  for (const [name, value, container, key] of entries) {
    const field = `parameters.${name}`;
    const where: Where = { container, key, field };
    if (!parameterNamePattern.test(name)) {
      problems.error(
        { ...where, atKey: typeof key === "string" },
        `parameter name "${name}" must be letters, digits and "_", starting with a letter or "_" (at most 63)`,
      );
      continue;
    }
    if (seen.has(name)) {
      problems.error(where, `parameter "${name}" is declared twice`);
      continue;
    }
    seen.add(name);
    const spec = readParameterSpec(problems, name, value, where);
    if (spec !== undefined) out.push(spec);
  }
  return out;
}

const parameterKeys = new Set(["name", "type", "default", "description"]);

function readParameterSpec(
  problems: Problems,
  name: string,
  value: unknown,
  where: Where,
): ParameterSpec | undefined {
  if (value === null || value === undefined) return { name, type: "string" };
  if (!isMap(value)) {
    const type = typeOfValue(value);
    if (type === undefined) {
      problems.error(
        where,
        `parameter "${name}": a default must be a string, number, boolean or list`,
      );
      return undefined;
    }
    return { name, type, default: value as ParameterValue };
  }
  const f = new Fields(problems, value, undefined, `parameters.${name}.`);
  f.unknownKeys(parameterKeys, `parameter "${name}"`);
  const spec: ParameterSpec = { name, type: "string" };
  const rawType = f.get("type");
  const def = f.get("default");
  if (rawType !== undefined) {
    if (typeof rawType !== "string" || !parameterTypes.includes(rawType as ParameterType)) {
      f.error(
        "type",
        `parameter "${name}": type must be one of ${parameterTypes.join(", ")}, not ${typeof rawType === "string" ? `"${rawType}"` : typeName(rawType)}`,
      );
      return undefined;
    }
    spec.type = rawType as ParameterType;
  } else if (def !== undefined) {
    spec.type = typeOfValue(def) ?? "string";
  }
  if (def !== undefined) {
    // A default is typed YAML: only a string default of a string parameter is taken as text.
    const got =
      typeof def === "string" && spec.type !== "string"
        ? {
            error: `parameter ${name} is ${spec.type}; the default ${JSON.stringify(def)} is a string`,
          }
        : coerceParameter(spec, def);
    if ("error" in got) f.error("default", got.error);
    else spec.default = got.value;
  }
  const description = f.string("description");
  if (description !== undefined) spec.description = description;
  return spec;
}

// -- Schedules -------------------------------------------------------------------------------

const scheduleKeys = new Set([
  "cron",
  "timezone",
  "parameters",
  "catchup",
  "concurrency",
  "notify",
]);

/**
 * The `schedules:` map: a name to `{cron, timezone, parameters, catchup, concurrency, notify}`, or to
 * a bare cron expression. Each schedule's parameter values are checked against the declared
 * parameters; its `notify` is read as the pipeline's.
 */
function readSchedules(
  problems: Problems,
  doc: Json,
  declared: readonly ParameterSpec[],
): ScheduleSpec[] {
  const raw = doc.schedules;
  if (raw === undefined || raw === null) return [];
  if (!isMap(raw)) {
    problems.error(
      { container: doc, key: "schedules" },
      `"schedules" must be a map of schedule names to schedules, e.g. {nightly: {cron: "0 2 * * *", timezone: UTC}}, not ${typeName(raw)}`,
    );
    return [];
  }
  const out: ScheduleSpec[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const where: Where = { container: raw, key: name, field: `schedules.${name}` };
    if (!scheduleNamePattern.test(name)) {
      problems.error(
        { ...where, atKey: true },
        `schedule name "${name}" must be lower-case letters, digits and "-", starting and ending with a letter or digit (at most 63)`,
      );
      continue;
    }
    const spec: ScheduleSpec = {
      name,
      cron: "",
      timezone: "UTC",
      parameters: {},
      catchup: "skip",
      concurrency: "allow",
    };
    if (typeof value === "string") {
      spec.cron = value;
      const bad = checkCron(value);
      if (bad !== undefined) problems.error(where, `schedule "${name}": ${bad}`);
      else out.push(spec);
      continue;
    }
    if (!isMap(value)) {
      problems.error(
        where,
        `schedule "${name}" must be a cron expression or a map with "cron", not ${typeName(value)}`,
      );
      continue;
    }
    const f = new Fields(problems, value, undefined, `schedules.${name}.`);
    f.unknownKeys(scheduleKeys, `schedule "${name}"`);
    let ok = true;
    const cron = f.string("cron", true);
    if (cron === undefined) ok = false;
    else {
      const bad = checkCron(cron);
      if (bad !== undefined) {
        f.error("cron", `schedule "${name}": ${bad}`);
        ok = false;
      }
      spec.cron = cron;
    }
    const timezone = f.string("timezone");
    if (timezone !== undefined) {
      const bad = checkTimezone(timezone);
      if (bad !== undefined) {
        f.error("timezone", `schedule "${name}": ${bad}`);
        ok = false;
      }
      spec.timezone = timezone;
    }
    const policy = <T extends string>(key: string, allowed: readonly T[]): T | undefined => {
      const v = f.string(key);
      if (v === undefined) return undefined;
      if (!(allowed as readonly string[]).includes(v)) {
        f.error(key, `schedule "${name}": ${key} must be one of ${allowed.join(", ")}, not "${v}"`);
        ok = false;
        return undefined;
      }
      return v as T;
    };
    spec.catchup = policy("catchup", catchupPolicies) ?? spec.catchup;
    spec.concurrency = policy("concurrency", concurrencyPolicies) ?? spec.concurrency;
    const errorsBefore = problems.list.filter((p) => p.severity === "error").length;
    const notify = readNotify(f);
    if (problems.list.filter((p) => p.severity === "error").length > errorsBefore) ok = false;
    if (notify.length > 0) spec.notify = notify;
    const values = f.get("parameters");
    if (values !== undefined && !isMap(values)) {
      f.error("parameters", `schedule "${name}": parameters must be a map of names to values`);
      ok = false;
    } else {
      const byName = new Map(declared.map((p) => [p.name, p]));
      for (const [p, v] of Object.entries(values ?? {})) {
        const at: Where = {
          container: values!,
          key: p,
          field: `schedules.${name}.parameters.${p}`,
        };
        const pspec = byName.get(p);
        if (pspec === undefined) {
          const near = closest(p, byName.keys());
          problems.error(
            at,
            `schedule "${name}" gives parameter "${p}", which the pipeline does not declare${near ? ` (did you mean "${near}"?)` : ""}`,
          );
          ok = false;
          continue;
        }
        const got = coerceParameter(pspec, v);
        if ("error" in got) {
          problems.error(at, `schedule "${name}": ${got.error}`);
          ok = false;
        } else spec.parameters[p] = got.value;
      }
      for (const pspec of declared) {
        if (pspec.default === undefined && !Object.hasOwn(spec.parameters, pspec.name)) {
          problems.error(
            where,
            `schedule "${name}" gives no value for parameter "${pspec.name}", which has no default; add it under schedules.${name}.parameters`,
          );
          ok = false;
        }
      }
    }
    if (ok) out.push(spec);
  }
  return out;
}

// -- Triggers --------------------------------------------------------------------------------

const triggerKeys = new Set(["paths", "policy", "parameters"]);

/**
 * The `triggers:` map: a name to `{paths, policy, parameters}`, to a list of paths, or to nothing
 * (every default: the pipeline's directory, `newest`). Paths are resolved against the pipeline's
 * directory; parameter values are checked against the declared parameters.
 */
function readTriggers(
  problems: Problems,
  doc: Json,
  declared: readonly ParameterSpec[],
  pipelineDir: string,
): TriggerSpec[] {
  const raw = doc.triggers;
  if (raw === undefined || raw === null) return [];
  if (!isMap(raw)) {
    problems.error(
      { container: doc, key: "triggers" },
      `"triggers" must be a map of trigger names to triggers, e.g. {code: {paths: [src/], policy: each}}, not ${typeName(raw)}`,
    );
    return [];
  }
  const out: TriggerSpec[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const where: Where = { container: raw, key: name, field: `triggers.${name}` };
    if (!triggerNamePattern.test(name)) {
      problems.error(
        { ...where, atKey: true },
        `trigger name "${name}" must be lower-case letters, digits and "-", starting and ending with a letter or digit (at most 63)`,
      );
      continue;
    }
    const spec: TriggerSpec = { name, paths: [], policy: "newest", parameters: {} };
    let ok = true;
    let f: Fields | undefined;
    if (value === null) {
      // `code:` alone: every default.
    } else if (Array.isArray(value)) {
      f = new Fields(problems, raw, undefined, "triggers.");
    } else if (isMap(value)) {
      f = new Fields(problems, value, undefined, `triggers.${name}.`);
      f.unknownKeys(triggerKeys, `trigger "${name}"`);
    } else {
      problems.error(
        where,
        `trigger "${name}" must be a map with "paths", "policy" and "parameters", or a list of paths, not ${typeName(value)}`,
      );
      continue;
    }
    // The paths as written: the map's `paths`, or the list given as the trigger itself.
    const pathsKey = Array.isArray(value) ? name : "paths";
    const written = f ? f.stringList(pathsKey, "path") : [];
    const pathsValue = f?.get(pathsKey);
    if (f && Array.isArray(pathsValue) && pathsValue.length === 0) {
      f.error(
        pathsKey,
        `trigger "${name}": paths is empty; leave it out to mean the pipeline's directory`,
      );
      ok = false;
    }
    written.forEach((path, i) => {
      const got = resolveTriggerPath(pipelineDir, path);
      if ("error" in got) {
        problems.error(
          Array.isArray(pathsValue)
            ? { container: pathsValue, key: i, field: `triggers.${name}.paths[${i}]` }
            : f!.where(pathsKey),
          `trigger "${name}": ${got.error}`,
        );
        ok = false;
      } else spec.paths.push(got.pattern);
    });
    if (spec.paths.length > 0 && spec.paths.every((p) => p.startsWith("!"))) {
      f!.error(
        pathsKey,
        `trigger "${name}": every path excludes ("!"); add one that includes, e.g. "." for the pipeline's directory`,
      );
      ok = false;
    }
    if (spec.paths.length === 0 && ok) spec.paths.push(pipelineDir === "." ? "" : pipelineDir);
    if (f && !Array.isArray(value)) {
      const policy = f.string("policy");
      if (policy !== undefined) {
        if (!(triggerPolicies as readonly string[]).includes(policy)) {
          f.error(
            "policy",
            `trigger "${name}": policy must be one of ${triggerPolicies.join(", ")}, not "${policy}"`,
          );
          ok = false;
        } else spec.policy = policy as TriggerPolicy;
      }
      const values = f.get("parameters");
      if (values !== undefined && !isMap(values)) {
        f.error("parameters", `trigger "${name}": parameters must be a map of names to values`);
        ok = false;
      } else {
        const byName = new Map(declared.map((p) => [p.name, p]));
        for (const [p, v] of Object.entries(values ?? {})) {
          const at: Where = {
            container: values!,
            key: p,
            field: `triggers.${name}.parameters.${p}`,
          };
          const pspec = byName.get(p);
          if (pspec === undefined) {
            const near = closest(p, byName.keys());
            problems.error(
              at,
              `trigger "${name}" gives parameter "${p}", which the pipeline does not declare${near ? ` (did you mean "${near}"?)` : ""}`,
            );
            ok = false;
            continue;
          }
          const got = coerceParameter(pspec, v);
          if ("error" in got) {
            problems.error(at, `trigger "${name}": ${got.error}`);
            ok = false;
          } else spec.parameters[p] = got.value;
        }
      }
    }
    for (const pspec of declared) {
      if (pspec.default === undefined && !Object.hasOwn(spec.parameters, pspec.name)) {
        problems.error(
          where,
          `trigger "${name}" gives no value for parameter "${pspec.name}", which has no default; add it under triggers.${name}.parameters`,
        );
        ok = false;
      }
    }
    if (ok) out.push(spec);
  }
  return out;
}

/** The run's values: each given value as its declared type, else the default. */
function resolveParameters(
  problems: Problems,
  doc: Json,
  declared: readonly ParameterSpec[],
  options: LoadOptions,
): Record<string, ParameterValue> {
  const values: Record<string, ParameterValue> = {};
  const given = options.parameters;
  const byName = new Map(declared.map((p) => [p.name, p]));
  const at = (name: string): Where => {
    const raw = doc.parameters;
    if (isMap(raw) && name in raw)
      return { container: raw, key: name, field: `parameters.${name}` };
    if (Array.isArray(raw)) {
      const i = raw.findIndex((x) => isMap(x) && x.name === name);
      if (i !== -1) return { container: raw, key: i, field: `parameters.${name}` };
    }
    return raw !== undefined
      ? { container: doc, key: "parameters", atKey: true }
      : { container: doc };
  };
  for (const [name, value] of Object.entries(given ?? {})) {
    const spec = byName.get(name);
    if (spec === undefined) {
      if (options.allowUndeclared) continue;
      const near = closest(name, byName.keys());
      problems.error(
        at(name),
        declared.length === 0
          ? `parameter "${name}" was given, but the pipeline declares no parameters; declare it under "parameters:" in main.yml`
          : `parameter "${name}" was given, but the pipeline does not declare it${near ? ` (did you mean "${near}"?)` : ""}; it declares ${declared.map((p) => p.name).join(", ")}`,
      );
      continue;
    }
    const got = coerceParameter(spec, value);
    if ("error" in got) problems.error(at(name), got.error);
    else values[name] = got.value;
  }
  for (const spec of declared) {
    if (Object.hasOwn(values, spec.name)) continue;
    if (spec.default !== undefined) values[spec.name] = spec.default;
    else if (given !== undefined && !(spec.name in given))
      problems.error(
        at(spec.name),
        `parameter "${spec.name}" has no default and no value was given; pass one: --set ${spec.name}=…`,
      );
  }
  return sortedParameters(values);
}

/** Fields whose text the processing variables are substituted in: a value's `$` stays literal. */
const substitutedFields = new Set(["args", "command", "env"]);

/**
 * Replaces every `${{ params.NAME }}` in the document (outside `parameters:` itself) in place. A
 * use that is a whole value becomes the typed value (`num_gpus: ${{ params.gpus }}` is a number,
 * `args: ${{ params.flags }}` a list); inside longer text it reads as text. Without a value (a
 * check on its own) a required parameter stands in with a sample of its type.
 */
function substituteParameters(
  problems: Problems,
  doc: Json,
  declared: readonly ParameterSpec[],
  values: Readonly<Record<string, ParameterValue>>,
): void {
  const byName = new Map(declared.map((p) => [p.name, p]));
  const valueOf = (p: string): ParameterValue | undefined => {
    const spec = byName.get(p);
    return spec === undefined ? undefined : (values[p] ?? sampleValue(spec));
  };
  const seen = new Set<object>();
  /** `task`: the task map `container` is (or is inside); `literal`: inside args, command or env. */
  const visit = (container: Json | unknown[], task: Json | undefined, literal: boolean): void => {
    if (seen.has(container)) return;
    seen.add(container);
    const taskName = task && typeof task.name === "string" ? task.name : undefined;
    const keys = Array.isArray(container) ? container.keys() : Object.keys(container);
    for (const key of keys) {
      if (container === doc && (key === "parameters" || key === "schedules" || key === "triggers"))
        continue;
      const v = (container as Record<string | number, unknown>)[key];
      const inLiteral = literal || (container === task && substitutedFields.has(String(key)));
      if (typeof v === "object" && v !== null && !(v instanceof Date)) {
        const isTask = container === doc.tasks && isMap(v);
        visit(v as Json | unknown[], isTask ? v : task, inLiteral);
        continue;
      }
      if (typeof v !== "string" || !mayUseParameters(v)) continue;
      const where: Where = { container, key, task: taskName };
      const { pieces, error } = scanParameters(v);
      // A use that is wrong is reported once: its `$` is escaped so no later check reads it again.
      const quiet = (): void => {
        (container as Record<string | number, unknown>)[key] = v.replace(
          /(?<!\$)\$\{\{/g,
          () => "$$" + "{{",
        );
      };
      if (error !== undefined) {
        problems.error(where, error);
        quiet();
        continue;
      }
      const unknown = pieces.filter((x) => "param" in x && !byName.has(x.param));
      for (const piece of unknown) {
        const p = (piece as { param: string }).param;
        const near = closest(p, byName.keys());
        problems.error(
          where,
          `"\${{ params.${p} }}" uses parameter "${p}", which the pipeline does not declare${near ? ` (did you mean "${near}"?)` : ""}; declare it under "parameters:"`,
        );
      }
      if (unknown.length > 0) {
        quiet();
        continue;
      }
      const out = (p: string): ParameterValue =>
        inLiteral ? escapeDollars(valueOf(p)!) : valueOf(p)!;
      const only = pieces.length === 1 ? pieces[0]! : undefined;
      (container as Record<string | number, unknown>)[key] =
        only !== undefined && "param" in only
          ? out(only.param)
          : pieces.map((x) => ("param" in x ? parameterText(out(x.param)) : x.text)).join("");
    }
  };
  visit(doc, undefined, false);
}
