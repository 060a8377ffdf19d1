// The dependency graph of boundaries.js is what lint enforces: an import across a boundary fails
// `eslint` with the real eslint.config.js, the imports the graph allows pass, and so does the tree.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { packageLayers, restrictedPatterns, workspacePackages } from "./boundaries.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const ruleId = "@typescript-eslint/no-restricted-imports";

// The repository's own config; type information is not needed for import rules, and only the
// boundary rule runs, so the whole tree lints in seconds.
const eslint = new ESLint({
  cwd: root,
  overrideConfig: [tseslint.configs.disableTypeChecked],
  ruleFilter: ({ ruleId: id }) => id === ruleId,
});

/** The boundary errors lint reports for `code` placed at `file` (relative to the root). */
async function boundaryErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  assert.ok(result, `no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `${file} did not parse`);
  return result.messages.filter((m) => m.ruleId === ruleId).map((m) => m.message);
}

describe("forbidden imports fail lint", () => {
  const cases: { what: string; file: string; code: string; says: RegExp }[] = [
    {
      what: "a pure lib imports service-kit",
      file: "libs/dag/src/probe.ts",
      code: `import { startServer } from "@odin/service-kit";\nexport const s = startServer;\n`,
      says: /@odin\/dag \(layer pure.*@odin\/service-kit is in layer kit/,
    },
    {
      what: "a pure lib imports a port",
      file: "libs/pipeline-spec/src/probe.ts",
      code: `import { NatsEventBus } from "@odin/events";\nexport const b = NatsEventBus;\n`,
      says: /@odin\/events is in layer port/,
    },
    {
      what: "a pure lib imports a port's types",
      file: "libs/k8s-manifests/src/probe.ts",
      code: `import type { KeyValueStore } from "@odin/run-store";\nexport type S = KeyValueStore;\n`,
      says: /@odin\/run-store is in layer port/,
    },
    {
      what: "the contracts import service-kit",
      file: "libs/proto/src/probe.ts",
      code: `export { startServer } from "@odin/service-kit";\n`,
      says: /@odin\/proto \(layer pure/,
    },
    {
      what: "a pure lib reads files",
      file: "libs/pipeline-spec/src/probe.ts",
      code: `import { readFileSync } from "node:fs";\nexport const r = readFileSync;\n`,
      says: /does no I\/O: node:fs belongs in an adapter/,
    },
    {
      what: "a pure lib calls the Kubernetes client",
      file: "libs/k8s-manifests/src/probe.ts",
      code: `import { KubeConfig } from "@kubernetes/client-node";\nexport const k = KubeConfig;\n`,
      says: /@kubernetes\/client-node \(type imports are fine\)/,
    },
    {
      what: "an app imports another app",
      file: "apps/gateway/src/probe.ts",
      code: `import "@odin/dag-scheduler";\n`,
      says: /@odin\/gateway \(layer app.*@odin\/dag-scheduler is in layer app/,
    },
    {
      what: "a service imports another service",
      file: "libs/scheduler/src/probe.ts",
      code: `import { LocalBackend } from "@odin/launcher";\nexport const l = LocalBackend;\n`,
      says: /@odin\/launcher is in layer service/,
    },
    {
      what: "the scheduler imports k8s-manifests",
      file: "libs/scheduler/src/probe.ts",
      code: `import * as m from "@odin/k8s-manifests";\nexport const x = m;\n`,
      says: /only the launcher knows Kubernetes objects/,
    },
    {
      what: "a service lib imports @odin/testing outside test files",
      file: "libs/launcher/src/kubernetes/probe.ts",
      code: `import { startNats } from "@odin/testing";\nexport const n = startNats;\n`,
      says: /@odin\/testing is in layer testing/,
    },
    {
      what: "an app imports a /testing entry point",
      file: "apps/k8s-launcher/src/probe.ts",
      code: `import { taskWithDefaults } from "@odin/launcher/testing";\nexport const t = taskWithDefaults;\n`,
      says: /a package's \/testing entry point is test code/,
    },
    {
      what: "a lib imports the test runner outside test files",
      file: "libs/run-store/src/probe.ts",
      code: `import { test } from "node:test";\nexport const t = test;\n`,
      says: /node:test is test code/,
    },
    {
      what: "a service lib imports kube-sim",
      file: "libs/launcher/src/probe.ts",
      code: `import { startKubeSim } from "@odin/kube-sim";\nexport const s = startKubeSim;\n`,
      says: /@odin\/kube-sim is in layer simulator/,
    },
    {
      what: "a lib imports a tool",
      file: "libs/embedded/src/probe.ts",
      code: `import "@odin/bench";\n`,
      says: /@odin\/bench is in layer tool/,
    },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      const errors = await boundaryErrors(c.file, c.code);
      assert.equal(errors.length, 1, `expected one boundary error, got ${JSON.stringify(errors)}`);
      assert.match(errors[0]!, c.says);
      assert.match(
        errors[0]!,
        /tools\/boundaries\/src\/boundaries\.js|import it only from test files|belongs in an adapter/,
      );
    });
  }
});

describe("imports the graph allows pass lint", () => {
  const cases: { what: string; file: string; code: string }[] = [
    {
      what: "a service's test file imports test helpers",
      file: "libs/launcher/src/kubernetes/probe.test.ts",
      code: `import { test } from "node:test";\nimport { startKubeSim, startNats } from "@odin/testing";\nexport { test, startKubeSim, startNats };\n`,
    },
    {
      what: "a /testing entry point imports test helpers",
      file: "libs/launcher/src/testing/probe.ts",
      code: `import { describe } from "node:test";\nimport { startNats } from "@odin/testing";\nexport { describe, startNats };\n`,
    },
    {
      what: "an app's test imports a /testing entry point",
      file: "apps/k8s-launcher/src/probe.test.ts",
      code: `import { taskWithDefaults } from "@odin/launcher/testing";\nexport const t = taskWithDefaults;\n`,
    },
    {
      what: "the CLI runs kube-sim",
      file: "apps/cli/src/probe.ts",
      code: `import { runKubeSimCli } from "@odin/kube-sim";\nexport const r = runKubeSimCli;\n`,
    },
    {
      what: "a pure lib imports a pure lib and Kubernetes types",
      file: "libs/k8s-manifests/src/probe.ts",
      code: `import type { V1Pod } from "@kubernetes/client-node";\nimport { taskId } from "@odin/pipeline-spec";\nexport type P = V1Pod;\nexport const t = taskId;\n`,
    },
    {
      what: "a service imports pure libs, ports and the kit",
      file: "libs/scheduler/src/probe.ts",
      code: `import { RunEngine } from "@odin/dag";\nimport { subjects } from "@odin/events";\nimport { runKeys } from "@odin/run-store";\nimport { startServer } from "@odin/service-kit";\nexport { RunEngine, subjects, runKeys, startServer };\n`,
    },
    {
      what: "a benchmark imports apps' libs and test helpers",
      file: "tools/bench/src/probe.ts",
      code: `import { startNats } from "@odin/testing";\nimport { LocalBackend } from "@odin/launcher";\nexport { startNats, LocalBackend };\n`,
    },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      assert.deepEqual(await boundaryErrors(c.file, c.code), []);
    });
  }
});

test("the repository's own code keeps inside the graph", async () => {
  const results = await eslint.lintFiles(["libs", "apps", "tools", "tests"]);
  assert.ok(results.length > 100, `only ${results.length} files linted`);
  const errors = results.flatMap((r) =>
    r.messages.map((m) => `${r.filePath.slice(root.length)}:${m.line}:${m.column} ${m.message}`),
  );
  assert.deepEqual(errors, []);
});

test("every workspace package has a layer, and declares only dependencies its layer allows", () => {
  const packages = workspacePackages(root);
  assert.ok(packages.length > 10);
  for (const { name, dir, manifest } of packages) {
    assert.ok(name in packageLayers, `${name} (${dir}) has no layer in boundaries.js`);
    const check = (deps: Record<string, string> | undefined, test: boolean) => {
      const patterns = restrictedPatterns(name, { test });
      for (const dep of Object.keys(deps ?? {})) {
        const hit = patterns.find((p) => !p.allowTypeImports && new RegExp(p.regex, "u").test(dep));
        assert.equal(hit, undefined, `${dir}/package.json depends on ${dep}: ${hit?.message}`);
      }
    };
    check(manifest.dependencies, false);
    check(manifest.devDependencies, true);
  }
});
