#!/usr/bin/env node
// The `odin` command. Thin: parses arguments, calls a command, prints one clear line on failure.
import { Command, CommanderError, Option } from "commander";
import { describeGrpcError } from "@odin/service-kit";
import {
  lsCommand,
  pushCommand,
  showCommand,
  syncCommand,
  type DagFormat,
} from "./commands/repo.js";
import { validateCommand } from "./commands/validate.js";
import { runKubeSimCli } from "@odin/testing";
import type { OutputFormat } from "./output.js";

interface GlobalOptions {
  server?: string;
  token?: string;
  output: OutputFormat;
}

const program = new Command("odin")
  .description("Run machine-learning pipelines on Kubernetes")
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

program
  .command("kube-sim")
  .description(
    "run kube-sim, a Kubernetes API simulator, to try Odin's Kubernetes path without a cluster",
  )
  .allowUnknownOption()
  .helpOption(false)
  .argument("[options...]", "kube-sim's options (odin kube-sim --help)")
  .action((args: string[]) => run(runKubeSimCli(args)));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`odin: ${describeGrpcError(err)}\n`);
    process.exitCode = 1;
  }
}
