// Typed configuration from environment variables, read in one place per app. A schema lists every
// variable with its type, default and description; the same schema drives validation (one line per
// bad variable), the docs check against docs/configuration.md, and the kit's server options.
import { readFile } from "node:fs/promises";
import { loadTokensFile } from "./auth.js";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_SHUTDOWN_GRACE_MS,
  type ServerTlsOptions,
  type StartServerOptions,
} from "./server.js";

interface VarCommon {
  /** The environment variable, e.g. `ODIN_GRPC_PORT`. */
  name: string;
  /** One sentence for docs/configuration.md. */
  description: string;
  /** Never echo the value in errors or logs. */
  secret?: boolean;
  /** Fail when unset (and there is no default). */
  required?: boolean;
}

/** A free-form string (a path, a URL, a name). */
export interface StringVar extends VarCommon {
  type: "string";
  default?: string;
}

/** A decimal integer, optionally bounded. */
export interface IntVar extends VarCommon {
  type: "int";
  default?: number;
  min?: number;
  max?: number;
}

/** true/false (also 1/0, yes/no, on/off). */
export interface BoolVar extends VarCommon {
  type: "boolean";
  default?: boolean;
}

/** One of a fixed set of words. */
export interface EnumVar extends VarCommon {
  type: "enum";
  values: readonly string[];
  default?: string;
}

/** One variable of a schema. */
export type ConfigVar = StringVar | IntVar | BoolVar | EnumVar;

/** Variables by the property name they get in the typed result. */
export type ConfigSchema = Readonly<Record<string, ConfigVar>>;

type ValueOf<V> = V extends { type: "enum"; values: readonly (infer E)[] }
  ? E
  : V extends { type: "int" }
    ? number
    : V extends { type: "boolean" }
      ? boolean
      : string;

/** The typed configuration a schema yields; variables without default or `required` may be undefined. */
export type ConfigOf<S extends ConfigSchema> = {
  readonly [K in keyof S]: S[K] extends { default: unknown } | { required: true }
    ? ValueOf<S[K]>
    : ValueOf<S[K]> | undefined;
};

/** Bad configuration: `problems` has one line per bad variable; the message lists them all. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** One line per bad variable. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.problems = problems;
  }
}

/** The environment, e.g. `process.env` (apps pass it from main.ts; nothing else reads it). */
export type Env = Readonly<Record<string, string | undefined>>;

function parseVar(v: ConfigVar, raw: string): { value: unknown } | { problem: string } {
  const shown = v.secret ? "(value hidden)" : JSON.stringify(raw);
  switch (v.type) {
    case "string":
      return { value: raw };
    case "int": {
      if (!/^[+-]?\d+$/.test(raw.trim())) {
        return { problem: `${v.name}: expected a whole number, got ${shown}` };
      }
      const n = Number(raw.trim());
      if (!Number.isSafeInteger(n)) return { problem: `${v.name}: ${shown} is too large` };
      if ((v.min !== undefined && n < v.min) || (v.max !== undefined && n > v.max)) {
        return { problem: `${v.name}: expected ${rangeText(v)}, got ${shown}` };
      }
      return { value: n };
    }
    case "boolean": {
      const word = raw.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(word)) return { value: true };
      if (["false", "0", "no", "off"].includes(word)) return { value: false };
      return { problem: `${v.name}: expected true or false, got ${shown}` };
    }
    case "enum": {
      const word = raw.trim();
      if (v.values.includes(word)) return { value: word };
      return { problem: `${v.name}: expected one of ${v.values.join(", ")}, got ${shown}` };
    }
  }
}

function rangeText(v: IntVar): string {
  if (v.min !== undefined && v.max !== undefined) return `a whole number from ${v.min} to ${v.max}`;
  if (v.min !== undefined) return `a whole number of at least ${v.min}`;
  return `a whole number of at most ${String(v.max)}`;
}

/**
 * Reads every variable of `schema` from `env` (an empty value counts as unset). Throws a
 * {@link ConfigError} naming each bad or missing variable on its own line.
 */
export function readConfig<S extends ConfigSchema>(env: Env, schema: S): ConfigOf<S> {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(schema)) {
    const raw = env[v.name];
    if (raw === undefined || raw === "") {
      if (v.default !== undefined) out[key] = v.default;
      else if (v.required) problems.push(`${v.name}: required; ${v.description}`);
      continue;
    }
    const result = parseVar(v, raw);
    if ("problem" in result) problems.push(result.problem);
    else out[key] = result.value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as ConfigOf<S>;
}

/** The variables every Odin service reads through the kit. Apps spread it into their own schema. */
export const serviceKitConfigSchema = {
  grpcHost: {
    name: "ODIN_GRPC_HOST",
    type: "string",
    default: "0.0.0.0",
    description: "Address the gRPC server listens on (`127.0.0.1` to accept local callers only).",
  },
  grpcPort: {
    name: "ODIN_GRPC_PORT",
    type: "int",
    min: 0,
    max: 65535,
    default: 50051,
    description: "Port of the gRPC server; 0 picks a free port (logged at startup).",
  },
  metricsHost: {
    name: "ODIN_METRICS_HOST",
    type: "string",
    default: "0.0.0.0",
    description: "Address of the HTTP endpoint serving `/metrics` and `/healthz`.",
  },
  metricsPort: {
    name: "ODIN_METRICS_PORT",
    type: "int",
    min: 0,
    max: 65535,
    default: 9090,
    description:
      "Port of the HTTP endpoint serving `/metrics` (Prometheus) and `/healthz`; 0 disables it.",
  },
  auth: {
    name: "ODIN_AUTH",
    type: "enum",
    values: ["on", "off"],
    default: "on",
    description:
      "`on`: every call needs a bearer token from the tokens file. `off`: every caller is an anonymous admin (local trials only; logged loudly).",
  },
  tokensFile: {
    name: "ODIN_TOKENS_FILE",
    type: "string",
    description:
      "Path of the tokens file (JSON, see below); required when `ODIN_AUTH=on`. Read once at startup.",
  },
  tlsCert: {
    name: "ODIN_TLS_CERT",
    type: "string",
    description: "Path of the server's PEM certificate chain; with `ODIN_TLS_KEY`, serves TLS.",
  },
  tlsKey: {
    name: "ODIN_TLS_KEY",
    type: "string",
    description: "Path of the server's PEM private key; with `ODIN_TLS_CERT`, serves TLS.",
  },
  tlsCa: {
    name: "ODIN_TLS_CA",
    type: "string",
    description:
      "Path of a PEM CA bundle; when set (with cert and key), clients must present a certificate it signed.",
  },
  logLevel: {
    name: "ODIN_LOG_LEVEL",
    type: "enum",
    values: ["debug", "info", "warn", "error"],
    default: "info",
    description:
      "Lowest level of the JSON log lines written to stderr. Every gRPC call is logged once; `debug` adds health checks and the successful calls the services make of each other for every task.",
  },
  maxMessageBytes: {
    name: "ODIN_MAX_MESSAGE_BYTES",
    type: "int",
    min: 1024,
    default: DEFAULT_MAX_MESSAGE_BYTES,
    description: "Largest gRPC message the server accepts or sends, in bytes.",
  },
  shutdownGraceMs: {
    name: "ODIN_SHUTDOWN_GRACE_MS",
    type: "int",
    min: 0,
    default: DEFAULT_SHUTDOWN_GRACE_MS,
    description:
      "On SIGTERM, how long in-flight calls may run before they are cancelled, in milliseconds.",
  },
} as const satisfies ConfigSchema;

/**
 * `ODIN_NATS_REPLICAS`, read by every service that uses NATS JetStream: the copies of every
 * stream and key-value bucket it creates (3 on a 3-node cluster). One definition, so the apps agree.
 */
export const natsReplicasVar = {
  name: "ODIN_NATS_REPLICAS",
  type: "int",
  min: 1,
  max: 5,
  default: 1,
  description:
    "Copies NATS keeps of every stream and key-value bucket Odin creates: 1 for one server, 3 on a 3-node JetStream cluster (survives the loss of one node). A service refuses to start on an existing stream or bucket with fewer copies, and says how to scale it up.",
} as const satisfies IntVar;

/** The kit's part of an app's configuration. */
export type ServiceKitConfig = ConfigOf<typeof serviceKitConfigSchema>;

/**
 * Turns the kit's configuration into {@link startServer} options: reads the tokens file and the
 * TLS files. Throws a {@link ConfigError} for missing or unreadable files and half-set TLS.
 */
export async function serverOptionsFromConfig(
  config: ServiceKitConfig,
): Promise<
  Pick<
    StartServerOptions,
    "host" | "port" | "auth" | "tls" | "metrics" | "maxMessageBytes" | "shutdownGraceMs"
  >
> {
  const problems: string[] = [];
  let auth: StartServerOptions["auth"] = "off";
  if (config.auth === "on") {
    if (config.tokensFile === undefined) {
      problems.push(
        "ODIN_TOKENS_FILE: required while ODIN_AUTH=on (the default); point it at a tokens file, or set ODIN_AUTH=off for a local trial",
      );
    } else {
      try {
        auth = await loadTokensFile(config.tokensFile);
      } catch (err) {
        problems.push(`ODIN_TOKENS_FILE: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  let tls: ServerTlsOptions | undefined;
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    problems.push("ODIN_TLS_CERT, ODIN_TLS_KEY: set both to serve TLS, or neither");
  } else if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    const read = async (name: string, path: string): Promise<Buffer | undefined> => {
      try {
        return await readFile(path);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        problems.push(
          `${name}: cannot read ${path} (${typeof code === "string" ? code : "error"})`,
        );
        return undefined;
      }
    };
    const cert = await read("ODIN_TLS_CERT", config.tlsCert);
    const key = await read("ODIN_TLS_KEY", config.tlsKey);
    const ca = config.tlsCa !== undefined ? await read("ODIN_TLS_CA", config.tlsCa) : undefined;
    if (cert && key) tls = { cert, key, ...(ca ? { ca } : {}) };
  } else if (config.tlsCa !== undefined) {
    problems.push("ODIN_TLS_CA: only used with ODIN_TLS_CERT and ODIN_TLS_KEY; set those too");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    host: config.grpcHost,
    port: config.grpcPort,
    auth,
    ...(tls ? { tls } : {}),
    ...(config.metricsPort !== 0
      ? { metrics: { port: config.metricsPort, host: config.metricsHost } }
      : {}),
    maxMessageBytes: config.maxMessageBytes,
    shutdownGraceMs: config.shutdownGraceMs,
  };
}

/** How a default is written in the docs table: the value in backticks, or `—` for none. */
export function formatDefault(v: ConfigVar): string {
  return v.default === undefined ? "—" : `\`${String(v.default)}\``;
}

function typeText(v: ConfigVar): string {
  switch (v.type) {
    case "enum":
      return v.values.join(" \\| ");
    case "int":
      return "integer";
    default:
      return v.type;
  }
}

/** A markdown table (Variable | Type | Default | Description) of a schema, for docs/configuration.md. */
export function renderConfigTable(schema: ConfigSchema): string {
  const rows = Object.values(schema).map(
    (v) =>
      `| \`${v.name}\` | ${typeText(v)} | ${formatDefault(v)} | ${v.description}${v.secret ? " (secret)" : ""} |`,
  );
  return ["| Variable | Type | Default | Description |", "|---|---|---|---|", ...rows].join("\n");
}

/** Options of {@link checkConfigDocs}. */
export interface CheckConfigDocsOptions {
  /** Accept documented variables no given schema declares (when checking one app's schema alone). */
  allowUndeclared?: boolean;
}

/**
 * Compares docs/configuration.md with the variables the schemas declare. A variable counts as
 * documented by a table row whose first cell is its name in backticks; its Default cell must match
 * the schema's default (`—` for none). Returns one line per mismatch; empty means in step.
 */
export function checkConfigDocs(
  markdown: string,
  schemas: readonly ConfigSchema[],
  options: CheckConfigDocsOptions = {},
): string[] {
  const documented = new Map<string, string>();
  for (const line of markdown.split("\n")) {
    const cells = line.trim().startsWith("|")
      ? line
          .trim()
          .replace(/^\||\|$/g, "")
          .split(/(?<!\\)\|/)
          .map((c) => c.trim())
      : [];
    const name = /^`([A-Z][A-Z0-9_]*)`$/.exec(cells[0] ?? "")?.[1];
    if (name !== undefined) documented.set(name, cells[2] ?? "");
  }
  const problems: string[] = [];
  const declared = new Map<string, ConfigVar>();
  for (const schema of schemas) {
    for (const v of Object.values(schema)) {
      const earlier = declared.get(v.name);
      if (earlier !== undefined && formatDefault(earlier) !== formatDefault(v)) {
        problems.push(
          `${v.name}: declared twice with different defaults (${formatDefault(earlier)} and ${formatDefault(v)})`,
        );
      }
      declared.set(v.name, v);
    }
  }
  for (const [name, v] of declared) {
    const cell = documented.get(name);
    if (cell === undefined) {
      problems.push(`${name}: declared in code but not documented (add a table row for it)`);
    } else if (normalizeDefault(cell) !== normalizeDefault(formatDefault(v))) {
      problems.push(
        `${name}: documented default ${cell || "(empty)"} but the code says ${formatDefault(v)}`,
      );
    }
  }
  if (!options.allowUndeclared) {
    for (const name of documented.keys()) {
      if (!declared.has(name)) {
        problems.push(
          `${name}: documented but no schema declares it (remove the row or declare it)`,
        );
      }
    }
  }
  return problems;
}

function normalizeDefault(cell: string): string {
  const text = cell.replace(/`/g, "").trim();
  return text === "" || text === "-" || text === "—" || text.toLowerCase() === "none" ? "—" : text;
}
