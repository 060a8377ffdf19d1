// A pipeline's declared parameters as a form (typed inputs, defaults, descriptions), and a run's
// resolved parameters as text — the same values `odin run --set` gives and `odin status` prints.
import { toJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { Parameter } from "../gen/odin/common/v1/pipeline_pb.js";

/** A value as `odin status` prints it: lists as JSON, the rest as written. */
export function parameterText(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

/** A parameter's default, as JSON; undefined when it is required. */
export function defaultOf(p: Parameter): JsonValue | undefined {
  if (!p.defaultValue || p.defaultValue.kind.case === undefined) return undefined;
  const v = toJson(ValueSchema, p.defaultValue);
  return v === null ? undefined : v;
}

/** What each input holds: text, or a checkbox's state. */
export type ParameterInputs = Record<string, string | boolean>;

/** The inputs' first values: each default (a bool's as checked or not; a list's as JSON). */
export function initialInputs(params: readonly Parameter[]): ParameterInputs {
  return Object.fromEntries(
    params.map((p) => {
      const d = defaultOf(p);
      return [p.name, p.type === "bool" ? d === true : parameterText(d)];
    }),
  );
}

/**
 * The values to submit: only those that differ from their default (the server fills in defaults
 * with their exact types); text is sent as text, which the server reads as the declared type and
 * refuses with the parameter's name when it is not one.
 */
export function submittedValues(
  params: readonly Parameter[],
  inputs: ParameterInputs,
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const p of params) {
    const v = inputs[p.name];
    const d = defaultOf(p);
    if (typeof v === "boolean") {
      if (d === undefined || v !== d) out[p.name] = v;
    } else if (v !== undefined && (d === undefined || v !== parameterText(d))) {
      out[p.name] = v;
    }
  }
  return out;
}

const hints: Record<string, string> = {
  int: "a whole number",
  number: "a number",
  list: "a,b,c or a JSON list",
  string: "text",
};

/** One input per declared parameter, typed, with its description and default. */
export function ParameterFields({
  params,
  inputs,
  onChange,
}: {
  params: readonly Parameter[];
  inputs: ParameterInputs;
  onChange: (name: string, value: string | boolean) => void;
}) {
  if (params.length === 0) return null;
  return (
    <fieldset class="parameters">
      <legend>Parameters</legend>
      {params.map((p) => {
        const id = `param-${p.name}`;
        const d = defaultOf(p);
        const help = [
          p.description,
          `${p.type}${d === undefined ? ", required" : `, default ${parameterText(d)}`}`,
        ]
          .filter(Boolean)
          .join(" — ");
        const value = inputs[p.name];
        return (
          <div class="parameter" data-parameter={p.name}>
            <label for={id} class="mono">
              {p.name}
            </label>
            {p.type === "bool" ? (
              <input
                id={id}
                type="checkbox"
                checked={value === true}
                aria-describedby={`${id}-help`}
                onChange={(e) => onChange(p.name, e.currentTarget.checked)}
              />
            ) : p.type === "int" || p.type === "number" ? (
              <input
                id={id}
                type="number"
                step={p.type === "int" ? "1" : "any"}
                value={typeof value === "string" ? value : ""}
                required={d === undefined}
                placeholder={hints[p.type] ?? ""}
                aria-describedby={`${id}-help`}
                onInput={(e) => onChange(p.name, e.currentTarget.value)}
              />
            ) : (
              <input
                id={id}
                type="text"
                value={typeof value === "string" ? value : ""}
                required={d === undefined}
                placeholder={hints[p.type] ?? ""}
                aria-describedby={`${id}-help`}
                onInput={(e) => onChange(p.name, e.currentTarget.value)}
              />
            )}
            <small id={`${id}-help`} class="muted">
              {help}
            </small>
          </div>
        );
      })}
    </fieldset>
  );
}
