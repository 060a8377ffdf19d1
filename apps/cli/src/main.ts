#!/usr/bin/env node
// The `odin` command. Thin: parses arguments, loads only the command asked for (a command's
// modules are imported when it runs, so `odin --version` or `odin status` start fast), calls it,
// and prints one clear line and a documented exit code on failure.
import { existsSync, readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { compatArgv } from "./compat.js";
import { CommandError, ExitCode, exitCodeOf } from "./exit.js";
import type { OutputFormat } from "./output.js";

interface GlobalOptions {
  server?: string;
  token?: string;
  output: OutputFormat;
}

/** odin's version, from its package.json (next to dist/ or dist/bundle/). */
function version(): string {
  for (const up of ["../package.json", "../../package.json"]) {
    const file = new URL(up, import.meta.url);
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
    if (pkg.name === "@odin/cli" && pkg.version) return pkg.version;
  }
  return "unknown";
}

// A reader that closed early (`odin status | head`) is not an error: stop quietly.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });

const program = new Command("odin")
  .description("Run machine-learning pipelines on Kubernetes")
  .version(version(), "-V, --version", "print odin's version")
  .option(
    "-s, --server <address>",
    "Odin server host:port (default: ODIN_SERVER, else ODIN_URL:ODIN_PORT, else localhost:50051)",
  )
  .option("--token <token>", "API token (default: ODIN_TOKEN)")
  .addOption(
    new Option("-o, --output <format>", "output format of commands that print data")
      .choices(["text", "json", "yaml"])
      .default("text"),
  )
  .showHelpAfterError()
  .exitOverride()
  .addHelpText(
    "after",
    `
Exit codes: 0 success; 1 failed (a followed run failed, an invalid pipeline, any other error);
2 usage error; 3 a followed run was cancelled; 4 not found; 5 server unreachable;
6 not authenticated or not allowed.`,
  );

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
const run = (code: Promise<number>): Promise<void> => code.then((c) => void (process.exitCode = c));
const runs = () => import("./commands/runs.js");
const repo = () => import("./commands/repo.js");
const data = () => import("./commands/data.js");

program
  .command("validate")
  .description("check every pipeline (main.yml) under the given directories; no server needed")
  .argument("[dir...]", "pipelines repositories, pipeline directories or main.yml files", [])
  .option("-q, --quiet", "print errors only, not warnings")
  .action(async (dirs: string[], options: { quiet?: boolean }) => {
    const { validateCommand } = await import("./commands/validate.js");
    const output = globals().output;
    if (output === "yaml")
      throw new CommandError("validate: -o takes text or json", ExitCode.usage);
    await run(validateCommand(dirs, { quiet: options.quiet, output }, process.stdout));
  });

program
  .command("ls")
  .description("list the pipelines of the repository")
  .argument("[prefix]", "only pipelines under this directory")
  .option("--commit <sha>", "at this commit instead of the newest")
  .action(async (prefix: string | undefined, options: { commit?: string }) =>
    run((await repo()).lsCommand(prefix, { ...globals(), ...options }, process.stdout)),
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
  .action(async (path: string, options: { commit?: string; format: "text" | "dot" | "mermaid" }) =>
    run((await repo()).showCommand(path, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("push")
  .description(
    "validate a pipeline directory locally, then commit it to the pipelines repository " +
      "(or one file: odin push FILE --as PIPELINE)",
  )
  .argument("<path>", "the pipeline's directory (holding main.yml), or one file with --as")
  .option("--as <pipeline>", "pipeline path in the repository (default: the directory's name)")
  .option("--file-name <name>", "pushing one file: its name in the pipeline (default: its own)")
  .option("-m, --message <message>", "commit message")
  .action(async (path: string, options: { as?: string; fileName?: string; message?: string }) =>
    run((await repo()).pushCommand(path, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("sync")
  .description("fetch the pipelines repository's remote now")
  .action(async () => run((await repo()).syncCommand(globals(), process.stdout)));

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const wholeNumber = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CommandError(`"${value}" is not a whole number`);
  return n;
};

program
  .command("run")
  .description(
    "start a run of a pipeline; prints its id (with --follow, shows it live until it ends: " +
      "exit 0 succeeded, 1 failed, 3 cancelled)",
  )
  .argument("[pipeline]", "pipeline directory in the repository, e.g. alice/sst2")
  .option("-f, --follow", "show the run live until it ends (-o json: one JSON object per event)")
  .option("--commit <sha>", "run the pipeline at this commit instead of the newest")
  .option("-l, --label <key=value>", "label the run (repeatable)", collect, [])
  .option(
    "--set <name=value>",
    "a parameter's value, read as its declared type (repeatable; wins over --values)",
    collect,
    [],
  )
  .option("--values <file>", "parameter values from a YAML or JSON map")
  .option(
    "--same-as <run>",
    "the pipeline, commit, labels and parameters of that run (what is given here wins)",
  )
  .option("--no-cache", "run every task, even those whose earlier result could be reused")
  .action(
    async (
      pipeline: string | undefined,
      options: {
        follow?: boolean;
        commit?: string;
        label: string[];
        set: string[];
        values?: string;
        sameAs?: string;
        cache?: boolean;
      },
    ) => run((await runs()).runCommand(pipeline, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("status")
  .description(
    "a table of recent runs; one run's tasks (RUN); one task with its outputs (RUN--TASK); " +
      "or the runs whose id or pipeline starts with PATTERN",
  )
  .argument("[run]", "run id, task id RUN--TASK, or a prefix of run ids or pipelines")
  .option("-p, --pipeline <pipeline>", "only runs of this pipeline")
  .option("-a, --all", "every run, not only the newest 20")
  .option(
    "-l, --selector <labels>",
    "only runs whose labels match, as kubectl's -l: team=nlp,env!=dev,tier in (a,b),gpu,!gpu",
  )
  .option(
    "--columns <names>",
    "task table columns, comma-separated: task,state,attempt,duration,exit,object,reason,launched,started,ended,outputs",
  )
  .action(
    async (
      target: string | undefined,
      options: { pipeline?: string; all?: boolean; selector?: string; columns?: string },
    ) => run((await runs()).statusCommand(target, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("logs")
  .description(
    "a task's log (RUN--TASK), or every task's of a run (RUN); -f waits for tasks that have not started",
  )
  .argument("<target>", "run id or task id RUN--TASK")
  .option("-f, --follow", "keep streaming while the task runs (waits for it to start)")
  .option("-t, --tail <lines>", "only the last N lines", wholeNumber)
  .option("--attempt <n>", "this attempt instead of the latest", wholeNumber)
  .option("--container <name>", "this container of the task's pod")
  .action(
    async (
      target: string,
      options: { follow?: boolean; tail?: number; attempt?: number; container?: string },
    ) => run((await runs()).logsCommand(target, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("events")
  .description(
    "Kubernetes events of a task's objects and pods (RUN--TASK), or of every task of a run (RUN)",
  )
  .argument("<target>", "run id or task id RUN--TASK")
  .action(async (target: string) =>
    run((await runs()).eventsCommand(target, globals(), process.stdout)),
  );

program
  .command("data")
  .description(
    "list a run's files under its RUN_PATH (or under PATH inside it); --download fetches a file or a directory",
  )
  .argument("<run>", "run id")
  .argument("[path]", "a file or directory relative to the run's RUN_PATH")
  .option("-r, --recursive", "list the whole tree")
  .option("-d, --download", "download the file, or every file of the directory")
  .option("--to <dir>", "where downloads go (default: the current directory; - : stdout, one file)")
  .option("--max-bytes <n>", "refuse a download larger than this", wholeNumber)
  .action(
    async (
      runId: string,
      path: string | undefined,
      options: { recursive?: boolean; download?: boolean; to?: string; maxBytes?: number },
    ) => run((await data()).dataCommand(runId, path, { ...globals(), ...options }, process.stdout)),
  );

program
  .command("gpus")
  .description(
    "the cluster's nodes with GPUs (nvidia.com/gpu): allocatable, allocated, free, and the Odin tasks using them",
  )
  .option("--all", "also list nodes without GPUs")
  .action(async (options: { all?: boolean }) =>
    run((await data()).gpusCommand({ ...globals(), ...options }, process.stdout)),
  );

program
  .command("cancel")
  .description("cancel a run: running tasks are stopped, waiting ones will not start")
  .argument("<run>", "run id")
  .action(async (runId: string) =>
    run((await runs()).cancelOrRetryCommand("cancel", runId, globals(), process.stdout)),
  );

program
  .command("retry")
  .description("run a finished run's failed, errored, skipped and cancelled tasks again")
  .argument("<run>", "run id")
  .option("-f, --follow", "show the run live until it ends; exit with its outcome, as odin run -f")
  .action(async (runId: string, options: { follow?: boolean }) =>
    run(
      (await runs()).cancelOrRetryCommand(
        "retry",
        runId,
        { ...globals(), ...options },
        process.stdout,
      ),
    ),
  );

program
  .command("rm")
  .description(
    "remove a run's task objects (Kubernetes objects or local processes), stopping it first if it is running " +
      "(--purge: also its records and RUN_PATH data)",
  )
  .argument("<run>", "run id")
  .option("--purge", "also delete the run's records and its RUN_PATH data")
  .option("--purge-records", "also delete the run's records")
  .option("--purge-data", "also delete the run's RUN_PATH data")
  .action(
    async (
      runId: string,
      options: { purge?: boolean; purgeRecords?: boolean; purgeData?: boolean },
    ) => run((await runs()).rmCommand(runId, { ...globals(), ...options }, process.stdout)),
  );

const schedules = () => import("./commands/schedules.js");
const schedule = program
  .command("schedule")
  .description("cron schedules of pipelines: create, ls, pause, resume, rm");

schedule
  .command("create")
  .description(
    "run a pipeline on a cron schedule; every tick starts one run (submitted by schedule:NAME)",
  )
  .argument("<name>", "the schedule's name: lower-case letters, digits and -")
  .argument("<pipeline>", "pipeline directory in the repository, e.g. alice/sst2")
  .requiredOption(
    "--cron <expr>",
    'five cron fields, e.g. "0 2 * * *" (02:00 every day); six with seconds first',
  )
  .option("--timezone <zone>", "IANA time zone the cron fields are read in (default UTC)")
  .option("--set <name=value>", "a parameter's value for every run (repeatable)", collect, [])
  .option("--values <file>", "parameter values from a YAML or JSON map")
  .option("--catchup <policy>", "ticks missed while no scheduler ran: skip (default) or once")
  .option(
    "--concurrency <policy>",
    "while the last run is active: allow (default), forbid (skip the tick) or replace (cancel it)",
  )
  .option(
    "--notify <name[:states]>",
    "post each run's end to this webhook (its secret's name), besides the pipeline's notify:; states: succeeded,failed,cancelled (default all); repeatable",
    collect,
    [],
  )
  .option("--paused", "create it paused")
  .action(
    async (
      name: string,
      pipeline: string,
      options: {
        cron: string;
        timezone?: string;
        set: string[];
        values?: string;
        catchup?: string;
        concurrency?: string;
        notify: string[];
        paused?: boolean;
      },
    ) =>
      run(
        (await schedules()).createScheduleCommand(
          name,
          pipeline,
          { ...globals(), ...options },
          process.stdout,
        ),
      ),
  );

schedule
  .command("ls")
  .description("every schedule, created or declared in a pipeline, with its next tick and last run")
  .option("-p, --pipeline <pipeline>", "only schedules of this pipeline")
  .action(async (options: { pipeline?: string }) =>
    run((await schedules()).listSchedulesCommand({ ...globals(), ...options }, process.stdout)),
  );

for (const [action, what] of [
  ["pause", "stop a schedule's ticks from starting runs"],
  ["resume", "let a paused schedule start runs again, from its next tick"],
  ["rm", "remove a schedule made with create (its runs stay)"],
] as const) {
  schedule
    .command(action)
    .description(what)
    .argument("<name>", "the schedule's name (odin schedule ls)")
    .action(async (name: string) =>
      run((await schedules()).changeScheduleCommand(action, name, globals(), process.stdout)),
    );
}

program
  .command("triggers")
  .description(
    "the commit triggers pipelines declare (triggers: in main.yml) and the last commit each started a run for",
  )
  .option("-p, --pipeline <pipeline>", "only triggers of this pipeline")
  .action(async (options: { pipeline?: string }) =>
    run(
      (await import("./commands/triggers.js")).listTriggersCommand(
        { ...globals(), ...options },
        process.stdout,
      ),
    ),
  );

const cache = program
  .command("cache")
  .description("the task results later runs reuse (see docs/caching.md)");
cache
  .command("ls")
  .description("list cached task results, newest first")
  .argument("[pipeline]", "only this pipeline's")
  .argument("[task]", "only this task's")
  .option("--limit <n>", "at most this many", wholeNumber)
  .action(
    async (pipeline: string | undefined, task: string | undefined, options: { limit?: number }) => {
      const { cacheLsCommand } = await import("./commands/cache.js");
      await run(cacheLsCommand(pipeline, task, { ...globals(), ...options }, process.stdout));
    },
  );
cache
  .command("rm")
  .description("forget cached task results, so those tasks run next time (their files stay)")
  .argument("[key...]", "keys, or unique prefixes of 8+ digits, from odin cache ls")
  .option("--pipeline <path>", "every result of this pipeline")
  .option("--task <name>", "with --pipeline: only this task's")
  .option("--all", "every result")
  .action(async (keys: string[], options: { pipeline?: string; task?: string; all?: boolean }) => {
    const { cacheRmCommand } = await import("./commands/cache.js");
    await run(cacheRmCommand(keys, { ...globals(), ...options }, process.stdout));
  });

program
  .command("server")
  .description(
    "run every Odin service in this process, with local processes for tasks (no cluster needed)",
  )
  .option(
    "--repo <path|url>",
    "pipelines: a directory, your own git checkout (runs use its commits, pushes commit to it), or a git URL " +
      "(default: a copy of Odin's examples/pipelines, made in --data's .odin/pipelines on the first start)",
  )
  .option("--data <dir>", "where runs write (DATA_PATH)", "./.odin/data")
  .option("--port <n>", "gRPC port", wholeNumber, 50051)
  .option(
    "--http-port <n>",
    "port of the web UI and the HTTP/JSON API (Connect protocol)",
    wholeNumber,
    8080,
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
  .option(
    "--max-running-tasks <n>",
    "at most this many tasks running at once across all runs (0: no limit)",
    wholeNumber,
    0,
  )
  .option(
    "--metrics-port <n>",
    "serve Prometheus /metrics and /healthz over HTTP on this port, on --host (off by default)",
    wholeNumber,
  )
  .option(
    "--webhooks <file>",
    "a YAML/JSON file mapping webhook secret names to URLs, for pipelines' notify: (default: ODIN_WEBHOOKS_FILE)",
  )
  .option(
    "--public-url <url>",
    "the web UI's address as people reach it, for notification links (default: ODIN_PUBLIC_URL, else the web UI's own)",
  )
  .addOption(
    new Option("--log-level <level>", "server log level")
      .choices(["debug", "info", "warn", "error"])
      .default("warn"),
  )
  .action(async (options: Record<string, unknown>) => {
    const { serverCommand } = await import("./commands/server.js");
    await run(serverCommand(options as never, process.stdout));
  });

program
  .command("kube-sim")
  .description(
    "run kube-sim, a Kubernetes API simulator, to try Odin's Kubernetes path without a cluster",
  )
  .allowUnknownOption()
  .helpOption(false)
  .argument("[options...]", "kube-sim's options (odin kube-sim --help)")
  .action(async (args: string[]) => {
    const { runKubeSimCli } = await import("@odin/kube-sim");
    await run(runKubeSimCli(args));
  });

try {
  const argv = compatArgv(process.argv, (note) => process.stderr.write(`odin: note: ${note}\n`));
  await program.parseAsync(argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  } else {
    const { reportError } = await import("./report.js");
    reportError(err, process.stderr);
    process.exitCode = exitCodeOf(err);
  }
}
