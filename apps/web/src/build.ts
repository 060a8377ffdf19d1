// Builds the web UI into dist/public: one minified ES module bundle and one stylesheet, both named
// by content hash (served as immutable), and an index.html that loads them. Nothing is fetched at
// run time from anywhere but the serving Odin.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "dist", "public");

await rm(out, { recursive: true, force: true });
await mkdir(join(out, "assets"), { recursive: true });
const result = await build({
  entryPoints: [join(root, "src", "ui", "main.tsx")],
  bundle: true,
  minify: process.env.ODIN_WEB_MINIFY !== "0",
  sourcemap: "linked",
  format: "esm",
  target: ["chrome109", "firefox115", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: join(out, "assets"),
  entryNames: "[name].[hash]",
  metafile: true,
  legalComments: "none",
  tsconfig: join(root, "src", "ui", "tsconfig.json"),
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs);
const script = outputs.find((f) => f.endsWith(".js"));
const style = outputs.find((f) => f.endsWith(".css"));
if (script === undefined || style === undefined) throw new Error("esbuild produced no bundle");
const template = await readFile(join(root, "src", "ui", "index.html"), "utf8");
await writeFile(
  join(out, "index.html"),
  template
    .replace("%STYLE%", `/assets/${basename(style)}`)
    .replace("%SCRIPT%", `/assets/${basename(script)}`),
);
// Precompressed copies, served to browsers that take gzip (a third of the bytes on the wire).
for (const f of [script, style])
  await writeFile(`${f}.gz`, gzipSync(await readFile(f), { level: 9 }));
const bytes = (f: string): number => result.metafile.outputs[f]?.bytes ?? 0;
console.log(
  `web UI: ${basename(script)} ${(bytes(script) / 1024).toFixed(0)} KiB, ` +
    `${basename(style)} ${(bytes(style) / 1024).toFixed(0)} KiB`,
);
