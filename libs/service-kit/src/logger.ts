// Structured logs: one JSON object per line on stderr, no dependency. Secrets are redacted here, in
// the one place every log line passes through, so a careless field or message cannot leak a token.

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** The levels in order; a logger writes a line when its level is at or below the line's. */
export const logLevels: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Extra key/values of a log line (errors are serialized with name, message, stack and cause). */
export type LogFields = Record<string, unknown>;

/** A structured logger; `child` returns one that adds `fields` to every line. */
export interface Logger {
  /** Logs at debug level. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs at info level. */
  info(msg: string, fields?: LogFields): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs at error level. */
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line it writes. */
  child(fields: LogFields): Logger;
  /** Whether a line at `level` would be written. */
  enabled(level: LogLevel): boolean;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The service name written on every line (e.g. `repo-sync`). */
  service: string;
  /** Lowest level written; default `info`. */
  level?: LogLevel;
  /** Where a finished line (without newline) goes; default: stderr. Tests capture lines here. */
  write?: (line: string) => void;
  /** Fields added to every line. */
  fields?: LogFields;
  /** Clock, for tests; default `() => new Date()`. */
  now?: () => Date;
}

const REDACTED = "[redacted]";
// Field names that hold credentials, matched anywhere in the key (`odinToken`, `x-api-key` …).
const SECRET_KEY =
  /token|authorization|password|passwd|secret|credential|cookie|api[-_]?key|private[-_]?key/i;
// `Bearer <anything>` inside free text; the scheme is case-insensitive in HTTP.
const BEARER = /\b(bearer)\s+[^\s"',;]+/gi;
// Keys every line has; a field with the same name is written with a trailing `_`.
const RESERVED = new Set(["time", "level", "service", "msg"]);

/** Replaces bearer credentials inside free text with `[redacted]`. */
export function redactText(text: string): string {
  return text.replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTED}`);
}

/** Whether a field of this name is redacted in logs. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A JSON-safe, redacted copy of a field value (depth-limited, cycles cut, errors expanded). */
export function redactValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string") return redactText(value);
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") {
    return typeof value === "function" || typeof value === "symbol" ? String(value) : value;
  }
  if (seen.has(value)) return "[circular]";
  if (depth >= 6) return "[too deep]";
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = {
      name: value.name,
      message: redactText(value.message),
    };
    if (value.stack !== undefined) out["stack"] = redactText(value.stack);
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out["code"] = redactValue(code, depth + 1, seen);
    if (value.cause !== undefined) out["cause"] = redactValue(value.cause, depth + 1, seen);
    return out;
  }
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1, seen));
  if (value instanceof Map) return redactValue(Object.fromEntries(value), depth, seen);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretKey(k) ? REDACTED : redactValue(v, depth + 1, seen);
  }
  return out;
}

/** Creates a logger writing one JSON object per line: time, level, service, msg, then fields. */
export function createLogger(options: LoggerOptions): Logger {
  const threshold = logLevels.indexOf(options.level ?? "info");
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const now = options.now ?? (() => new Date());

  const make = (base: LogFields): Logger => {
    const log = (level: LogLevel, msg: string, fields?: LogFields): void => {
      if (logLevels.indexOf(level) < threshold) return;
      const line: Record<string, unknown> = {
        time: now().toISOString(),
        level,
        service: options.service,
        msg: redactText(msg),
      };
      for (const [k, v] of Object.entries({ ...base, ...fields })) {
        if (v === undefined) continue;
        const key = RESERVED.has(k) ? `${k}_` : k;
        line[key] = isSecretKey(k) ? REDACTED : redactValue(v);
      }
      let text: string;
      try {
        text = JSON.stringify(line);
      } catch {
        const { time, service } = line;
        text = JSON.stringify({
          time,
          level,
          service,
          msg: line["msg"],
          fields: "[unserializable]",
        });
      }
      write(text);
    };
    return {
      debug: (msg, fields) => log("debug", msg, fields),
      info: (msg, fields) => log("info", msg, fields),
      warn: (msg, fields) => log("warn", msg, fields),
      error: (msg, fields) => log("error", msg, fields),
      child: (fields) => make({ ...base, ...fields }),
      enabled: (level) => logLevels.indexOf(level) >= threshold,
    };
  };
  return make(options.fields ?? {});
}

/** A logger that writes nothing (for library code and tests that do not care). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
  enabled: () => false,
};
