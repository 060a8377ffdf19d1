// Schema validation as a real API server does it on create: Pods and Jobs against the Kubernetes
// OpenAPI schema (types, required fields and enums through `kubernetes-models`' validators; unknown
// fields through the field lists of the Kubernetes client's own models, as strict field validation
// does), training jobs against the operators' published CRDs in `crds/` (structural schema).
import { readFileSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";
import jsyaml from "js-yaml";
import { Job } from "kubernetes-models/batch/v1/Job";
import { Pod } from "kubernetes-models/v1/Pod";
import { PodTemplateSpec } from "kubernetes-models/v1/PodTemplateSpec";
import { describeProblem, type FieldProblem } from "./names.js";
import { apiVersionOf, findResource, type ResourceDef } from "./resources.js";
import { isRecord, show } from "./types.js";

/** The CRD file of each training job type (copied verbatim from the operators' projects). */
const crdFiles: Record<string, string> = {
  tfjobs: "kubeflow.org_tfjobs.yaml",
  pytorchjobs: "kubeflow.org_pytorchjobs.yaml",
  mpijobs: "kubeflow.org_mpijobs.yaml",
  elasticjobs: "elastic.pytorch.org_elasticjobs.yaml",
};

const crdDir = new URL("../crds/", import.meta.url);

/** The subset of a CRD's structural schema that validation reads. */
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  nullable?: boolean;
  "x-kubernetes-int-or-string"?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
}

interface CrdSchema {
  schema: Schema;
  /** v1beta1 CRDs without `preserveUnknownFields: false` keep unknown fields (no pruning). */
  keepsUnknown: boolean;
}

const crdCache = new Map<string, CrdSchema>();

/** The `openAPIV3Schema` a CRD declares for one version (parsed once, on first use). */
function crdSchema(def: ResourceDef): CrdSchema | undefined {
  const file = crdFiles[def.resource];
  if (file === undefined) return undefined;
  const cached = crdCache.get(def.resource);
  if (cached !== undefined) return cached;
  const docs = jsyaml.loadAll(readFileSync(new URL(file, crdDir), "utf8"));
  const crd = docs.find(
    (d): d is Record<string, unknown> => isRecord(d) && d["kind"] === "CustomResourceDefinition",
  );
  const spec = isRecord(crd?.["spec"]) ? crd["spec"] : {};
  const versions = Array.isArray(spec["versions"]) ? (spec["versions"] as unknown[]) : [];
  const version = versions.find((v) => isRecord(v) && v["name"] === def.version);
  const fromVersion =
    isRecord(version) && isRecord(version["schema"]) ? version["schema"] : undefined;
  const fromSpec = isRecord(spec["validation"]) ? spec["validation"] : undefined;
  const schema = (fromVersion ?? fromSpec)?.["openAPIV3Schema"];
  if (!isRecord(schema)) throw new Error(`${file} declares no schema for ${def.version}`);
  const v1beta1 = crd?.["apiVersion"] === "apiextensions.k8s.io/v1beta1";
  const result = {
    schema: schema as Schema,
    keepsUnknown: v1beta1 && spec["preserveUnknownFields"] !== false,
  };
  crdCache.set(def.resource, result);
  return result;
}

/** Problems the API server's schema validation finds in an object about to be created. */
export function schemaProblems(def: ResourceDef, object: Record<string, unknown>): FieldProblem[] {
  switch (def.resource) {
    case "pods":
      return [
        ...modelProblems(() => new Pod(object).validate(), object, ""),
        ...unknownFields(object, "V1Pod", ""),
      ];
    case "jobs":
      return [
        ...modelProblems(() => new Job(object).validate(), object, ""),
        ...unknownFields(object, "V1Job", ""),
      ];
    case "tfjobs":
    case "pytorchjobs":
    case "mpijobs":
    case "elasticjobs": {
      const crd = crdSchema(def)!;
      const problems: FieldProblem[] = [];
      const { metadata, ...rest } = object;
      structural(rest, crd.schema, "", problems, crd.keepsUnknown);
      if (metadata !== undefined)
        problems.push(...unknownFields(metadata, "V1ObjectMeta", "metadata"));
      if (crd.keepsUnknown) problems.push(...replicaTemplates(def, object));
      return problems;
    }
    case "namespaces":
    case "nodes":
    case "events":
      return [];
  }
}

/**
 * The pod templates of a training job whose CRD leaves them unchecked (ElasticJob's v1beta1
 * `replicaSpecs: {}`): the operator builds pods from them, so they must be valid pod templates.
 */
function replicaTemplates(def: ResourceDef, object: Record<string, unknown>): FieldProblem[] {
  const spec = object["spec"];
  const key = def.replicaSpecsKey ?? "";
  const specs = isRecord(spec) ? spec[key] : undefined;
  if (!isRecord(specs)) return [];
  const problems: FieldProblem[] = [];
  for (const [type, replica] of Object.entries(specs)) {
    if (!isRecord(replica) || !isRecord(replica["template"])) continue;
    const at = `spec.${key}.${type}.template`;
    const template = replica["template"];
    problems.push(
      ...modelProblems(() => new PodTemplateSpec(template).validate(), template, at),
      ...unknownFields(template, "V1PodTemplateSpec", at),
    );
  }
  return problems;
}

/** JSON path (`spec.containers[0].image`) of a JSON pointer into `root`, as the API server writes it. */
function fieldPath(root: unknown, pointer: string, prefix: string): string {
  let path = prefix;
  let at: unknown = root;
  for (const raw of pointer.split("/").slice(1)) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(at)) {
      path += `[${segment}]`;
      at = at[Number(segment)];
    } else {
      path += path === "" ? segment : `.${segment}`;
      at = isRecord(at) ? at[segment] : undefined;
    }
  }
  return path;
}

function valueAt(root: unknown, pointer: string): unknown {
  let at: unknown = root;
  for (const raw of pointer.split("/").slice(1)) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    at = Array.isArray(at) ? at[Number(segment)] : isRecord(at) ? at[segment] : undefined;
  }
  return at;
}

interface ModelError {
  instancePath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
}

/** Runs a `kubernetes-models` validation and turns its errors into API-server-style problems. */
function modelProblems(run: () => void, root: unknown, prefix: string): FieldProblem[] {
  let errors: ModelError[];
  try {
    run();
    return [];
  } catch (error) {
    const list = (error as { errors?: ModelError[] }).errors;
    if (!Array.isArray(list)) throw error;
    errors = list;
  }
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  // An int-or-string or nullable field reports one error per alternative and one for the oneOf:
  // keep a single "type" problem per path.
  const typeAlternatives = new Map<string, string[]>();
  for (const e of errors) {
    const pointer = e.instancePath ?? "";
    if (e.keyword === "type") {
      const list = typeAlternatives.get(pointer) ?? [];
      list.push(String(e.params?.["type"]));
      typeAlternatives.set(pointer, list);
    }
  }
  for (const e of errors) {
    const pointer = e.instancePath ?? "";
    const field = fieldPath(root, pointer, prefix);
    let problem: FieldProblem;
    if (e.keyword === "required") {
      const missing = String(e.params?.["missingProperty"]);
      problem = {
        field: field ? `${field}.${missing}` : missing,
        value: "",
        message: "",
        type: "FieldValueRequired",
      };
    } else if (e.keyword === "enum") {
      const allowed = (e.params?.["allowedValues"] as unknown[] | undefined) ?? [];
      problem = {
        field,
        value: show(valueAt(root, pointer)),
        message: allowed.map((v) => `"${String(v)}"`).join(", "),
        type: "FieldValueNotSupported",
      };
    } else if (e.keyword === "type" || e.keyword === "oneOf" || e.keyword === "anyOf") {
      const types = typeAlternatives.get(pointer) ?? [];
      problem = {
        field,
        value: show(valueAt(root, pointer)),
        message: `must be of type ${types.join(" or ") || "matching the schema"}`,
        type: "FieldValueTypeInvalid",
      };
    } else {
      problem = {
        field,
        value: show(valueAt(root, pointer)),
        message: e.message ?? `fails the schema's ${e.keyword ?? "check"}`,
      };
    }
    const key = `${problem.field}\u0000${problem.type ?? ""}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

interface Attribute {
  baseName: string;
  type: string;
}

type ModelClass = { getAttributeTypeMap(): Attribute[] };

/** The client library's model class for a type name such as `V1PodSpec`, if it has one. */
function modelClass(type: string): ModelClass | undefined {
  const candidate = (k8s as unknown as Record<string, unknown>)[type];
  return typeof candidate === "function" &&
    typeof (candidate as Partial<ModelClass>).getAttributeTypeMap === "function"
    ? (candidate as unknown as ModelClass)
    : undefined;
}

const arrayType = /^Array<(.+)>$/;
const mapType = /^\{ \[key: string\]: (.+); \}$/;

/**
 * Fields of `value` that the Kubernetes type `type` does not declare (strict field validation),
 * walking nested objects, lists and maps by the client library's model field lists.
 */
function unknownFields(value: unknown, type: string, path: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const walk = (v: unknown, t: string, at: string): void => {
    if (v === null || v === undefined) return;
    const list = arrayType.exec(t);
    if (list) {
      if (Array.isArray(v)) v.forEach((item, i) => walk(item, list[1]!, `${at}[${i}]`));
      return;
    }
    const map = mapType.exec(t);
    if (map) {
      if (isRecord(v))
        for (const [k, item] of Object.entries(v)) walk(item, map[1]!, `${at}[${k}]`);
      return;
    }
    const model = modelClass(t);
    if (model === undefined || !isRecord(v)) return;
    const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
    for (const [k, item] of Object.entries(v)) {
      const field = at === "" ? k : `${at}.${k}`;
      const itemType = attributes.get(k);
      if (itemType === undefined) {
        problems.push({ field, value: "", message: "", type: "FieldValueUnknown" });
      } else {
        walk(item, itemType, field);
      }
    }
  };
  walk(value, type, path);
  return problems;
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** Validates `value` against a CRD's structural schema, as the API server does on create. */
function structural(
  value: unknown,
  schema: Schema,
  path: string,
  problems: FieldProblem[],
  keepUnknown: boolean,
): void {
  const at = path === "" ? "<root>" : path;
  if (value === null) {
    if (!schema.nullable && schema.type !== undefined) {
      problems.push({
        field: at,
        value: "null",
        message: `must be of type ${schema.type}`,
        type: "FieldValueTypeInvalid",
      });
    }
    return;
  }
  const actual = typeOf(value);
  if (schema["x-kubernetes-int-or-string"]) {
    if (actual !== "integer" && actual !== "string") {
      problems.push({
        field: at,
        value: show(value),
        message: "must be of type integer or string",
        type: "FieldValueTypeInvalid",
      });
    }
    return;
  }
  if (schema.type !== undefined) {
    const ok =
      schema.type === actual ||
      (schema.type === "number" && actual === "integer") ||
      (schema.type === "object" && actual === "object");
    if (!ok) {
      problems.push({
        field: at,
        value: show(value),
        message: `must be of type ${schema.type}`,
        type: "FieldValueTypeInvalid",
      });
      return;
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((e) => e === value)) {
    problems.push({
      field: at,
      value: show(value),
      message: schema.enum.map((e) => `"${String(e)}"`).join(", "),
      type: "FieldValueNotSupported",
    });
  }
  if (Array.isArray(value)) {
    if (schema.items !== undefined) {
      value.forEach((item, i) =>
        structural(item, schema.items!, `${path}[${i}]`, problems, keepUnknown),
      );
    }
    return;
  }
  if (!isRecord(value)) return;
  for (const name of schema.required ?? []) {
    if (value[name] === undefined) {
      problems.push({
        field: path === "" ? name : `${path}.${name}`,
        value: "",
        message: "",
        type: "FieldValueRequired",
      });
    }
  }
  const keep = keepUnknown || schema["x-kubernetes-preserve-unknown-fields"] === true;
  const declared = schema.properties;
  const extra = schema.additionalProperties;
  for (const [k, item] of Object.entries(value)) {
    const field = path === "" ? k : `${path}.${k}`;
    const property = declared?.[k];
    if (property !== undefined) structural(item, property, field, problems, keepUnknown);
    // Map entries are written `spec.tfReplicaSpecs[Worker]`, as the API server does.
    else if (isRecord(extra)) structural(item, extra, `${path}[${k}]`, problems, keepUnknown);
    else if (extra === true || keep || (declared === undefined && schema.type === undefined))
      continue;
    else problems.push({ field, value: "", message: "", type: "FieldValueUnknown" });
  }
}

/**
 * What a real API server's schema validation says about an object of a type kube-sim serves
 * (found by `kind` and `apiVersion`), as `field: problem` lines; empty when it would be accepted.
 */
export function apiServerSchemaProblems(object: Record<string, unknown>): string[] {
  const kind = typeof object["kind"] === "string" ? object["kind"] : "";
  const def = findResource(kind);
  if (def === undefined) return [`kind: kube-sim does not serve kind "${kind}"`];
  if (object["apiVersion"] !== apiVersionOf(def)) {
    return [
      `apiVersion: ${kind} is served as ${apiVersionOf(def)}, not ${show(object["apiVersion"])}`,
    ];
  }
  return schemaProblems(def, object).map(describeProblem);
}
