// Label and field selectors with the API server's grammar and matching rules.
import { badRequest } from "./status.js";
import type { ResourceName } from "./resources.js";
import { type KubeObject, isRecord } from "./types.js";

/** A compiled selector: true when an object matches. */
export type Matcher = (object: KubeObject) => boolean;

type Requirement =
  | { op: "exists" | "!exists"; key: string }
  | { op: "in" | "notin"; key: string; values: Set<string> }
  | { op: "gt" | "lt"; key: string; value: number };

const KEY = String.raw`[A-Za-z0-9][-A-Za-z0-9_./]*`;
const VALUE = String.raw`[-A-Za-z0-9_.]*`;
const EXISTS = new RegExp(`^(${KEY})$`);
const NOT_EXISTS = new RegExp(String.raw`^!\s*(${KEY})$`);
const EQUALITY = new RegExp(String.raw`^(${KEY})\s*(==|=|!=)\s*(${VALUE})$`);
const SET = new RegExp(String.raw`^(${KEY})\s+(in|notin)\s*\(([^()]*)\)$`);
const ORDER = new RegExp(String.raw`^(${KEY})\s*(>|<)\s*(-?\d+)$`);

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

function parseRequirement(text: string): Requirement {
  let m = NOT_EXISTS.exec(text);
  if (m?.[1] !== undefined) return { op: "!exists", key: m[1] };
  m = EXISTS.exec(text);
  if (m?.[1] !== undefined) return { op: "exists", key: m[1] };
  m = EQUALITY.exec(text);
  if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined) {
    return { op: m[2] === "!=" ? "notin" : "in", key: m[1], values: new Set([m[3]]) };
  }
  m = SET.exec(text);
  if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined) {
    const values = m[3].split(",").map((v) => v.trim());
    if (values.some((v) => !new RegExp(`^${VALUE}$`).test(v))) {
      throw badRequest(`unable to parse requirement: invalid label value in "${text}"`);
    }
    return { op: m[2] === "in" ? "in" : "notin", key: m[1], values: new Set(values) };
  }
  m = ORDER.exec(text);
  if (m?.[1] !== undefined && m[3] !== undefined) {
    return { op: m[2] === ">" ? "gt" : "lt", key: m[1], value: Number(m[3]) };
  }
  throw badRequest(`unable to parse requirement: "${text}" is not a valid label selector term`);
}

function matchesRequirement(labels: Record<string, string>, r: Requirement): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.op) {
    case "exists":
      return has;
    case "!exists":
      return !has;
    case "in":
      return value !== undefined && r.values.has(value);
    case "notin":
      return value === undefined || !r.values.has(value);
    case "gt":
    case "lt": {
      if (value === undefined || !/^-?\d+$/.test(value)) return false;
      return r.op === "gt" ? Number(value) > r.value : Number(value) < r.value;
    }
  }
}

/** Compiles a label selector (`a=b,c!=d,e in (f,g),!h`); undefined when empty. Throws a 400. */
export function parseLabelSelector(selector: string | null | undefined): Matcher | undefined {
  if (selector === null || selector === undefined || selector.trim() === "") return undefined;
  const requirements = splitTopLevel(selector).map(parseRequirement);
  return (object) => {
    const labels = object.metadata.labels ?? {};
    return requirements.every((r) => matchesRequirement(labels, r));
  };
}

const COMMON_FIELDS = ["metadata.name", "metadata.namespace"];

/** Fields each type can be selected by, as on a real API server. */
const SELECTABLE_FIELDS: Record<ResourceName, readonly string[]> = {
  namespaces: [...COMMON_FIELDS, "status.phase"],
  nodes: [...COMMON_FIELDS, "spec.unschedulable"],
  pods: [
    ...COMMON_FIELDS,
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
  ],
  events: [
    ...COMMON_FIELDS,
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
  ],
  jobs: [...COMMON_FIELDS, "status.successful"],
  tfjobs: COMMON_FIELDS,
  pytorchjobs: COMMON_FIELDS,
  mpijobs: COMMON_FIELDS,
  elasticjobs: COMMON_FIELDS,
};

function fieldValue(object: KubeObject, path: string): string {
  if (path === "source") {
    const source = object["source"];
    return isRecord(source) && typeof source["component"] === "string" ? source["component"] : "";
  }
  if (path === "status.successful") {
    const status = object["status"];
    return isRecord(status) && typeof status["succeeded"] === "number"
      ? String(status["succeeded"])
      : "";
  }
  let current: unknown = object;
  for (const part of path.split(".")) {
    if (!isRecord(current)) return "";
    current = current[part];
  }
  if (typeof current === "string") return current;
  if (typeof current === "number" || typeof current === "boolean") return String(current);
  return "";
}

/** Splits on an unescaped separator, honouring `\,` `\=` `\\` escapes. */
function splitEscaped(text: string, separators: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? "";
    if (c === "\\" && i + 1 < text.length) {
      current += c + (text[i + 1] ?? "");
      i++;
    } else if (separators.includes(c)) {
      parts.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

const unescape = (s: string): string => s.replace(/\\(.)/g, "$1");

/** Compiles a field selector (`a=b,c!=d`) for a type; undefined when empty. Throws a 400. */
export function parseFieldSelector(
  resource: ResourceName,
  selector: string | null | undefined,
): Matcher | undefined {
  if (selector === null || selector === undefined || selector.trim() === "") return undefined;
  const allowed = SELECTABLE_FIELDS[resource];
  const terms = splitEscaped(selector, ",").map((term) => {
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(term.trim());
    if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) {
      throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    }
    const field = m[1].trim();
    if (!allowed.includes(field)) {
      throw badRequest(`field label not supported: ${field}`);
    }
    return { field, negate: m[2] === "!=", value: unescape(m[3]) };
  });
  return (object) => terms.every((t) => (fieldValue(object, t.field) === t.value) !== t.negate);
}

/** Combines matchers with AND; undefined when there are none. */
export function allOf(...matchers: (Matcher | undefined)[]): Matcher | undefined {
  const present = matchers.filter((m): m is Matcher => m !== undefined);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  return (object) => present.every((m) => m(object));
}
