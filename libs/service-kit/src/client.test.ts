// The kit's clients against its server over real gRPC on 127.0.0.1: retries on UNAVAILABLE,
// deadlines, streams, the "cannot reach" message, and TLS (certificates made here with openssl).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Client, type ServiceError, status } from "@grpc/grpc-js";
import { DagSchedulerServiceClient, PipelineRegistryServiceClient } from "@odin/proto";
import { type ClientOptions, createClient, serverStream, unary } from "./client.js";
import { describeGrpcError } from "./errors.js";
import {
  captureLogger,
  conflictCallsOf,
  freePort,
  registryFake,
  schedulerFake,
  testTokenStore,
  TOKENS,
} from "./fixtures.js";
import { type OdinServer, type ServerTlsOptions, startServer } from "./server.js";

const servers: OdinServer[] = [];
const clients: Client[] = [];
after(async () => {
  for (const client of clients) client.close();
  await Promise.all(servers.map((s) => s.close(500)));
});

async function serve(
  options: { port?: number; tls?: ServerTlsOptions; onCancelled?: () => void } = {},
) {
  const logs = captureLogger();
  const server = await startServer({
    name: "client-test",
    host: "127.0.0.1",
    port: options.port ?? 0,
    services: [registryFake(), schedulerFake(options.onCancelled)],
    auth: testTokenStore(),
    logger: logs.logger,
    ...(options.tls ? { tls: options.tls } : {}),
  });
  servers.push(server);
  return { server, logs };
}

function registry(options: ClientOptions): PipelineRegistryServiceClient {
  const client = createClient(PipelineRegistryServiceClient, options);
  clients.push(client);
  return client;
}

async function rejected(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  assert.fail("expected the call to fail");
}

const list = (pathPrefix = "") => ({ commit: "", pathPrefix });

test("a call retries UNAVAILABLE until a server that starts late answers", async () => {
  const port = await freePort();
  const client = registry({
    address: `127.0.0.1:${port}`,
    token: TOKENS.viewer,
    retries: 8,
    initialBackoffMs: 200,
    deadlineMs: 20_000,
  });
  const t0 = Date.now();
  const call = unary(client, "listPipelines", list());
  await sleep(400);
  await serve({ port });
  const response = await call;
  assert.equal(response.commit, "vera/viewer");
  assert.ok(Date.now() - t0 >= 400, "answered before the server existed");
});

test("a call that lost a compare-and-set (ABORTED) is retried and succeeds; without retries it fails", async () => {
  const { server } = await serve();
  const client = registry({ address: server.address, token: TOKENS.viewer });
  const response = await unary(client, "listPipelines", list("conflict:a"));
  assert.equal(response.commit, "vera/viewer");
  assert.equal(conflictCallsOf("conflict:a"), 2);

  const once = registry({ address: server.address, token: TOKENS.viewer, retries: 0 });
  const err = await rejected(unary(once, "listPipelines", list("conflict:b")));
  assert.equal(err.code, status.ABORTED);
  assert.equal(err.details, "conflict:b changed since revision 3");
  assert.equal(conflictCallsOf("conflict:b"), 1);
});

// The watchdog timeouts below turn a regression (a call that waits) into a failure, not a hang;
// nothing here measures how fast a busy machine answers.
test(
  "without retries an unreachable server fails at once with a message saying what to do",
  { timeout: 120_000 },
  async () => {
    const port = await freePort();
    const client = registry({
      address: `127.0.0.1:${port}`,
      token: TOKENS.viewer,
      retries: 0,
      deadlineMs: 600_000,
    });
    const err = await rejected(unary(client, "listPipelines", list()));
    assert.equal(err.code, status.UNAVAILABLE);
    assert.equal(
      describeGrpcError(err),
      `cannot reach odin at 127.0.0.1:${port}: connection refused — is the server running? set --server / ODIN_SERVER`,
    );
  },
);

test(
  "unary calls get the client's default deadline, and a per-call deadline overrides it",
  { timeout: 120_000 },
  async () => {
    const { server, logs } = await serve();
    const client = registry({ address: server.address, token: TOKENS.viewer, deadlineMs: 300 });
    // The server would take ten minutes: only the 300 ms default deadline ends this call.
    const err = await rejected(unary(client, "listPipelines", list("slow:600000")));
    assert.equal(err.code, status.DEADLINE_EXCEEDED);
    assert.match(describeGrpcError(err), /did not answer in time/);

    // An 800 ms answer outlives the 300 ms default: it arrives only under the per-call deadline.
    const late = await unary(client, "listPipelines", list("slow:800"), { deadlineMs: 600_000 });
    assert.equal(late.commit, "vera/viewer");

    let codes: unknown[] = [];
    while (codes.length < 2) {
      await sleep(10);
      codes = logs
        .records()
        .filter((r) => r["msg"] === "rpc")
        .map((r) => r["code"]);
    }
    assert.deepEqual(codes, ["DEADLINE_EXCEEDED", "OK"]);
  },
);

test("a stream outlives the unary deadline; leaving the loop cancels it on the server", async () => {
  let cancelled!: () => void;
  const serverSawCancel = new Promise<void>((resolve) => (cancelled = resolve));
  const { server } = await serve({ onCancelled: () => cancelled() });
  const client = createClient(DagSchedulerServiceClient, {
    address: server.address,
    token: TOKENS.viewer,
    deadlineMs: 100,
  });
  clients.push(client);
  const t0 = Date.now();
  let received = 0;
  // Read past four unary deadlines and at least five events, however slowly they come.
  for await (const _event of serverStream(client, "watchRun", {
    runId: "forever",
    taskStatesFirst: false,
    maxSnapshotTaskRuns: 0,
  })) {
    received++;
    if (Date.now() - t0 > 400 && received >= 5) break;
  }
  assert.ok(received >= 5, `only ${received} events`);
  await serverSawCancel;
});

function haveOpenssl(): boolean {
  const result = spawnSync("openssl", ["version"], { stdio: "ignore" });
  return result.error === undefined && result.status === 0;
}

test(
  "TLS: a client trusting the CA gets through; plaintext and missing client certificates do not",
  {
    skip: haveOpenssl() ? false : "the openssl CLI is not installed, so no certificate can be made",
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "odin-tls-"));
    try {
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-days",
          "1",
          "-keyout",
          join(dir, "key.pem"),
          "-out",
          join(dir, "cert.pem"),
          "-subj",
          "/CN=localhost",
          "-addext",
          "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        { stdio: "ignore" },
      );
      const cert = readFileSync(join(dir, "cert.pem"));
      const key = readFileSync(join(dir, "key.pem"));

      // Checked against the certificate's DNS:localhost (TLS server names cannot be IP addresses).
      const channelOptions = { "grpc.ssl_target_name_override": "localhost" };
      const { server } = await serve({ tls: { cert, key } });
      const secure = registry({
        address: server.address,
        token: TOKENS.viewer,
        tls: { ca: cert },
        retries: 0,
        channelOptions,
      });
      assert.equal((await unary(secure, "listPipelines", list())).commit, "vera/viewer");
      const plain = registry({
        address: server.address,
        token: TOKENS.viewer,
        retries: 0,
        deadlineMs: 2000,
      });
      assert.equal(
        (await rejected(unary(plain, "listPipelines", list()))).code,
        status.UNAVAILABLE,
      );

      // Mutual TLS: the self-signed certificate is its own CA, so it also serves as the client's.
      const { server: mutual } = await serve({ tls: { cert, key, ca: cert } });
      const withCert = registry({
        address: mutual.address,
        token: TOKENS.viewer,
        tls: { ca: cert, cert, key },
        retries: 0,
        channelOptions,
      });
      assert.equal((await unary(withCert, "listPipelines", list())).commit, "vera/viewer");
      const withoutCert = registry({
        address: mutual.address,
        token: TOKENS.viewer,
        tls: { ca: cert },
        retries: 0,
        deadlineMs: 2000,
        channelOptions,
      });
      assert.equal(
        (await rejected(unary(withoutCert, "listPipelines", list()))).code,
        status.UNAVAILABLE,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
