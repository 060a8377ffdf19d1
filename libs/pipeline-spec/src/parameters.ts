// Run parameters: declared in a pipeline's `parameters:` map, used in task fields as
// `${{ params.NAME }}`, given per run (`odin run --set NAME=VALUE`), substituted when the pipeline
// is loaded for the run. The `${{ … }}` form cannot collide with the processing variables (`$VAR`,
// `${VAR}`: a variable name never starts with `{`) nor with a working shell command (`${{` is a
// syntax error in every POSIX shell), and `$${{ … }}` stays literal text like any `$$`.

/** The types a parameter may declare. */
export const parameterTypes = ["string", "int", "number", "bool", "list"] as const;
export type ParameterType = (typeof parameterTypes)[number];

/** A parameter's value: a string, a number, a boolean, or a list of values. */
export type ParameterValue = string | number | boolean | ParameterValue[];

/** One declared parameter. */
export interface ParameterSpec {
  name: string;
  type: ParameterType;
  /** Absent: the parameter is required. */
  default?: ParameterValue;
  description?: string;
}

/** A parameter's name: as an identifier in most languages, so `params.NAME` reads unambiguously. */
export const parameterNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** `$$` (kept: the processing variables' escape) or one `${{ … }}` use, and what it says inside. */
const usePattern = /\$\$|\$\{\{([^}]*)\}\}|\$\{\{/g;
const referencePattern = /^\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*$/;

/** Whether a string may hold a parameter use (a fast test before scanning). */
export const mayUseParameters = (s: string): boolean => s.includes("${{");

/** One piece of a string: literal text or a parameter's name. */
type Piece = { text: string } | { param: string };

/** Splits a string into text and parameter uses; `error` says what is wrong with a malformed use. */
export function scanParameters(s: string): { pieces: Piece[]; error?: string } {
  const pieces: Piece[] = [];
  let last = 0;
  for (const m of s.matchAll(usePattern)) {
    if (m[0] === "$$") continue;
    const ref = m[1] === undefined ? undefined : referencePattern.exec(m[1]);
    if (!ref)
      return {
        pieces,
        error: `"${m[0].slice(0, 40)}" is not a parameter use; write \${{ params.NAME }} (or $\${{ for a literal "\${{")`,
      };
    if (m.index > last) pieces.push({ text: s.slice(last, m.index) });
    pieces.push({ param: ref[1]! });
    last = m.index + m[0].length;
  }
  if (last < s.length) pieces.push({ text: s.slice(last) });
  return { pieces };
}

/** A value as it reads inside a longer string: lists as JSON, the rest as written. */
export function parameterText(v: ParameterValue): string {
  return Array.isArray(v) ? JSON.stringify(v) : String(v);
}

/** The type a value has, or undefined for what no parameter can hold (null, maps). */
export function typeOfValue(v: unknown): ParameterType | undefined {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "number";
  if (Array.isArray(v)) return v.every((x) => typeOfValue(x) !== undefined) ? "list" : undefined;
  return undefined;
}

/**
 * A value given for a parameter, as its declared type. Text (from `--set`) is read as the type
 * says (`3`, `0.01`, `true`, `[a, b]` or `a,b`); a typed value must already have the type (an int is
 * a number too). Returns an error message instead when it cannot be.
 */
export function coerceParameter(
  spec: Pick<ParameterSpec, "name" | "type">,
  v: unknown,
): { value: ParameterValue } | { error: string } {
  const bad = (): { error: string } => ({
    error: `parameter ${spec.name} is ${article(spec.type)}; ${describe(v)} is not`,
  });
  const t = typeOfValue(v);
  if (t === undefined) return bad();
  switch (spec.type) {
    case "string":
      return t === "list" ? bad() : { value: String(v) };
    case "int":
    case "number": {
      let n = v as number;
      if (t === "string") {
        const s = (v as string).trim();
        if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return bad();
        n = Number(s);
      } else if (t !== "int" && t !== "number") return bad();
      if (!Number.isFinite(n) || (spec.type === "int" && !Number.isSafeInteger(n))) return bad();
      return { value: n };
    }
    case "bool": {
      if (t === "bool") return { value: v as boolean };
      if (t !== "string") return bad();
      const w = (v as string).trim().toLowerCase();
      if (["true", "yes", "on", "1"].includes(w)) return { value: true };
      if (["false", "no", "off", "0"].includes(w)) return { value: false };
      return bad();
    }
    case "list": {
      if (t === "list") return { value: v as ParameterValue[] };
      if (t !== "string") return bad();
      const s = (v as string).trim();
      if (s.startsWith("[")) {
        try {
          const parsed: unknown = JSON.parse(s);
          if (typeOfValue(parsed) === "list") return { value: parsed as ParameterValue[] };
        } catch {
          // not JSON: fall through to the error
        }
        return bad();
      }
      return { value: s === "" ? [] : s.split(",").map((x) => x.trim()) };
    }
  }
}

function article(type: ParameterType): string {
  return {
    string: "a string",
    int: "a whole number (int)",
    number: "a number",
    bool: "true or false (bool)",
    list: "a list",
  }[type];
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return "a map";
}

/** A value standing in for a required parameter when a pipeline is checked without values. */
export function sampleValue(spec: ParameterSpec): ParameterValue {
  return { string: spec.name, int: 1, number: 1, bool: false, list: [] }[spec.type];
}

/**
 * Values are literal where processing variables are substituted (`args`, `command`, `env`): a `$`
 * in a value is written `$$` there, so `--set pw='a$b'` reaches the task as `a$b`.
 */
export function escapeDollars(v: ParameterValue): ParameterValue {
  if (typeof v === "string") return v.replaceAll("$", "$$");
  if (Array.isArray(v)) return v.map(escapeDollars);
  return v;
}

/** Parameters in a stable order (by name), so equal sets compare and print equally. */
export function sortedParameters(
  values: Readonly<Record<string, ParameterValue>>,
): Record<string, ParameterValue> {
  return Object.fromEntries(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1)));
}
