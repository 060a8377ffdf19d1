// Name and label validation with the API server's rules and messages, so a manifest that a real
// cluster would refuse is refused here too.
import { randomInt } from "node:crypto";
import type { NameRule } from "./resources.js";

/** One reason an object is invalid: the field, the value and what is wrong. */
export interface FieldProblem {
  field: string;
  value: string;
  /** What is wrong; for `FieldValueNotSupported`, the supported values. */
  message: string;
  /** Cause type as the API server reports it (default `FieldValueInvalid`). */
  type?:
    | "FieldValueInvalid"
    | "FieldValueRequired"
    | "FieldValueNotSupported"
    | "FieldValueDuplicate"
    | "FieldValueTypeInvalid"
    /** A field the schema does not declare (strict field validation). */
    | "FieldValueUnknown";
}

/** A problem's text as the API server writes it: `field: Invalid value: "v": why`. */
export function describeProblem(p: FieldProblem): string {
  switch (p.type ?? "FieldValueInvalid") {
    case "FieldValueRequired":
      return `${p.field}: Required value${p.message === "" ? "" : `: ${p.message}`}`;
    case "FieldValueNotSupported":
      return `${p.field}: Unsupported value: "${p.value}": supported values: ${p.message}`;
    case "FieldValueDuplicate":
      return `${p.field}: Duplicate value: "${p.value}"`;
    case "FieldValueInvalid":
    case "FieldValueTypeInvalid":
      return `${p.field}: Invalid value: "${p.value}": ${p.message}`;
    case "FieldValueUnknown":
      return `${p.field}: unknown field "${p.field}"`;
  }
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/** Problems with `name` under `rule` (empty when valid). */
export function validateName(
  name: string,
  rule: NameRule,
  field = "metadata.name",
): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const max = rule === "dns1123-subdomain" ? 253 : 63;
  if (name.length > max) {
    problems.push({ field, value: name, message: `must be no more than ${max} characters` });
  }
  const [pattern, message] =
    rule === "dns1123-label"
      ? [LABEL, LABEL_MSG]
      : rule === "dns1035-label"
        ? [DNS1035, DNS1035_MSG]
        : [SUBDOMAIN, SUBDOMAIN_MSG];
  if (!pattern.test(name)) problems.push({ field, value: name, message });
  return problems;
}

/** Problems with a label map (keys are qualified names, values ≤ 63 characters). */
export function validateLabels(labels: Record<string, unknown>, field: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const [key, value] of Object.entries(labels)) {
    problems.push(...validateQualifiedName(key, field));
    if (typeof value !== "string") {
      problems.push({
        field: `${field}.${key}`,
        value: String(value),
        message: "must be a string",
      });
      continue;
    }
    if (value.length > 63) {
      problems.push({ field, value, message: "must be no more than 63 characters" });
    }
    if (value !== "" && !QUALIFIED_NAME.test(value)) {
      problems.push({ field, value, message: LABEL_VALUE_MSG });
    }
  }
  return problems;
}

/** Problems with a label or annotation key: `[prefix/]name`. */
export function validateQualifiedName(key: string, field: string): FieldProblem[] {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const problems: FieldProblem[] = [];
  if (prefix !== undefined) {
    if (prefix.length === 0 || prefix.length > 253 || !SUBDOMAIN.test(prefix)) {
      problems.push({ field, value: key, message: `prefix part ${SUBDOMAIN_MSG}` });
    }
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    problems.push({ field, value: key, message: QUALIFIED_MSG });
  }
  return problems;
}

const SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

/** `generateName` plus five random characters, truncated as the API server does. */
export function generatedName(prefix: string): string {
  let suffix = "";
  for (let i = 0; i < 5; i++) suffix += SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)];
  return prefix.slice(0, 58) + suffix;
}
