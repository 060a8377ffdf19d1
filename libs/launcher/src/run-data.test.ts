// ListRunFiles / DownloadRunFiles / ListGpuNodes (local backend) over loopback gRPC, on real files
// in a temporary DATA_PATH.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { K8sLauncherServiceClient, type k8slauncher } from "@odin/proto";
import {
  createClient,
  serverStream,
  silentLogger,
  startServer,
  unary,
  type OdinServer,
} from "@odin/service-kit";
import { LocalBackend } from "./local/local-backend.js";
import { k8sLauncherService } from "./service.js";

// gRPC status codes (grpc-js is the kit's dependency, not this package's).
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const RESOURCE_EXHAUSTED = 8;

describe("run data over gRPC", () => {
  let dir: string;
  let server: OdinServer;
  let client: K8sLauncherServiceClient;
  const runId = "sst2-ab12cd34";
  const big = "x".repeat(200_000);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "odin-run-data-"));
    const data = join(dir, "data");
    const run = join(data, runId);
    await mkdir(join(run, "train", "ckpt"), { recursive: true });
    await writeFile(join(run, "train", "metrics.json"), '{"acc": 0.9}\n');
    await writeFile(join(run, "train", "ckpt", "model.bin"), big);
    await writeFile(join(dir, "secret.txt"), "not the run's");
    await mkdir(join(data, "other-run"), { recursive: true });
    await writeFile(join(data, "other-run", "x.txt"), "another run's");
    await symlink(join(dir, "secret.txt"), join(run, "leak"));
    await mkdir(join(run, "links"));
    await symlink(join(dir, "secret.txt"), join(run, "links", "out"));
    await writeFile(join(run, "huge.bin"), "y".repeat(300_000));
    await symlink(join(run, "train", "metrics.json"), join(run, "train", "latest.json"));
    const backend = new LocalBackend({ logDir: join(dir, "logs"), dataRoot: data });
    server = await startServer({
      name: "k8s-launcher",
      host: "127.0.0.1",
      port: 0,
      auth: "off",
      services: [k8sLauncherService(backend, { dataRoot: data, maxDownloadBytes: 250_000 })],
      logger: silentLogger,
    });
    client = createClient(K8sLauncherServiceClient, { address: server.address, retries: 0 });
  });

  after(async () => {
    client.close();
    await server.close(0);
    await rm(dir, { recursive: true, force: true });
  });

  const list = (path: string, recursive = false) =>
    unary(client, "listRunFiles", { runId, path, recursive });

  async function download(
    path: string,
    maxBytes = 0n,
  ): Promise<{ files: Map<string, string>; messages: number }> {
    const files = new Map<string, string>();
    let current = "";
    let messages = 0;
    for await (const m of serverStream(client, "downloadRunFiles", { runId, path, maxBytes })) {
      messages++;
      if (m.file) {
        current = m.file.path;
        files.set(current, "");
      }
      files.set(current, files.get(current)! + Buffer.from(m.data).toString());
    }
    return { files, messages };
  }

  async function refused(call: Promise<unknown>, code: number, message: RegExp): Promise<void> {
    await assert.rejects(call, (err: { code: number; details: string }) => {
      assert.equal(err.code, code, err.details);
      assert.match(err.details, message);
      return true;
    });
  }

  test("lists RUN_PATH, a directory's tree, and one file", async () => {
    const top = await list("");
    assert.deepEqual(
      top.files.map((f) => `${f.path}:${f.type}`),
      ["huge.bin:1", "leak:3", "links:2", "train:2"],
    );
    assert.match(top.runPath, new RegExp(`${runId}$`));
    const tree = await list("train", true);
    assert.deepEqual(
      tree.files.map((f) => f.path),
      ["train/ckpt", "train/ckpt/model.bin", "train/latest.json", "train/metrics.json"],
    );
    assert.equal(tree.files.find((f) => f.path === "train/ckpt/model.bin")!.size, 200_000n);
    const one = await list("./train/metrics.json");
    assert.deepEqual(
      one.files.map((f) => [f.path, f.size]),
      [["train/metrics.json", 13n]],
    );
  });

  test("downloads a file, and a directory with each file's path (a link inside RUN_PATH followed)", async () => {
    const file = await download("train/metrics.json");
    assert.deepEqual([...file.files], [["train/metrics.json", '{"acc": 0.9}\n']]);
    const tree = await download("train", 1_000_000n);
    assert.deepEqual(
      [...tree.files.keys()],
      ["train/ckpt/model.bin", "train/latest.json", "train/metrics.json"],
    );
    assert.equal(tree.files.get("train/ckpt/model.bin"), big.slice(0, 200_000));
    assert.equal(tree.files.get("train/latest.json"), '{"acc": 0.9}\n');
    assert.ok(tree.messages >= 5, "a large file comes in several messages");
  });

  test("paths leading out of RUN_PATH are refused with what to do", async () => {
    await refused(list("../other-run"), INVALID_ARGUMENT, /contains "\.\."/);
    await refused(list("train/../../other-run"), INVALID_ARGUMENT, /contains "\.\."/);
    await refused(list("/etc"), INVALID_ARGUMENT, /is absolute; give a path relative/);
    await refused(list("leak"), INVALID_ARGUMENT, /leads out of the run's RUN_PATH/);
    await refused(download("leak"), INVALID_ARGUMENT, /leads out of the run's RUN_PATH/);
    await refused(
      download("links"),
      INVALID_ARGUMENT,
      /links\/out is a symbolic link that leads out/,
    );
    await refused(
      unary(client, "listRunFiles", { runId: "../data", path: "", recursive: false }),
      INVALID_ARGUMENT,
      /run/,
    );
    await refused(list("nope"), NOT_FOUND, /has no nope under its RUN_PATH/);
    await refused(
      unary(client, "listRunFiles", { runId: "gone-zz99zz99", path: "", recursive: false }),
      NOT_FOUND,
      /run gone-zz99zz99 has no data/,
    );
  });

  test("a download over the size limit is refused before anything is sent", async () => {
    let received = 0;
    await refused(
      (async () => {
        for await (const _m of serverStream(client, "downloadRunFiles", {
          runId,
          path: "",
          maxBytes: 0n,
        }))
          received++;
      })(),
      RESOURCE_EXHAUSTED,
      /RUN_PATH holds more than 250000 bytes, the download limit of the launcher/,
    );
    assert.equal(received, 0);
    await refused(
      download("train/metrics.json", 5n),
      RESOURCE_EXHAUSTED,
      /more than 5 bytes, the download limit asked for \(--max-bytes\).*raise --max-bytes/,
    );
  });

  test("the local backend says it has no GPU inventory", async () => {
    const res: k8slauncher.ListGpuNodesResponse = await unary(client, "listGpuNodes", {
      allNodes: false,
    });
    assert.equal(res.backend, "local");
    assert.match(res.note, /local backend .* has no GPU inventory/);
    assert.deepEqual(res.nodes, []);
  });
});
