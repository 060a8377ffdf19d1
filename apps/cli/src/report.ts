// How a failed command is reported: one line saying what happened and what to do, then the
// positioned problems (e.g. of an invalid pipeline) the server sent in the status's trailers.
import { describeGrpcError, problemsOf } from "@odin/service-kit";

/** Writes a failed command's error to `err`. */
export function reportError(error: unknown, err: NodeJS.WritableStream): void {
  err.write(`odin: ${describeGrpcError(error)}\n`);
  for (const p of problemsOf(error)) {
    const where = p.line ? `${p.file}:${p.line}:${p.column ?? 0}` : (p.file ?? "");
    err.write(`${where}: ${p.task ? `${p.task}: ` : ""}${p.message}\n`);
  }
}
