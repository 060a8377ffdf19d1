// Bundles the odin command into dist/bundle/ (one file per command group, loaded on demand), so
// a command starts by reading a few files instead of resolving hundreds of modules. grpc-js is
// left out: the CLI makes its calls over node:http2 (src/rpc.ts); the generated service
// definitions import grpc-js only to build client classes the CLI never uses, so the bundle gets
// a small stand-in with the few names they and service-kit's error helpers need. `odin server`
// and `odin kube-sim` run the unbundled build (dist/), which loads the real libraries.
import { build } from "esbuild";
import { rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));

rmSync(`${here}/dist/bundle`, { recursive: true, force: true });
const result = await build({
  metafile: Boolean(process.env.ODIN_BUNDLE_META),
  absWorkingDir: here,
  entryPoints: ["src/main.ts"],
  outdir: "dist/bundle",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  conditions: ["@odin/source"],
  // Some bundled CommonJS packages call require() for Node's built-ins.
  banner: {
    js: 'import { createRequire as __odinRequire } from "node:module"; const require = __odinRequire(import.meta.url);',
  },
  plugins: [
    {
      name: "odin-cli",
      setup(b) {
        b.onResolve({ filter: /^@grpc\/grpc-js$/ }, () => ({
          path: fileURLToPath(new URL("../src/grpc-js-lite.ts", import.meta.url)),
        }));
        // The server and kube-sim: the unbundled build, next to the bundle's directory.
        b.onResolve({ filter: /^\.\/commands\/server\.js$/ }, () => ({
          path: "../commands/server.js",
          external: true,
        }));
        b.onResolve({ filter: /^@odin\/testing$/ }, () => ({
          path: "@odin/testing",
          external: true,
        }));
      },
    },
  ],
});
if (process.env.ODIN_BUNDLE_META)
  writeFileSync(process.env.ODIN_BUNDLE_META, JSON.stringify(result.metafile));
