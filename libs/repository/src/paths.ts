import { posix } from "node:path";

/** A path given by a caller that would leave its directory, or is otherwise unusable. */
export class UnsafePathError extends Error {
  override name = "UnsafePathError";
}

const maxPathLength = 1024;

/**
 * Checks a `/`-separated path relative to some directory and returns it normalized. Rejects
 * absolute paths, `..` anywhere, empty segments that normalize away to nothing, NUL and
 * backslashes, `.git` segments, and paths too long for a filesystem.
 */
export function safeRelativePath(path: string, what = "path"): string {
  if (path === "" || path === ".") throw new UnsafePathError(`${what} is empty`);
  if (path.length > maxPathLength)
    throw new UnsafePathError(`${what} is longer than ${maxPathLength} characters`);
  if (path.includes("\0")) throw new UnsafePathError(`${what} contains a NUL character`);
  if (path.includes("\\"))
    throw new UnsafePathError(`${what} "${path}" contains "\\"; use "/" between directories`);
  if (path.startsWith("/"))
    throw new UnsafePathError(`${what} "${path}" is absolute; give it relative to the repository`);
  const segments = path.split("/");
  if (segments.includes(".."))
    throw new UnsafePathError(`${what} "${path}" contains ".."; it may not leave its directory`);
  if (segments.some((s) => s === ".git"))
    throw new UnsafePathError(`${what} "${path}" names a .git directory`);
  const normal = posix.normalize(path).replace(/\/+$/, "");
  if (normal === "." || normal === "") throw new UnsafePathError(`${what} "${path}" names no file`);
  return normal;
}

/** A pipeline directory path: a safe relative path whose segments are sane directory names. */
export function pipelinePath(path: string): string {
  const normal = safeRelativePath(path, "pipeline path");
  for (const segment of normal.split("/")) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(segment)) {
      throw new UnsafePathError(
        `pipeline path "${path}": "${segment}" must be letters, digits, ".", "_" and "-", starting with a letter or digit`,
      );
    }
  }
  return normal;
}

/** A 40- or 64-hex-digit commit id (full ids only: abbreviations could be ambiguous). */
export function isCommitId(s: string): boolean {
  return /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(s);
}
