// The registry's RPCs under bad input, over real gRPC: generated and mutated main.yml files through
// ValidatePipeline (bounded by count), then invalid commit ids, oversized messages and
// path-traversal names on every RPC. Each gets a verdict or a clear INVALID_ARGUMENT /
// RESOURCE_EXHAUSTED / NOT_FOUND — never INTERNAL, a hang or a read outside the repository.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { status, type ServiceError } from "@grpc/grpc-js";
import { PipelineRegistryServiceClient } from "@odin/proto";
import { createClient, silentLogger, startServer, unary, type OdinServer } from "@odin/service-kit";
import { PipelineCatalog, type FileSource, type ListedFile } from "./catalog.js";
import { pipelineRegistryService } from "./service.js";

const count = Number(process.env["ODIN_FUZZ_COUNT"] ?? 1000);
const head = "3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e";

/** One commit in memory; records every path it was asked to read. */
class MemoryRepo implements FileSource {
  readonly read: string[] = [];
  readonly files: Record<string, string> = {
    "sst2/main.yml": "tasks:\n- {name: a, image: i, command: c}\n",
  };
  currentCommit(): Promise<string> {
    return Promise.resolve(head);
  }
  listFiles(commit?: string): Promise<{ commit: string; files: ListedFile[] }> {
    if (commit !== undefined && commit !== head) return Promise.reject(new Error("unknown commit"));
    const files = Object.entries(this.files).map(([path, text]) => ({
      path,
      size: text.length,
      symlink: false,
    }));
    return Promise.resolve({ commit: head, files });
  }
  readFiles(_commit: string, paths: readonly string[]) {
    this.read.push(...paths);
    return Promise.resolve(
      paths.map((path) => ({ path, content: Buffer.from(this.files[path]!) })),
    );
  }
}

let server: OdinServer;
let client: PipelineRegistryServiceClient;
const repo = new MemoryRepo();
const maxMessageBytes = 1024 * 1024;

before(async () => {
  server = await startServer({
    name: "registry-fuzz",
    host: "127.0.0.1",
    port: 0,
    services: [pipelineRegistryService(new PipelineCatalog(repo))],
    auth: "off",
    logger: silentLogger,
    maxMessageBytes,
  });
  client = createClient(PipelineRegistryServiceClient, {
    address: server.address,
    retries: 0,
    deadlineMs: 120_000,
    maxMessageBytes: 4 * maxMessageBytes,
  });
});
after(async () => {
  client.close();
  await server.close();
});

function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pieces = [
  "tasks:\n",
  "- name: a\n",
  "  image: i\n",
  "  command: c\n",
  "  depends: b\n",
  "- {name: b, image: i, command: c}\n",
  "&x ",
  "*x",
  "<<: *x\n",
  "[",
  "{",
  ":",
  "\t",
  "\u0000",
  "name: ../../etc\n",
  "  mounts: {path: /d, claim: ../x}\n",
  "  resource_type: ElasticJob\n",
  "  num_workers: 100000\n",
  "- [[[[[[[[[[[[[[[[[[[[\n",
];

function document(rand: () => number): string {
  // A valid start, then (mostly) random pieces: some stay valid, most become invalid.
  let text = "tasks:\n";
  const tasks = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < tasks; i++) text += `- {name: t${i}, image: i, command: c}\n`;
  const n = rand() < 0.3 ? 0 : 1 + Math.floor(rand() * 12);
  for (let i = 0; i < n; i++) text += pieces[Math.floor(rand() * pieces.length)]!;
  return text;
}

async function code(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
    return { code: status.OK, details: "" };
  } catch (error) {
    const e = error as ServiceError;
    return { code: e.code, details: e.details };
  }
}

test(`fuzz: ${count} generated main.yml files through ValidatePipeline get a structured verdict`, async () => {
  const rand = prng(7);
  let refused = 0;
  for (let i = 0; i < count; i++) {
    const text = document(rand);
    const response = await unary(client, "validatePipeline", {
      path: "fuzz",
      files: [{ path: "main.yml", content: Buffer.from(text) }],
    });
    const label = `document ${i}: ${JSON.stringify(text)}`;
    if (!response.valid) {
      refused++;
      assert.ok(response.problems.length > 0, label);
    }
    for (const p of response.problems) {
      assert.equal(p.file, "fuzz/main.yml", label);
      assert.ok(p.line >= 1 && p.column >= 1, `${label}: ${p.line}:${p.column}`);
      assert.ok(p.message.length > 0 && !/\n\s+at /.test(p.message), label);
    }
  }
  console.log(`registry fuzz: ${count} documents, ${refused} refused`);
  assert.ok(refused > 0 && refused < count, `${refused} of ${count} refused`);
});

test("invalid commit ids, traversal paths and oversized messages get clear errors on every RPC", async () => {
  const badCommits = ["HEAD", "../../etc/passwd", "3f2c1e0", "z".repeat(40), "x".repeat(100_000)];
  const badPaths = ["../etc", "/etc/passwd", "a/../../b", ".git/config", "sst2/../../x"];
  const cases: [string, () => Promise<unknown>, number, RegExp][] = [];
  for (const commit of badCommits) {
    cases.push([
      `ListPipelines commit ${commit.slice(0, 20)}`,
      () => unary(client, "listPipelines", { commit, pathPrefix: "" }),
      status.INVALID_ARGUMENT,
      /not a full commit id/,
    ]);
    cases.push([
      `GetPipeline commit ${commit.slice(0, 20)}`,
      () => unary(client, "getPipeline", { path: "sst2", commit, tasks: [] }),
      status.INVALID_ARGUMENT,
      /not a full commit id/,
    ]);
  }
  for (const path of badPaths) {
    cases.push([
      `ListPipelines prefix ${path}`,
      () => unary(client, "listPipelines", { commit: "", pathPrefix: path }),
      status.INVALID_ARGUMENT,
      /stay inside/,
    ]);
    cases.push([
      `GetPipeline ${path}`,
      () => unary(client, "getPipeline", { path, commit: "", tasks: [] }),
      status.INVALID_ARGUMENT,
      /stay inside/,
    ]);
    cases.push([
      `ValidatePipeline ${path}`,
      () => unary(client, "validatePipeline", { path, files: [] }),
      status.INVALID_ARGUMENT,
      /stay inside/,
    ]);
    cases.push([
      `ValidatePipeline file ${path}`,
      () =>
        unary(client, "validatePipeline", {
          path: "ok",
          files: [
            { path: "main.yml", content: Buffer.from("tasks: []\n") },
            { path, content: Buffer.from("x") },
          ],
        }),
      status.INVALID_ARGUMENT,
      /stay inside/,
    ]);
  }
  const huge = Buffer.alloc(2 * maxMessageBytes, "a");
  cases.push([
    "ValidatePipeline oversized",
    () =>
      unary(client, "validatePipeline", {
        path: "big",
        files: [{ path: "main.yml", content: huge }],
      }),
    status.RESOURCE_EXHAUSTED,
    /./,
  ]);
  cases.push([
    "GetPipeline unknown",
    () => unary(client, "getPipeline", { path: "nosuch", commit: "", tasks: [] }),
    status.NOT_FOUND,
    /no pipeline "nosuch"/,
  ]);
  for (const [label, call, expected, message] of cases) {
    const got = await code(call());
    assert.equal(status[got.code], status[expected], `${label}: ${got.details}`);
    assert.match(got.details, message, label);
    assert.doesNotMatch(got.details, /\n\s+at /, `${label}: a stack trace`);
  }
  assert.ok(
    repo.read.every((p) => !p.includes("..") && !p.startsWith("/") && !p.startsWith(".git")),
    `read ${repo.read.join(", ")}`,
  );
});
