// JSON merge patch (RFC 7386; also used for strategic merge patches, whose list merging kube-sim
// does not model) and JSON patch (RFC 6902: add, remove, replace, test, copy, move).
import { ApiError, badRequest, failure } from "./status.js";
import { isRecord } from "./types.js";

/** Applies a JSON merge patch to `target` (not mutated) and returns the result. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isRecord(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function decodePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw badRequest(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split("/")
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(
  doc: unknown,
  path: string[],
  pointer: string,
): [Record<string, unknown> | unknown[], string] {
  let current: unknown = doc;
  for (const part of path.slice(0, -1)) {
    if (Array.isArray(current)) current = current[Number(part)];
    else if (isRecord(current)) current = current[part];
    else current = undefined;
    if (current === undefined) throw badRequest(`JSON patch path "${pointer}" does not exist`);
  }
  const last = path[path.length - 1];
  if (last === undefined || !(Array.isArray(current) || isRecord(current))) {
    throw badRequest(`JSON patch path "${pointer}" does not exist`);
  }
  return [current, last];
}

function getAt(doc: unknown, pointer: string): unknown {
  let current = doc;
  for (const part of decodePointer(pointer)) {
    if (Array.isArray(current)) current = current[Number(part)];
    else if (isRecord(current)) current = current[part];
    else return undefined;
  }
  return current;
}

function removeAt(doc: unknown, pointer: string): unknown {
  const [parent, key] = parentOf(doc, decodePointer(pointer), pointer);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!(i >= 0 && i < parent.length))
      throw badRequest(`JSON patch path "${pointer}" does not exist`);
    return parent.splice(i, 1)[0];
  }
  if (!(key in parent)) throw badRequest(`JSON patch path "${pointer}" does not exist`);
  const value = parent[key];
  delete parent[key];
  return value;
}

function addAt(doc: unknown, pointer: string, value: unknown, replace: boolean): unknown {
  const path = decodePointer(pointer);
  if (path.length === 0) return value;
  const [parent, key] = parentOf(doc, path, pointer);
  if (Array.isArray(parent)) {
    const i = key === "-" ? parent.length : Number(key);
    if (!(i >= 0 && i <= parent.length))
      throw badRequest(`JSON patch path "${pointer}" is out of range`);
    if (replace) parent.splice(i, 1, value);
    else parent.splice(i, 0, value);
  } else {
    if (replace && !(key in parent))
      throw badRequest(`JSON patch path "${pointer}" does not exist`);
    parent[key] = value;
  }
  return doc;
}

/** Applies an RFC 6902 JSON patch to a copy of `target` and returns it. Throws a 400. */
export function jsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw badRequest("a JSON patch must be a list of operations");
  let doc = structuredClone(target);
  for (const op of operations as unknown[]) {
    if (!isRecord(op) || typeof op["op"] !== "string" || typeof op["path"] !== "string") {
      throw badRequest("each JSON patch operation needs string fields op and path");
    }
    const path = op["path"];
    const from = typeof op["from"] === "string" ? op["from"] : "";
    switch (op["op"]) {
      case "add":
        doc = addAt(doc, path, structuredClone(op["value"]), false);
        break;
      case "replace":
        doc = addAt(doc, path, structuredClone(op["value"]), true);
        break;
      case "remove":
        removeAt(doc, path);
        break;
      case "test":
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op["value"])) {
          throw new ApiError(
            failure(422, "Invalid", `JSON patch test operation failed at "${path}"`),
          );
        }
        break;
      case "copy":
        doc = addAt(doc, path, structuredClone(getAt(doc, from)), false);
        break;
      case "move":
        doc = addAt(doc, path, removeAt(doc, from), false);
        break;
      default:
        throw badRequest(`unknown JSON patch operation "${op["op"]}"`);
    }
  }
  return doc;
}
