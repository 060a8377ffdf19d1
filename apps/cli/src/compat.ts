// The original Odin's command names (odin-run, odin-status, odin-logs, odin-events, odin-cleanup,
// odin-push, odin-data, odin-gpus) with the original's arguments, translated into odin's. An argument that means
// nothing here (a websocket scheme, a Kubernetes namespace the server owns, a password) is
// accepted with a one-line note, never refused, so the scripts people already have keep working.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";

/** How one original option is handled: its value count and what it becomes. */
interface OptionRule {
  /** How many values follow the option (`"+"`: every value up to the next option). */
  values: 0 | 1 | "+";
  /** The odin arguments it becomes, or a note saying why it is ignored. */
  apply(values: string[], out: Translation): void;
}

interface Translation {
  args: string[];
  server: { host?: string; port?: string };
  notes: string[];
}

interface CompatCommand {
  /** The original's usage line, for `odin-X --help`. */
  usage: string;
  /** The odin command it becomes. */
  odin: string;
  /** Positional arguments, in the original's order. */
  positionals: string[];
  options: Record<string, OptionRule>;
  /** Builds odin's argument list from the positionals. */
  build(positionals: string[], out: Translation): void;
}

const ignore = (why: string, values: 0 | 1 | "+" = 1): OptionRule => ({
  values,
  apply: (v, out) => out.notes.push(why.replace("%s", v.join(" "))),
});

const pass = (flag: string, values: 0 | 1 = 1): OptionRule => ({
  values,
  apply: (v, out) => out.args.push(flag, ...v),
});

// Options every original command took, and odin's own global options with a value.
const common: Record<string, OptionRule> = {
  "--server": pass("--server"),
  "-s": pass("--server"),
  "--output": pass("--output"),
  "-o": pass("--output"),
  "--host": {
    values: 1,
    apply: ([v], out) => (out.server.host = (v ?? "").replace(/^[a-z]+:\/\//i, "")),
  },
  "--port": { values: 1, apply: ([v], out) => (out.server.port = v) },
  "--scheme": ignore(
    "--scheme %s ignored: odin speaks gRPC over --host/--port (or --server), not websockets or REST",
  ),
  "--username": ignore("--username ignored: odin authenticates with API tokens (ODIN_TOKEN)"),
  "-u": ignore("-u ignored: odin authenticates with API tokens (ODIN_TOKEN)"),
  "--password": ignore("--password ignored: odin authenticates with API tokens (ODIN_TOKEN)"),
  "-p": ignore("-p ignored: odin authenticates with API tokens (ODIN_TOKEN)"),
  // The original's --token named a file holding a JWT; a file here holds an odin API token.
  "--token": {
    values: 1,
    apply: ([v], out) => {
      const file = (v ?? "").replace(/^~(?=\/|$)/, homedir());
      if (existsSync(file)) out.args.push("--token", readFileSync(file, "utf8").trim());
      else out.notes.push(`--token ${v}: no such token file; using ODIN_TOKEN`);
    },
  },
};

const namespaceNote = ignore(
  "--namespace %s ignored: the server decides the namespace of a run's objects",
);

const commands: Record<string, CompatCommand> = {
  "odin-run": {
    usage: "odin-run JOB [--host H] [--port P] [--scheme S] [--token FILE] [-u USER] [-p PASS]",
    odin: "run JOB --follow",
    positionals: ["JOB"],
    options: {},
    build: ([job], out) => out.args.unshift("run", job ?? "", "--follow"),
  },
  "odin-status": {
    usage: "odin-status PATTERN [--columns COL …] [--all] [--host H] [--port P] [--scheme S]",
    odin: "status PATTERN [--columns …]",
    positionals: ["PATTERN"],
    options: {
      "--columns": { values: "+", apply: (v, out) => out.args.push("--columns", v.join(",")) },
      "--all": {
        values: 0,
        apply: (_v, out) => out.args.push("--columns", "all"),
      },
    },
    build: ([pattern], out) => out.args.unshift("status", ...(pattern ? [pattern] : [])),
  },
  "odin-logs": {
    usage:
      "odin-logs RESOURCE [--namespace NS] [--container C] [--follow|-f] [--lines|-l N] [--host H] [--port P]",
    odin: "logs RESOURCE [-f] [--tail N] [--container C]",
    positionals: ["RESOURCE"],
    options: {
      "--namespace": namespaceNote,
      "--container": pass("--container"),
      "--follow": pass("--follow", 0),
      "-f": pass("--follow", 0),
      "--lines": pass("--tail"),
      "-l": pass("--tail"),
    },
    build: ([resource], out) => out.args.unshift("logs", resource ?? ""),
  },
  "odin-events": {
    usage: "odin-events RESOURCE [--namespace NS] [--host H] [--port P] [--scheme S]",
    odin: "events RESOURCE",
    positionals: ["RESOURCE"],
    options: { "--namespace": namespaceNote },
    build: ([resource], out) => out.args.unshift("events", resource ?? ""),
  },
  "odin-cleanup": {
    usage: "odin-cleanup PIPELINE [--db|-d] [--fs|-f] [--host H] [--port P] [--token FILE]",
    odin: "rm RUN [--purge-records] [--purge-data]",
    positionals: ["PIPELINE"],
    options: {
      "--db": pass("--purge-records", 0),
      "-d": pass("--purge-records", 0),
      "--fs": pass("--purge-data", 0),
      "-f": pass("--purge-data", 0),
    },
    build: ([run], out) => out.args.unshift("rm", run ?? ""),
  },
  "odin-push": {
    usage:
      "odin-push JOB FILE [--file_name NAME] [--create|-c] [--host H] [--port P] [--token FILE]",
    odin: "push FILE --as JOB [--file-name NAME]",
    positionals: ["JOB", "FILE"],
    options: {
      "--file_name": pass("--file-name"),
      "--create": ignore("--create ignored: the first push of a pipeline creates it", 0),
      "-c": ignore("-c ignored: the first push of a pipeline creates it", 0),
    },
    build: ([job, file], out) => out.args.unshift("push", file ?? "", "--as", job ?? ""),
  },
  // The original printed a task's record; its files are what a run leaves, so odin-data lists
  // them: a task id lists the task's directory (TASK_PATH), a run id the whole RUN_PATH.
  "odin-data": {
    usage: "odin-data RESOURCE [--host H] [--port P] [--scheme S]",
    odin: "data RUN [TASK]",
    positionals: ["RESOURCE"],
    options: {},
    build: ([resource], out) => {
      const at = (resource ?? "").indexOf("--");
      out.args.unshift(
        "data",
        ...(at === -1 ? [resource ?? ""] : [resource!.slice(0, at), resource!.slice(at + 2)]),
      );
    },
  },
  "odin-gpus": {
    usage: "odin-gpus [--host H] [--port P] [--scheme S]",
    odin: "gpus",
    positionals: [],
    options: {},
    build: (_p, out) => out.args.unshift("gpus"),
  },
};

/** The names of the original's commands odin installs. */
export const compatCommandNames: readonly string[] = Object.keys(commands);

/**
 * Translates an invocation under one of the original's names (`argv[1]` ends in `odin-status`
 * …) into odin's argument vector; other invocations are returned as they are. Notes about
 * arguments that mean nothing here go to `note`.
 */
export function compatArgv(argv: readonly string[], note: (text: string) => void): string[] {
  const invoked = (argv[1] ?? "").split(/[\\/]/).pop()?.replace(/\.js$/, "") ?? "";
  const spec = commands[invoked];
  const out: Translation = { args: [], server: {}, notes: [] };
  let rest = argv.slice(2);
  if (!spec) {
    out.args = [...rest];
  } else if (rest.includes("--help") || rest.includes("-h")) {
    note(`${invoked} is "odin ${spec.odin}"; the original's usage: ${spec.usage}`);
    return [argv[0]!, "odin", spec.odin.split(" ")[0]!, "--help"];
  } else {
    const options = { ...common, ...spec.options };
    const positionals: string[] = [];
    while (rest.length > 0) {
      const arg = rest[0]!;
      rest = rest.slice(1);
      const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
      const name = eq > 0 ? arg.slice(0, eq) : arg;
      const rule = options[name];
      if (rule) {
        let values: string[] = eq > 0 ? [arg.slice(eq + 1)] : [];
        if (eq < 0 && rule.values === 1) {
          values = rest.slice(0, 1);
          rest = rest.slice(1);
        } else if (eq < 0 && rule.values === "+") {
          const end = rest.findIndex((a) => a.startsWith("-"));
          values = end === -1 ? rest : rest.slice(0, end);
          rest = end === -1 ? [] : rest.slice(end);
        }
        rule.apply(values, out);
      } else if (/^--x:./.test(name) && invoked === "odin-run") {
        // odin-run's template context (--x:key value): the run's parameters.
        let value = eq > 0 ? arg.slice(eq + 1) : undefined;
        if (value === undefined && rest[0] !== undefined && !rest[0].startsWith("--")) {
          value = rest[0];
          rest = rest.slice(1);
        }
        out.args.push("--set", `${name.slice("--x:".length)}=${value ?? ""}`);
      } else if (name.startsWith("-") && name !== "-") {
        // odin's own options (-o json, --server …) pass through.
        out.args.push(arg);
      } else if (positionals.length < spec.positionals.length) {
        positionals.push(arg);
      } else {
        out.notes.push(`extra argument "${arg}" ignored`);
      }
    }
    spec.build(positionals, out);
  }
  const { host, port } = out.server;
  if (host || port) out.args.unshift("--server", `${host || "localhost"}:${port || "50051"}`);
  for (const text of out.notes) note(text);
  return [argv[0]!, "odin", ...out.args];
}
