// Create-time validation: the subset of the API server's (and the Kubeflow webhooks') checks that
// catches real manifest mistakes — bad names and labels, missing containers or images, restart
// policies a Job refuses, unknown replica types — plus kube-sim's own script annotation.
import { type FieldProblem, validateLabels, validateName, validateQualifiedName } from "./names.js";
import type { ResourceDef } from "./resources.js";
import { SCRIPT_ANNOTATION, parseScriptAnnotation } from "./scripts.js";
import { isRecord, show } from "./types.js";

const REPLICA_TYPES: Record<string, readonly string[]> = {
  tfjobs: ["Chief", "PS", "Worker", "Evaluator", "Master"],
  pytorchjobs: ["Master", "Worker"],
  mpijobs: ["Launcher", "Worker"],
  elasticjobs: ["Worker"],
};

/** Problems with `metadata.labels` and `metadata.annotations` of an object or template. */
export function validateMeta(meta: unknown, field: string): FieldProblem[] {
  if (meta === undefined) return [];
  if (!isRecord(meta)) return [{ field, value: "", message: "must be an object" }];
  const problems: FieldProblem[] = [];
  const labels = meta["labels"];
  if (labels !== undefined && labels !== null) {
    if (!isRecord(labels))
      problems.push({ field: `${field}.labels`, value: "", message: "must be a map" });
    else problems.push(...validateLabels(labels, `${field}.labels`));
  }
  const annotations = meta["annotations"];
  if (annotations !== undefined && annotations !== null) {
    if (!isRecord(annotations)) {
      problems.push({ field: `${field}.annotations`, value: "", message: "must be a map" });
    } else {
      for (const [key, value] of Object.entries(annotations)) {
        problems.push(...validateQualifiedName(key, `${field}.annotations`));
        if (typeof value !== "string") {
          problems.push({
            field: `${field}.annotations.${key}`,
            value: String(value),
            message: "must be a string",
          });
        } else if (key === SCRIPT_ANNOTATION) {
          try {
            parseScriptAnnotation(value);
          } catch (error) {
            problems.push({
              field: `${field}.annotations[${SCRIPT_ANNOTATION}]`,
              value,
              message: `kube-sim script ${(error as Error).message}`,
            });
          }
        }
      }
    }
  }
  return problems;
}

function validateContainers(list: unknown, field: string, required: boolean): FieldProblem[] {
  if (list === undefined || list === null) {
    return required ? [{ field, value: "", message: "", type: "FieldValueRequired" }] : [];
  }
  if (!Array.isArray(list)) return [{ field, value: "", message: "must be a list" }];
  if (required && list.length === 0)
    return [{ field, value: "", message: "", type: "FieldValueRequired" }];
  const problems: FieldProblem[] = [];
  const names = new Set<string>();
  list.forEach((c: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!isRecord(c)) {
      problems.push({ field: at, value: "", message: "must be an object" });
      return;
    }
    const name = c["name"];
    if (typeof name !== "string" || name === "") {
      problems.push({ field: `${at}.name`, value: "", message: "", type: "FieldValueRequired" });
    } else {
      problems.push(...validateName(name, "dns1123-label", `${at}.name`));
      if (names.has(name))
        problems.push({
          field: `${at}.name`,
          value: name,
          message: "",
          type: "FieldValueDuplicate",
        });
      names.add(name);
    }
    const image = c["image"];
    if (typeof image !== "string" || image.trim() === "") {
      problems.push({ field: `${at}.image`, value: "", message: "", type: "FieldValueRequired" });
    }
  });
  return problems;
}

/** Problems with a pod spec at `field` (`spec`, `spec.template.spec`, …). */
export function validatePodSpec(
  spec: unknown,
  field: string,
  restartPolicies: readonly string[],
): FieldProblem[] {
  if (!isRecord(spec)) return [{ field, value: "", message: "", type: "FieldValueRequired" }];
  const problems = [
    ...validateContainers(spec["containers"], `${field}.containers`, true),
    ...validateContainers(spec["initContainers"], `${field}.initContainers`, false),
  ];
  const deadline = spec["activeDeadlineSeconds"];
  if (
    deadline !== undefined &&
    (typeof deadline !== "number" || !Number.isInteger(deadline) || deadline < 1)
  ) {
    problems.push({
      field: `${field}.activeDeadlineSeconds`,
      value: show(deadline),
      message: "must be between 1 and 2147483647, inclusive",
    });
  }
  const policy = spec["restartPolicy"];
  if (policy !== undefined && (typeof policy !== "string" || !restartPolicies.includes(policy))) {
    problems.push({
      field: `${field}.restartPolicy`,
      value: show(policy),
      message: restartPolicies.map((p) => `"${p}"`).join(", "),
      type: "FieldValueNotSupported",
    });
  }
  return problems;
}

function validateTemplate(
  template: unknown,
  field: string,
  restartPolicies: readonly string[],
): FieldProblem[] {
  if (!isRecord(template)) return [{ field, value: "", message: "", type: "FieldValueRequired" }];
  return [
    ...validateMeta(template["metadata"], `${field}.metadata`),
    ...validatePodSpec(template["spec"], `${field}.spec`, restartPolicies),
  ];
}

/** Problems with the type-specific part (`spec`) of an object about to be created. */
export function validateSpec(def: ResourceDef, object: Record<string, unknown>): FieldProblem[] {
  const spec = object["spec"];
  switch (def.resource) {
    case "pods":
      return validatePodSpec(spec, "spec", ["Always", "OnFailure", "Never"]);
    case "jobs": {
      if (!isRecord(spec))
        return [{ field: "spec", value: "", message: "", type: "FieldValueRequired" }];
      const problems = validateTemplate(spec["template"], "spec.template", ["OnFailure", "Never"]);
      const template = spec["template"];
      if (
        isRecord(template) &&
        isRecord(template["spec"]) &&
        template["spec"]["restartPolicy"] === undefined
      ) {
        problems.push({
          field: "spec.template.spec.restartPolicy",
          value: "Always",
          message: '"OnFailure", "Never"',
          type: "FieldValueNotSupported",
        });
      }
      const deadline = spec["activeDeadlineSeconds"];
      if (
        deadline !== undefined &&
        (typeof deadline !== "number" || !Number.isInteger(deadline) || deadline < 1)
      ) {
        problems.push({
          field: "spec.activeDeadlineSeconds",
          value: show(deadline),
          message: "must be greater than or equal to 1",
        });
      }
      const backoff = spec["backoffLimit"];
      if (
        backoff !== undefined &&
        (typeof backoff !== "number" || !Number.isInteger(backoff) || backoff < 0)
      ) {
        problems.push({
          field: "spec.backoffLimit",
          value: show(backoff),
          message: "must be greater than or equal to 0",
        });
      }
      return problems;
    }
    case "tfjobs":
    case "pytorchjobs":
    case "mpijobs":
    case "elasticjobs": {
      const key = def.replicaSpecsKey ?? "";
      const field = `spec.${key}`;
      const specs = isRecord(spec) ? spec[key] : undefined;
      if (!isRecord(specs) || Object.keys(specs).length === 0) {
        return [{ field, value: "", message: "", type: "FieldValueRequired" }];
      }
      const allowed = REPLICA_TYPES[def.resource] ?? [];
      const problems: FieldProblem[] = [];
      for (const [type, replica] of Object.entries(specs)) {
        const at = `${field}[${type}]`;
        if (!allowed.includes(type)) {
          problems.push({
            field,
            value: type,
            message: allowed.map((t) => `"${t}"`).join(", "),
            type: "FieldValueNotSupported",
          });
          continue;
        }
        if (!isRecord(replica)) {
          problems.push({ field: at, value: "", message: "must be an object" });
          continue;
        }
        const replicas = replica["replicas"];
        if (
          replicas !== undefined &&
          (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0)
        ) {
          problems.push({
            field: `${at}.replicas`,
            value: show(replicas),
            message: "must be a non-negative integer",
          });
        }
        if (
          (type === "Master" || type === "Launcher") &&
          replicas !== undefined &&
          replicas !== 1
        ) {
          problems.push({
            field: `${at}.replicas`,
            value: show(replicas),
            message: `${type} replicas must be 1`,
          });
        }
        problems.push(
          ...validateTemplate(replica["template"], `${at}.template`, [
            "Always",
            "OnFailure",
            "Never",
          ]),
        );
      }
      return problems;
    }
    case "namespaces":
    case "nodes":
    case "events":
      return [];
  }
}
