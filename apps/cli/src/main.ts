#!/usr/bin/env node
// The `odin` command. Thin: parses arguments, calls a command, prints one clear line on failure.
import { createRequire } from "node:module";
import { Command, CommanderError, Option } from "commander";
import { describeGrpcError, problemsOf } from "@odin/service-kit";
import {
  lsCommand,
  pushCommand,
  showCommand,
  syncCommand,
  type DagFormat,
} from "./commands/repo.js";
import {
  cancelOrRetryCommand,
  eventsCommand,
  logsCommand,
  rmCommand,
  runCommand,
  statusCommand,
} from "./commands/runs.js";
import { defaultHttpPort, defaultServerPort, serverCommand } from "./commands/server.js";
import { validateCommand } from "./commands/validate.js";
import { runKubeSimCli } from "@odin/testing";
import type { OutputFormat } from "./output.js";

interface GlobalOptions {
  server?: string;
  token?: string;
  output: OutputFormat;
}

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

const program = new Command("odin")
  .description("Run machine-learning pipelines on Kubernetes")
  .version(version, "-V, --version", "print odin's version")
  .option(
    "-s, --server <address>",
    "Odin server host:port (default: ODIN_SERVER, else localhost:50051)",
  )
  .option("--token <token>", "API token (default: ODIN_TOKEN)")
  .addOption(
    new Option("-o, --output <format>", "output format")
      .choices(["text", "json", "yaml"])
      .default("text"),
  )
  .showHelpAfterError()
  .exitOverride();

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
const run = (code: Promise<number>): Promise<void> => code.then((c) => void (process.exitCode = c));

program
  .command("validate")
  .description("check every pipeline (main.yml) under the given directories; no server needed")
  .argument("[dir...]", "pipelines repositories, pipeline directories or main.yml files", [])
  .option("-q, --quiet", "print errors only, not warnings")
  .action((dirs: string[], options: { quiet?: boolean }) =>
    run(
      validateCommand(
        dirs,
        { quiet: options.quiet, output: globals().output === "json" ? "json" : "text" },
        process.stdout,
      ),
    ),
  );

program
  .command("ls")
  .description("list the pipelines of the repository")
  .argument("[prefix]", "only pipelines under this directory")
  .option("--commit <sha>", "at this commit instead of the newest")
  .action((prefix: string | undefined, options: { commit?: string }) =>
    run(lsCommand(prefix, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("show")
  .description("show a pipeline: tasks, images, dependencies and its DAG")
  .argument("<pipeline>", "pipeline directory in the repository, e.g. alice/sst2")
  .option("--commit <sha>", "at this commit instead of the newest")
  .addOption(
    new Option("--format <format>", "how to draw the DAG")
      .choices(["text", "dot", "mermaid"])
      .default("text"),
  )
  .action((path: string, options: { commit?: string; format: DagFormat }) =>
    run(showCommand(path, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("push")
  .description("validate a pipeline directory locally, then commit it to the pipelines repository")
  .argument("<dir>", "the pipeline's directory (holding main.yml)")
  .option("--as <pipeline>", "pipeline path in the repository (default: the directory's name)")
  .option("-m, --message <message>", "commit message")
  .action((dir: string, options: { as?: string; message?: string }) =>
    run(pushCommand(dir, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("sync")
  .description("fetch the pipelines repository's remote now")
  .action(() => run(syncCommand(globals(), process.stdout)));

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`"${value}" is not a whole number`);
  return n;
};

program
  .command("run")
  .description(
    "start a run of a pipeline; prints its id (with --follow, shows it live until it ends)",
  )
  .argument("<pipeline>", "pipeline directory in the repository, e.g. alice/sst2")
  .option("-f, --follow", "show the run live until it ends; exit 0 only if it succeeded")
  .option("--commit <sha>", "run the pipeline at this commit instead of the newest")
  .option("-l, --label <key=value>", "label the run (repeatable)", collect, [])
  .action((pipeline: string, options: { follow?: boolean; commit?: string; label: string[] }) =>
    run(runCommand(pipeline, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("status")
  .description("a table of recent runs, or one run's tasks (RUN or RUN--TASK)")
  .argument("[run]", "run id, or task id RUN--TASK")
  .option("-p, --pipeline <pipeline>", "only runs of this pipeline")
  .option("-a, --all", "every run, not only the newest 20")
  .action((target: string | undefined, options: { pipeline?: string; all?: boolean }) =>
    run(statusCommand(target, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("logs")
  .description("a task's log (RUN--TASK), or every task's of a run (RUN)")
  .argument("<target>", "run id or task id RUN--TASK")
  .option("-f, --follow", "keep streaming while the task runs")
  .option("-t, --tail <lines>", "only the last N lines", positiveInt)
  .option("--attempt <n>", "this attempt instead of the latest", positiveInt)
  .action((target: string, options: { follow?: boolean; tail?: number; attempt?: number }) =>
    run(logsCommand(target, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("events")
  .description("Kubernetes events of a task's objects and pods (RUN--TASK), or of a run's")
  .argument("<target>", "run id or task id RUN--TASK")
  .action((target: string) => run(eventsCommand(target, globals(), process.stdout)));

program
  .command("cancel")
  .description("cancel a run: running tasks are stopped, waiting ones will not start")
  .argument("<run>", "run id")
  .action((runId: string) => run(cancelOrRetryCommand("cancel", runId, globals(), process.stdout)));

program
  .command("retry")
  .description("run a finished run's failed, errored, skipped and cancelled tasks again")
  .argument("<run>", "run id")
  .action((runId: string) => run(cancelOrRetryCommand("retry", runId, globals(), process.stdout)));

program
  .command("rm")
  .description("remove a run's Kubernetes objects (--purge: also its records and RUN_PATH data)")
  .argument("<run>", "run id")
  .option("--purge", "also delete the run's records and its RUN_PATH data")
  .option("--purge-records", "also delete the run's records")
  .option("--purge-data", "also delete the run's RUN_PATH data")
  .action(
    (runId: string, options: { purge?: boolean; purgeRecords?: boolean; purgeData?: boolean }) =>
      run(rmCommand(runId, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("server")
  .description(
    "run every Odin service in this process, with local processes for tasks (no cluster needed)",
  )
  .option(
    "--repo <path|url>",
    "pipelines: a directory or a git URL (default: Odin's examples/pipelines)",
  )
  .option("--data <dir>", "where runs write (DATA_PATH)", "./.odin/data")
  .option("--port <n>", "gRPC port", positiveInt, defaultServerPort)
  .option(
    "--http-port <n>",
    "port of the web UI and the HTTP/JSON API (Connect protocol)",
    positiveInt,
    defaultHttpPort,
  )
  .option("--host <address>", "address to listen on", "127.0.0.1")
  .option(
    "--nats <url>",
    "use this NATS server (JetStream) for events and run state instead of memory",
  )
  .option(
    "--kube",
    "run tasks on Kubernetes (the current kubeconfig context, as kubectl picks it) instead of local processes",
  )
  .option("--namespace <namespace>", "with --kube: the namespace of the task objects", "default")
  .option("--tokens <file>", "require API tokens from this tokens file (auth is off without it)")
  .addOption(
    new Option("--log-level <level>", "server log level")
      .choices(["debug", "info", "warn", "error"])
      .default("warn"),
  )
  .action(
    (options: {
      repo?: string;
      data: string;
      port: number;
      httpPort: number;
      host: string;
      nats?: string;
      kube?: boolean;
      namespace?: string;
      tokens?: string;
      logLevel: "debug" | "info" | "warn" | "error";
    }) => run(serverCommand(options, process.stdout)),
  );

program
  .command("kube-sim")
  .description(
    "run kube-sim, a Kubernetes API simulator, to try Odin's Kubernetes path without a cluster",
  )
  .allowUnknownOption()
  .helpOption(false)
  .argument("[options...]", "kube-sim's options (odin kube-sim --help)")
  .action((args: string[]) => run(runKubeSimCli(args)));

/** The original Odin's command names map onto odin's subcommands (`odin-run X` is `odin run X -f`). */
function compatArgv(argv: string[]): string[] {
  const invoked = (argv[1] ?? "").split("/").pop() ?? "";
  const rest = argv.slice(2);
  const map: Record<string, (a: string[]) => string[]> = {
    "odin-run": (a) => ["run", "--follow", ...a],
    "odin-status": (a) => ["status", ...a.filter((x) => x !== "--all")],
    "odin-logs": (a) => ["logs", ...a.map((x) => (x === "--lines" || x === "-l" ? "--tail" : x))],
    "odin-events": (a) => ["events", ...a],
    "odin-cleanup": (a) => [
      "rm",
      ...a.flatMap((x) =>
        x === "--db" || x === "-d"
          ? ["--purge-records"]
          : x === "--fs" || x === "-f"
            ? ["--purge-data"]
            : [x],
      ),
    ],
    // odin-push JOB FILE [--file_name NAME] [--create]: one file into a pipeline directory.
    "odin-push": (a) => {
      const positional = a.filter((x, i) => !x.startsWith("-") && a[i - 1] !== "--file_name");
      const name = a[a.indexOf("--file_name") + 1];
      return [
        "push",
        positional[1] ?? "",
        "--as",
        positional[0] ?? "",
        ...(a.includes("--file_name") && name ? ["--file-name", name] : []),
      ];
    },
  };
  const translate = map[invoked];
  return translate ? [argv[0]!, "odin", ...translate(rest)] : argv;
}

try {
  await program.parseAsync(compatArgv(process.argv));
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`odin: ${describeGrpcError(err)}\n`);
    // Positioned problems (e.g. of an invalid pipeline) come in the status's trailers.
    for (const p of problemsOf(err)) {
      const where = p.line ? `${p.file}:${p.line}:${p.column ?? 0}` : (p.file ?? "");
      process.stderr.write(`${where}: ${p.task ? `${p.task}: ` : ""}${p.message}\n`);
    }
    process.exitCode = 1;
  }
}
