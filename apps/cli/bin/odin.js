#!/usr/bin/env node
// The odin command's entry. It exists before the build, so npm can link `odin` (and the original's
// odin-* names) at install time. It runs the bundled CLI (dist/bundle, built by `npm run build`),
// which loads only the code of the command asked for; `--version` needs nothing but package.json.
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
  const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  process.stdout.write(`${version}\n`);
} else {
  import("../dist/bundle/main.js").catch((err) => {
    if (
      err &&
      err.code === "ERR_MODULE_NOT_FOUND" &&
      String(err.message).includes("dist/bundle/main.js")
    ) {
      process.stderr.write(
        "odin: not built yet — run `npm run build` in the Odin checkout first\n",
      );
      process.exit(1);
    }
    throw err;
  });
}
