// Kubernetes `Status` bodies for every error kube-sim returns, shaped like the API server's.
import { type FieldProblem, describeProblem } from "./names.js";
import { type ResourceDef, qualifiedResource } from "./resources.js";
import type { StatusJson } from "./types.js";

/** An error that becomes an HTTP response carrying a Kubernetes `Status`. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: StatusJson;
  readonly headers: Record<string, string>;

  constructor(status: StatusJson, headers: Record<string, string> = {}) {
    super(status.message);
    this.status = status;
    this.headers = headers;
  }
}

/** A failure `Status` with the given code, reason and message. */
export function failure(
  code: number,
  reason: string,
  message: string,
  details?: StatusJson["details"],
): StatusJson {
  const status: StatusJson = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
  if (details !== undefined) status.details = details;
  return status;
}

function detailsFor(def: ResourceDef, name: string): NonNullable<StatusJson["details"]> {
  const details: NonNullable<StatusJson["details"]> = { name, kind: def.resource };
  if (def.group !== "") details.group = def.group;
  return details;
}

/** 404: `pods "x" not found`. */
export function notFound(def: ResourceDef, name: string): ApiError {
  return new ApiError(
    failure(
      404,
      "NotFound",
      `${qualifiedResource(def)} "${name}" not found`,
      detailsFor(def, name),
    ),
  );
}

/** 409: `pods "x" already exists`. */
export function alreadyExists(def: ResourceDef, name: string): ApiError {
  return new ApiError(
    failure(
      409,
      "AlreadyExists",
      `${qualifiedResource(def)} "${name}" already exists`,
      detailsFor(def, name),
    ),
  );
}

/** 409: optimistic concurrency conflict on update. */
export function conflict(def: ResourceDef, name: string): ApiError {
  return new ApiError(
    failure(
      409,
      "Conflict",
      `Operation cannot be fulfilled on ${qualifiedResource(def)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      detailsFor(def, name),
    ),
  );
}

/** 422: the object is invalid, with one cause per problem. */
export function invalid(def: ResourceDef, name: string, problems: FieldProblem[]): ApiError {
  const parts = problems.map(describeProblem);
  const summary = parts.length === 1 ? (parts[0] ?? "") : `[${parts.join(", ")}]`;
  const kind = def.kind;
  return new ApiError(
    failure(422, "Invalid", `${kind} "${name}" is invalid: ${summary}`, {
      ...detailsFor(def, name),
      kind,
      causes: problems.map((p) => ({
        reason: p.type ?? "FieldValueInvalid",
        message: describeProblem(p).slice(p.field.length + 2),
        field: p.field,
      })),
    }),
  );
}

/** 400 with a message. */
export function badRequest(message: string): ApiError {
  return new ApiError(failure(400, "BadRequest", message));
}

/** 404 for a path kube-sim does not serve. */
export function noSuchPath(): ApiError {
  return new ApiError(failure(404, "NotFound", "the server could not find the requested resource"));
}

/** 405 for a verb a path does not support. */
export function methodNotAllowed(method: string): ApiError {
  return new ApiError(
    failure(
      405,
      "MethodNotAllowed",
      `the server does not allow this method on the requested resource (${method})`,
    ),
  );
}
