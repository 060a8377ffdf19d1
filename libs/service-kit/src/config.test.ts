// Configuration: typed reading with one line per bad variable, the kit's server options, and the
// check that keeps docs/configuration.md in step with the schemas.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkConfigDocs,
  ConfigError,
  type ConfigSchema,
  readConfig,
  renderConfigTable,
  serverOptionsFromConfig,
  serviceKitConfigSchema,
} from "./config.js";

/** The error `fn` throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail("expected an error");
}

const appSchema = {
  rootPath: {
    name: "ROOT_PATH",
    type: "string",
    required: true,
    description: "Where checkouts live.",
  },
  fetchSeconds: {
    name: "ODIN_FETCH_INTERVAL_SECONDS",
    type: "int",
    min: 1,
    default: 60,
    description: "Fetch interval.",
  },
  gitPassword: {
    name: "ODIN_GIT_PASSWORD",
    type: "string",
    secret: true,
    description: "Git password.",
  },
  dryRun: { name: "ODIN_DRY_RUN", type: "boolean", default: false, description: "Do nothing." },
  retries: { name: "ODIN_RETRIES", type: "int", secret: true, description: "Secret number." },
} as const satisfies ConfigSchema;

test("readConfig applies defaults and parses types; empty values count as unset", () => {
  const config = readConfig(
    {
      ODIN_GRPC_PORT: "7000",
      ODIN_AUTH: "off",
      ODIN_TLS_CA: "",
      ROOT_PATH: "/data",
      ODIN_DRY_RUN: "yes",
    },
    { ...serviceKitConfigSchema, ...appSchema },
  );
  const port: number = config.grpcPort;
  const auth: "on" | "off" = config.auth;
  const tokensFile: string | undefined = config.tokensFile;
  assert.equal(port, 7000);
  assert.equal(auth, "off");
  assert.equal(tokensFile, undefined);
  assert.equal(config.tlsCa, undefined);
  assert.equal(config.grpcHost, "0.0.0.0");
  assert.equal(config.logLevel, "info");
  assert.equal(config.rootPath, "/data");
  assert.equal(config.fetchSeconds, 60);
  assert.equal(config.dryRun, true);
});

test("readConfig reports every bad variable on its own line and hides secret values", () => {
  const err = thrown(() =>
    readConfig(
      {
        ODIN_GRPC_PORT: "70000",
        ODIN_METRICS_PORT: "abc",
        ODIN_AUTH: "maybe",
        ODIN_LOG_LEVEL: "verbose",
        ODIN_FETCH_INTERVAL_SECONDS: "0",
        ODIN_DRY_RUN: "sure",
        ODIN_RETRIES: "hunter2",
      },
      { ...serviceKitConfigSchema, ...appSchema },
    ),
  );
  assert.ok(err instanceof ConfigError);
  assert.deepEqual(err.problems, [
    'ODIN_GRPC_PORT: expected a whole number from 0 to 65535, got "70000"',
    'ODIN_METRICS_PORT: expected a whole number, got "abc"',
    'ODIN_AUTH: expected one of on, off, got "maybe"',
    'ODIN_LOG_LEVEL: expected one of debug, info, warn, error, got "verbose"',
    "ROOT_PATH: required; Where checkouts live.",
    'ODIN_FETCH_INTERVAL_SECONDS: expected a whole number of at least 1, got "0"',
    'ODIN_DRY_RUN: expected true or false, got "sure"',
    "ODIN_RETRIES: expected a whole number, got (value hidden)",
  ]);
  assert.equal(err.message.split("\n").length, 9);
  assert.ok(!err.message.includes("hunter2"));
});

test("serverOptionsFromConfig needs a tokens file while auth is on, and both TLS files", async () => {
  const missing = await serverOptionsFromConfig(readConfig({}, serviceKitConfigSchema)).then(
    () => assert.fail("expected a ConfigError"),
    (err: unknown) => err as ConfigError,
  );
  assert.ok(missing instanceof ConfigError);
  assert.match(missing.problems[0] ?? "", /^ODIN_TOKENS_FILE: required while ODIN_AUTH=on/);

  const halfTls = await serverOptionsFromConfig(
    readConfig({ ODIN_AUTH: "off", ODIN_TLS_CERT: "/x/cert.pem" }, serviceKitConfigSchema),
  ).catch((err: unknown) => err as ConfigError);
  assert.ok(halfTls instanceof ConfigError);
  assert.deepEqual(halfTls.problems, [
    "ODIN_TLS_CERT, ODIN_TLS_KEY: set both to serve TLS, or neither",
  ]);
});

test("serverOptionsFromConfig reads the tokens and TLS files into server options", async () => {
  const dir = mkdtempSync(join(tmpdir(), "odin-config-"));
  try {
    const tokens = join(dir, "tokens.json");
    writeFileSync(
      tokens,
      JSON.stringify({ tokens: [{ token: "t-123456789abcdef", subject: "a", role: "admin" }] }),
    );
    writeFileSync(join(dir, "cert.pem"), "CERT");
    writeFileSync(join(dir, "key.pem"), "KEY");
    const options = await serverOptionsFromConfig(
      readConfig(
        {
          ODIN_TOKENS_FILE: tokens,
          ODIN_TLS_CERT: join(dir, "cert.pem"),
          ODIN_TLS_KEY: join(dir, "key.pem"),
          ODIN_METRICS_PORT: "0",
          ODIN_GRPC_HOST: "127.0.0.1",
        },
        serviceKitConfigSchema,
      ),
    );
    assert.ok(options.auth !== "off" && options.auth.size === 1);
    assert.equal(options.tls?.cert.toString(), "CERT");
    assert.equal(options.tls?.ca, undefined);
    assert.equal(options.metrics, undefined, "port 0 disables metrics");
    assert.equal(options.host, "127.0.0.1");
    assert.equal(options.port, 50051);

    const unreadable = await serverOptionsFromConfig(
      readConfig({ ODIN_TOKENS_FILE: join(dir, "nope.json") }, serviceKitConfigSchema),
    ).catch((err: unknown) => err as ConfigError);
    assert.ok(unreadable instanceof ConfigError);
    assert.match(
      unreadable.problems[0] ?? "",
      /ODIN_TOKENS_FILE: .*nope\.json: cannot read the tokens file \(ENOENT\)/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("docs/configuration.md documents every service-kit variable with its default", () => {
  const docs = readFileSync(new URL("../../../docs/configuration.md", import.meta.url), "utf8");
  assert.deepEqual(checkConfigDocs(docs, [serviceKitConfigSchema], { allowUndeclared: true }), []);
});

test("checkConfigDocs finds undocumented, stale and wrongly defaulted variables", () => {
  const schema = {
    port: { name: "ODIN_X_PORT", type: "int", default: 8080, description: "Port." },
    dir: { name: "ODIN_X_DIR", type: "string", description: "Dir." },
    mode: {
      name: "ODIN_X_MODE",
      type: "enum",
      values: ["a", "b"],
      default: "a",
      description: "Mode.",
    },
  } as const satisfies ConfigSchema;
  assert.deepEqual(checkConfigDocs(renderConfigTable(schema), [schema]), []);
  const markdown = [
    "| Variable | Type | Default | Description |",
    "|---|---|---|---|",
    "| `ODIN_X_PORT` | integer | `9090` | Port. |",
    "| `ODIN_X_MODE` | a \\| b | `a` | Mode. |",
    "| `ODIN_X_OLD` | string | — | Gone. |",
  ].join("\n");
  assert.deepEqual(checkConfigDocs(markdown, [schema]), [
    "ODIN_X_PORT: documented default `9090` but the code says `8080`",
    "ODIN_X_DIR: declared in code but not documented (add a table row for it)",
    "ODIN_X_OLD: documented but no schema declares it (remove the row or declare it)",
  ]);
});
