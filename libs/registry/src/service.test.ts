// GetPipeline's chosen few tasks (what the web UI's task panel shows), GetPipelineGraph (what it
// draws a large run from) and the schedules ListPipelines gives the schedulers, over real gRPC.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { pipelineregistry, PipelineRegistryServiceClient } from "@odin/proto";
import { createClient, silentLogger, startServer, unary, type OdinServer } from "@odin/service-kit";
import { PipelineCatalog, type FileSource, type ListedFile } from "./catalog.js";
import { pipelineRegistryService } from "./service.js";

const head = "0123456789abcdef0123456789abcdef01234567";
const mainYml = `tasks:
- {name: prepare, image: busybox, command: [sh, -c, "echo hi"], env: {A: "1"}}
- {name: left, image: busybox, command: [true], depends: prepare}
- {name: right, image: busybox, command: [true], depends: prepare}
- {name: report, image: busybox, command: [true], depends: [left, right]}
`;

const scheduledYml = `name: scheduled
notify: {webhook: team}
schedules:
  nightly:
    cron: "0 2 * * *"
    notify:
    - {webhook: {secret: oncall}, on: [failed, cancelled]}
    - webhook: team
tasks:
- {name: a, image: busybox, command: [true]}
`;
const files: Record<string, string> = {
  "diamond/main.yml": mainYml,
  "scheduled/main.yml": scheduledYml,
};

class OneCommit implements FileSource {
  currentCommit(): Promise<string> {
    return Promise.resolve(head);
  }
  listFiles(): Promise<{ commit: string; files: ListedFile[] }> {
    return Promise.resolve({
      commit: head,
      files: Object.entries(files).map(([path, text]) => ({
        path,
        size: text.length,
        symlink: false,
      })),
    });
  }
  readFiles(_commit: string, paths: readonly string[]) {
    return Promise.resolve(
      paths.map((path) => ({ path, content: Buffer.from(files[path] ?? "") })),
    );
  }
}

let server: OdinServer;
let client: PipelineRegistryServiceClient;
before(async () => {
  server = await startServer({
    name: "registry-views",
    host: "127.0.0.1",
    port: 0,
    services: [pipelineRegistryService(new PipelineCatalog(new OneCommit()))],
    auth: "off",
    logger: silentLogger,
  });
  client = createClient(PipelineRegistryServiceClient, { address: server.address, retries: 0 });
});
after(async () => {
  client.close();
  await server.close();
});

const get = (request: Partial<pipelineregistry.GetPipelineRequest>) =>
  unary(
    client,
    "getPipeline",
    pipelineregistry.GetPipelineRequest.fromPartial({ path: "diamond", commit: head, ...request }),
  );

test("GetPipeline naming no task returns every field of every task", async () => {
  const { pipeline } = await get({});
  assert.deepEqual(
    pipeline?.tasks.map((t) => t.name),
    ["prepare", "left", "right", "report"],
  );
  assert.equal(pipeline?.tasks[0]?.image, "busybox");
  assert.deepEqual(pipeline?.tasks[0]?.env, { A: "1" });
});

test("GetPipelineGraph has the names and each task's dependencies as positions", async () => {
  const graph = await unary(client, "getPipelineGraph", { path: "diamond", commit: head });
  assert.equal(graph.commit, head);
  assert.deepEqual(graph.tasks, ["prepare", "left", "right", "report"]);
  assert.deepEqual(graph.dependsCounts, [0, 1, 1, 2]);
  assert.deepEqual(graph.depends, [0, 0, 1, 2]);
  assert.deepEqual(graph.problems, []);
  // Asked again, the same answer (built once per commit).
  assert.deepEqual(await unary(client, "getPipelineGraph", { path: "diamond", commit: "" }), graph);
});

test("GetPipelineGraph of a directory without main.yml is NOT_FOUND", async () => {
  await assert.rejects(unary(client, "getPipelineGraph", { path: "nosuch", commit: head }), {
    code: status.NOT_FOUND,
  });
});

test("tasks names the tasks wanted, in pipeline order; unknown names are left out", async () => {
  const { pipeline } = await get({ tasks: ["report", "nosuch", "prepare"] });
  assert.deepEqual(
    pipeline?.tasks.map((t) => t.name),
    ["prepare", "report"],
  );
  assert.deepEqual(pipeline?.tasks[0]?.command, ["sh", "-c", "echo hi"]);
});

test("ListPipelines gives each declared schedule's own webhooks, states lower case", async () => {
  const { pipelines } = await unary(client, "listPipelines", { commit: head, pathPrefix: "" });
  const scheduled = pipelines.find((p) => p.path === "scheduled");
  assert.equal(scheduled?.valid, true, JSON.stringify(scheduled?.problems));
  assert.deepEqual(
    scheduled?.schedules.map((d) => [d.name, d.notify]),
    [
      [
        "nightly",
        [
          { webhookSecret: "oncall", on: ["failed", "cancelled"] },
          { webhookSecret: "team", on: ["succeeded", "failed", "cancelled"] },
        ],
      ],
    ],
  );
});
