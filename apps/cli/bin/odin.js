#!/usr/bin/env node
// The odin command's entry. It exists before the build, so npm can link `odin` (and the original's
// odin-* names) at install time; the code itself is built into dist/ by `npm run build`.
import("../dist/main.js").catch((err) => {
  if (err && err.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/main.js")) {
    process.stderr.write("odin: not built yet — run `npm run build` in the Odin checkout first\n");
    process.exit(1);
  }
  throw err;
});
