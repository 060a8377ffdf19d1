// Which package may import which: the one written-down dependency graph of the repository.
// eslint.config.js turns it into `@typescript-eslint/no-restricted-imports` rules per package, so
// `npm run lint` (and CI) fails on an import that crosses a boundary; src/boundaries.test.ts shows
// that it does. To add a package, give it a layer below; lint refuses packages without one.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The layers, lowest first. `may` lists the layers a package's production code may import (a
 * layer absent from its own list may not import its siblings: services talk to each other over
 * gRPC, apps never import apps). Test code may in addition import `testing` and `simulator`.
 * @type {Record<string, { what: string, may: string[], bannedExternal?: { name: string, allowTypeImports?: boolean }[] }>}
 */
export const layers = {
  pure: {
    what: "pure logic without I/O or ports: the pipeline format, the run engine, manifests, contracts",
    may: ["pure"],
    // Reading files, spawning, networking and the NATS/Kubernetes clients belong to adapters.
    bannedExternal: [
      { name: "node:fs" },
      { name: "node:fs/promises" },
      { name: "node:child_process" },
      { name: "node:net" },
      { name: "node:http" },
      { name: "node:https" },
      { name: "node:worker_threads" },
      { name: "@nats-io/*" },
      { name: "@kubernetes/client-node", allowTypeImports: true },
    ],
  },
  port: { what: "a port with its adapters (NATS JetStream, in-memory)", may: ["pure"] },
  kit: { what: "the gRPC plumbing every service shares", may: ["pure"] },
  service: { what: "one service's logic and gRPC handlers", may: ["pure", "port", "kit"] },
  composition: {
    what: "every service in one process (odin server)",
    may: ["pure", "port", "kit", "service"],
  },
  app: {
    what: "a composition root (main.ts) or the odin CLI",
    may: ["pure", "port", "kit", "service", "composition", "simulator", "assets"],
  },
  simulator: { what: "kube-sim, the Kubernetes API simulator (odin kube-sim)", may: [] },
  assets: { what: "static files (the web UI) that apps serve", may: [] },
  testing: { what: "test infrastructure, for test code only", may: ["simulator"] },
  tool: {
    what: "benchmarks and cross-package tests",
    may: [
      "pure",
      "port",
      "kit",
      "service",
      "composition",
      "app",
      "simulator",
      "testing",
      "assets",
      "tool",
    ],
  },
};

/** The layer of every workspace package. @type {Record<string, string>} */
export const packageLayers = {
  "@odin/pipeline-spec": "pure",
  "@odin/dag": "pure",
  "@odin/templates": "pure",
  "@odin/k8s-manifests": "pure",
  "@odin/proto": "pure",
  "@odin/events": "port",
  "@odin/run-store": "port",
  "@odin/notify": "port",
  "@odin/service-kit": "kit",
  "@odin/repository": "service",
  "@odin/registry": "service",
  "@odin/scheduler": "service",
  "@odin/launcher": "service",
  "@odin/embedded": "composition",
  "@odin/cli": "app",
  "@odin/repo-sync": "app",
  "@odin/pipeline-registry": "app",
  "@odin/dag-scheduler": "app",
  "@odin/k8s-launcher": "app",
  "@odin/gateway": "app",
  "@odin/web": "assets",
  "@odin/kube-sim": "simulator",
  "@odin/testing": "testing",
  "@odin/bench": "tool",
  "@odin/boundaries": "tool",
  "@odin/e2e": "tool",
  "@odin/deploy-tests": "tool",
  "@odin/failure-tests": "tool",
  "@odin/test-stack": "tool",
};

/** Imports forbidden even though the layers allow them, with the reason. */
export const forbiddenEdges = [
  {
    from: "@odin/scheduler",
    to: "@odin/k8s-manifests",
    why: "the scheduler asks the launcher to LaunchTask; only the launcher knows Kubernetes objects",
  },
];

/** Imports allowed even though the layers forbid them, with the reason. */
export const allowedEdges = [
  {
    from: "@odin/run-store",
    to: "@odin/events",
    why: "both adapters talk to one NATS: run-store reuses the bus's server-list and replica checks",
  },
];

/** Files that are test code: they may import test helpers (`node:test`, `@odin/testing`, `@odin/<pkg>/testing`). */
export const testFiles = ["**/*.test.ts", "**/testing/**", "**/fixtures.ts", "**/*.fixture.ts"];

/** Import specifiers that are test helpers wherever they come from. */
const testHelpers = [
  { regex: "^node:test$", what: "node:test" },
  { regex: "^@odin/[^/]+/testing$", what: "a package's /testing entry point" },
];

/**
 * The workspace packages: name, directory relative to the repository root, and manifest.
 * @param {string} root the repository root
 * @returns {{ name: string, dir: string, manifest: PackageManifest }[]}
 */
export function workspacePackages(root) {
  /** @type {{ workspaces: string[] }} */
  const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  /** @type {{ name: string, dir: string, manifest: PackageManifest }[]} */
  const found = [];
  for (const pattern of workspaces) {
    const parent = pattern.replace(/\/\*$/, "");
    for (const entry of readdirSync(join(root, parent), { withFileTypes: true })) {
      const manifest = join(root, parent, entry.name, "package.json");
      if (!entry.isDirectory() || !existsSync(manifest)) continue;
      /** @type {PackageManifest} */
      const parsed = JSON.parse(readFileSync(manifest, "utf8"));
      found.push({ name: parsed.name, dir: `${parent}/${entry.name}`, manifest: parsed });
    }
  }
  return found;
}

/**
 * The parts of a package.json read here.
 * @typedef {{ name: string, dependencies?: Record<string, string>, devDependencies?: Record<string, string> }} PackageManifest
 */

/**
 * One `no-restricted-imports` pattern.
 * @typedef {{ regex: string, message: string, allowTypeImports?: boolean }} RestrictedPattern
 */

/** @param {string} text */
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/**
 * The `no-restricted-imports` patterns for one package's production code or test code.
 * @param {string} name the package
 * @param {{ test: boolean }} options whether for its test code
 * @returns {RestrictedPattern[]}
 */
export function restrictedPatterns(name, { test }) {
  const layer = layerOf(name);
  const allowed = new Set([...layerInfo(layer).may, ...(test ? ["testing", "simulator"] : [])]);
  /** @type {RestrictedPattern[]} */
  const patterns = [];
  for (const [other, otherLayer] of Object.entries(packageLayers)) {
    if (other === name) continue;
    const edge = forbiddenEdges.find((e) => e.from === name && e.to === other);
    const exception = allowedEdges.some((e) => e.from === name && e.to === other);
    if ((allowed.has(otherLayer) || exception) && edge === undefined) continue;
    const why =
      edge?.why ??
      `${name} (layer ${layer}: ${layerInfo(layer).what}) may import only layers ${
        [...allowed].join(", ") || "none"
      }; ${other} is in layer ${otherLayer} (${layerInfo(otherLayer).what}).`;
    patterns.push({
      regex: `^${escape(other)}(/.*)?$`,
      message: `${why} The allowed graph is in tools/boundaries/src/boundaries.js.`,
    });
  }
  if (!test && layer !== "tool" && layer !== "testing") {
    for (const helper of testHelpers) {
      patterns.push({
        regex: helper.regex,
        message: `${helper.what} is test code: import it only from test files (${testFiles.join(", ")}), so production processes never load it.`,
      });
    }
  }
  // Tests may read their fixtures; the lib itself may not.
  for (const banned of test ? [] : (layerInfo(layer).bannedExternal ?? [])) {
    patterns.push({
      regex: `^${escape(banned.name).replace("\\*", ".*")}$`,
      ...(banned.allowTypeImports ? { allowTypeImports: true } : {}),
      message: `${name} (layer ${layer}: ${layerInfo(layer).what}) does no I/O: ${banned.name}${
        banned.allowTypeImports ? " (type imports are fine)" : ""
      } belongs in an adapter that passes the result in.`,
    });
  }
  return patterns;
}

/**
 * The layer of a package; throws for a package the graph does not know.
 * @param {string} name
 */
export function layerOf(name) {
  const layer = packageLayers[name];
  if (layer === undefined) {
    throw new Error(
      `package ${name} has no layer: add it to packageLayers in tools/boundaries/src/boundaries.js`,
    );
  }
  return layer;
}

/** @param {string} layer */
function layerInfo(layer) {
  const info = layers[layer];
  if (info === undefined)
    throw new Error(`unknown layer ${layer} in tools/boundaries/src/boundaries.js`);
  return info;
}

/**
 * ESLint flat-config blocks enforcing the graph, one pair (production, test code) per package.
 * @param {string} root the repository root
 */
export function boundaryConfigs(root) {
  const configs = [];
  for (const { name, dir } of workspacePackages(root)) {
    layerOf(name);
    /** @param {boolean} test */
    const rule = (test) => ["error", { patterns: restrictedPatterns(name, { test }) }];
    const testGlobs = testFiles.map((glob) => `${dir}/${glob}`);
    configs.push(
      {
        files: [`${dir}/**/*.ts`],
        ignores: testGlobs,
        rules: { "@typescript-eslint/no-restricted-imports": rule(false) },
      },
      { files: testGlobs, rules: { "@typescript-eslint/no-restricted-imports": rule(true) } },
    );
  }
  return configs;
}
