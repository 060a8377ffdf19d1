// The odin command's exit codes: scripts tell success, a failed or cancelled run, a missing
// thing, a usage mistake and an unreachable server apart without reading the text.

/** Exit codes of every odin command (documented in the README). */
export const ExitCode = {
  /** Done; a followed run succeeded. */
  ok: 0,
  /** A followed run (or task) failed; a pipeline is invalid; any other error. */
  failed: 1,
  /** Bad arguments: unknown command or option, missing or malformed value. */
  usage: 2,
  /** A followed run was cancelled. */
  cancelled: 3,
  /** The run, task, pipeline or commit named does not exist. */
  notFound: 4,
  /** The server could not be reached (refused, unknown host, no answer in time). */
  unreachable: 5,
  /** The server refused the caller's token or role. */
  denied: 6,
} as const;

// gRPC status codes (numbers fixed by the gRPC spec).
const NOT_FOUND = 5;
const DEADLINE_EXCEEDED = 4;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;
const PERMISSION_DENIED = 7;
const INVALID_ARGUMENT = 3;

/** A command's failure that carries its exit code (its message is printed as is). */
export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failed,
  ) {
    super(message);
  }
}

/** The exit code of an error thrown by a command. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommandError) return err.exitCode;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "number") return ExitCode.failed;
  switch (code) {
    case NOT_FOUND:
      return ExitCode.notFound;
    case UNAVAILABLE:
    case DEADLINE_EXCEEDED:
      return ExitCode.unreachable;
    case UNAUTHENTICATED:
    case PERMISSION_DENIED:
      return ExitCode.denied;
    case INVALID_ARGUMENT:
      return ExitCode.failed;
    default:
      return ExitCode.failed;
  }
}
