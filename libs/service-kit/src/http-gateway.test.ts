// The HTTP gateway as curl and browsers use it: Connect JSON unary calls, Connect server streams,
// the caller's token reaching the service, errors with their codes and problems, static files.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import {
  dagscheduler,
  DagSchedulerServiceService,
  pipelineregistry,
  PipelineRegistryServiceService,
} from "@odin/proto";
import { registryFake, schedulerFake, testTokenStore, TOKENS } from "./fixtures.js";
import { startHttpGateway, type HttpGateway } from "./http-gateway.js";
import { silentLogger } from "./logger.js";
import { startServer, type OdinServer } from "./server.js";

const LIST = "odin.pipelineregistry.v1.PipelineRegistryService/ListPipelines";
const WATCH = "odin.dagscheduler.v1.DagSchedulerService/WatchRun";

/** A Connect streaming request body: one enveloped JSON message. */
function envelope(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** The messages and the end-of-stream object of a Connect streaming response. */
function unenvelope(bytes: Buffer): { messages: unknown[]; end: unknown } {
  const messages: unknown[] = [];
  let end: unknown;
  for (let at = 0; at < bytes.length;) {
    const flags = bytes[at]!;
    const size = bytes.readUInt32BE(at + 1);
    const value: unknown = JSON.parse(bytes.subarray(at + 5, at + 5 + size).toString("utf8"));
    if (flags & 2) end = value;
    else messages.push(value);
    at += 5 + size;
  }
  return { messages, end };
}

describe("HTTP gateway: every RPC over HTTP, and the web UI's files", () => {
  let registry: OdinServer;
  let scheduler: OdinServer;
  let http: HttpGateway;
  let webRoot: string;
  let cancelled = 0;
  before(async () => {
    webRoot = await mkdtemp(join(tmpdir(), "odin-web-"));
    await mkdir(join(webRoot, "assets"));
    await writeFile(join(webRoot, "index.html"), "<!doctype html><title>Odin</title>");
    await writeFile(join(webRoot, "assets", "main.ABCD1234.js"), "console.log(1)");
    await writeFile(join(webRoot, "assets", "main.ABCD1234.js.gz"), gzipSync("console.log(1)"));
    registry = await startServer({
      name: "registry",
      host: "127.0.0.1",
      port: 0,
      auth: testTokenStore(),
      services: [registryFake()],
      logger: silentLogger,
    });
    scheduler = await startServer({
      name: "scheduler",
      host: "127.0.0.1",
      port: 0,
      auth: testTokenStore(),
      services: [schedulerFake(() => cancelled++)],
      logger: silentLogger,
    });
    http = await startHttpGateway({
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      staticRoot: webRoot,
      routes: [
        { address: registry.address, services: [PipelineRegistryServiceService] },
        { address: scheduler.address, services: [DagSchedulerServiceService] },
      ],
    });
  });
  after(async () => {
    await http.close();
    await registry.close(0);
    await scheduler.close(0);
    await rm(webRoot, { recursive: true, force: true });
  });

  const call = (path: string, body: unknown, token?: string) =>
    fetch(http.url + path, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
    });

  test("a JSON call reaches the service as the token's caller, as curl would make it", async () => {
    const res = await call(LIST, {}, TOKENS.viewer);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { commit: string; pipelines: { path: string }[] };
    assert.equal(body.commit, "vera/viewer");
    assert.equal(body.pipelines[0]?.path, "sst2");
  });

  test("the services' auth and errors come back as Connect errors with HTTP statuses", async () => {
    const anonymous = await call(LIST, {});
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { code: string }).code, "unauthenticated");

    const invalid = await call(LIST, { pathPrefix: "invalid" }, TOKENS.viewer);
    assert.equal(invalid.status, 400);
    const error = (await invalid.json()) as { code: string; message: string };
    assert.equal(error.code, "invalid_argument");
    assert.match(error.message, /sst2 is invalid/);
    // The problems trailer travels as a binary header, base64 (as Connect encodes -bin keys).
    const problems = JSON.parse(
      Buffer.from(invalid.headers.get("odin-problems-bin") ?? "", "base64").toString("utf8"),
    ) as { file: string; line: number; message: string }[];
    assert.deepEqual(
      problems.map((p) => `${p.file}:${p.line}: ${p.message}`),
      ["sst2/main.yml:3: image is required", "sst2/main.yml:9: unknown key 'tasks2'"],
    );

    const unknownMethod = await call("odin.pipelineregistry.v1.PipelineRegistryService/Nope", {});
    assert.equal(unknownMethod.status, 404);
  });

  test("binary callers (the web UI) get the services' messages, unary and streamed", async () => {
    const unary = await fetch(http.url + LIST, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${TOKENS.viewer}` },
      body: pipelineregistry.ListPipelinesRequest.encode({ commit: "", pathPrefix: "" }).finish(),
    });
    assert.equal(unary.status, 200);
    const listed = pipelineregistry.ListPipelinesResponse.decode(
      new Uint8Array(await unary.arrayBuffer()),
    );
    assert.equal(listed.commit, "vera/viewer");
    assert.equal(listed.pipelines[0]?.path, "sst2");

    const request = dagscheduler.WatchRunRequest.encode({
      runId: "count:3",
      taskStatesFirst: false,
      maxSnapshotTaskRuns: 0,
    }).finish();
    const head = Buffer.alloc(5);
    head.writeUInt32BE(request.length, 1);
    const streamed = await fetch(http.url + WATCH, {
      method: "POST",
      headers: {
        "content-type": "application/connect+proto",
        authorization: `Bearer ${TOKENS.viewer}`,
      },
      body: Buffer.concat([head, request]),
    });
    const bytes = Buffer.from(await streamed.arrayBuffer());
    const tasks: string[] = [];
    for (let at = 0; at < bytes.length;) {
      const size = bytes.readUInt32BE(at + 1);
      if ((bytes[at]! & 2) === 0) {
        const m = dagscheduler.WatchRunResponse.decode(bytes.subarray(at + 5, at + 5 + size));
        if (m.event?.$case === "taskRun") tasks.push(m.event.value.task);
      }
      at += 5 + size;
    }
    assert.deepEqual(tasks, ["task-0", "task-1", "task-2"]);
  });

  test("a server stream arrives as a Connect stream, message by message, with its end", async () => {
    const res = await fetch(http.url + WATCH, {
      method: "POST",
      headers: {
        "content-type": "application/connect+json",
        authorization: `Bearer ${TOKENS.viewer}`,
      },
      body: envelope({ runId: "count:3" }),
    });
    assert.equal(res.status, 200);
    const { messages, end } = unenvelope(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual(
      messages.map((m) => (m as { taskRun: { task: string } }).taskRun.task),
      ["task-0", "task-1", "task-2"],
    );
    assert.deepEqual(end, {});

    const failing = await fetch(http.url + WATCH, {
      method: "POST",
      headers: {
        "content-type": "application/connect+json",
        authorization: `Bearer ${TOKENS.viewer}`,
      },
      body: envelope({ runId: "fail" }),
    });
    const failed = unenvelope(Buffer.from(await failing.arrayBuffer()));
    assert.equal(failed.messages.length, 1);
    assert.equal((failed.end as { error: { code: string } }).error.code, "not_found");
  });

  test("a browser that goes away cancels the upstream stream", async () => {
    const abort = new AbortController();
    const res = await fetch(http.url + WATCH, {
      method: "POST",
      headers: {
        "content-type": "application/connect+json",
        authorization: `Bearer ${TOKENS.viewer}`,
      },
      body: envelope({ runId: "forever" }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    const before = cancelled;
    abort.abort();
    for (let i = 0; i < 200 && cancelled === before; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(cancelled, before + 1);
  });

  test("the UI's files: bundles as they are, deep links get index.html, nothing outside the root", async () => {
    const bundle = await fetch(http.url + "assets/main.ABCD1234.js");
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers.get("content-type") ?? "", /javascript/);
    assert.match(bundle.headers.get("cache-control") ?? "", /immutable/);
    assert.equal(await bundle.text(), "console.log(1)");
    // fetch asks for gzip and decompresses: the precompressed copy was sent.
    assert.equal(bundle.headers.get("content-encoding"), "gzip");
    const plain = await fetch(http.url + "assets/main.ABCD1234.js", {
      headers: { "accept-encoding": "identity" },
    });
    assert.equal(plain.headers.get("content-encoding"), null);
    assert.equal(await plain.text(), "console.log(1)");
    for (const path of ["", "runs/diamond-abc/tasks/left", "pipelines/alice/sst2"]) {
      const page = await fetch(http.url + path);
      assert.equal(page.status, 200, path);
      assert.match(await page.text(), /<title>Odin<\/title>/);
    }
    // fetch normalizes `..` itself; send the raw path as a hostile client would.
    const { request } = await import("node:http");
    const raw = await new Promise<string>((resolve, reject) => {
      const url = new URL(http.url);
      request({ host: url.hostname, port: url.port, path: "/..%2f..%2f..%2fetc/passwd" }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve(text));
      })
        .on("error", reject)
        .end();
    });
    assert.doesNotMatch(raw, /root:/);
  });
});
