#!/usr/bin/env node
// The `odin` command. Thin: parses arguments, calls a command, prints one clear line on failure.
import { Command, CommanderError, Option } from "commander";
import { validateCommand } from "./commands/validate.js";

const program = new Command("odin")
  .description("Run machine-learning pipelines on Kubernetes")
  .showHelpAfterError()
  .exitOverride();

program
  .command("validate")
  .description("check every pipeline (main.yml) under the given directories; no server needed")
  .argument("[dir...]", "pipelines repositories, pipeline directories or main.yml files", [])
  .option("-q, --quiet", "print errors only, not warnings")
  .addOption(
    new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"),
  )
  .action(async (dirs: string[], options: { quiet?: boolean; output: "text" | "json" }) => {
    process.exitCode = await validateCommand(dirs, options, process.stdout);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`odin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
