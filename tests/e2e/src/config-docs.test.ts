// docs/configuration.md documents exactly the variables the apps read, with their defaults.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { checkConfigDocs, serviceKitConfigSchema, type ConfigSchema } from "@odin/service-kit";
import { repoRoot } from "@odin/test-stack";

test("docs/configuration.md and the apps' configuration schemas agree", async () => {
  const schemas: ConfigSchema[] = [serviceKitConfigSchema];
  const apps = readdirSync(join(repoRoot, "apps"));
  for (const app of apps) {
    const config = join(repoRoot, "apps", app, "dist", "config.js");
    if (!existsSync(config)) continue;
    const mod = (await import(pathToFileURL(config).href)) as Record<string, ConfigSchema>;
    schemas.push(...Object.values(mod));
  }
  assert.ok(schemas.length >= 4, "every app's schema was found");
  const problems = checkConfigDocs(
    readFileSync(join(repoRoot, "docs", "configuration.md"), "utf8"),
    schemas,
  );
  assert.deepEqual(problems, []);
});
