// Issue 3 end to end: repo-sync and pipeline-registry as separate processes, a real git remote, a
// real nats-server, the odin CLI and a Python gRPC client.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cp, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startNats, type NatsServer } from "@odin/testing";
import {
  conformance,
  eventually,
  odin,
  repoRoot,
  startService,
  tempDir,
  writeTokens,
  type ServiceProcess,
} from "@odin/test-stack";

function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    "git",
    ["-c", "user.name=Seed", "-c", "user.email=seed@example.com", ...args],
    {
      cwd,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
    },
  ).trim();
}

const hello = `name: hello
tasks:
- name: prepare
  image: python:3.11
  command: python3
  args: ["-c", "print('\${TASK_ID}')"]
- name: train
  image: python:3.11
  command: [python3, -c, "print('train')"]
  depends: prepare
- name: report
  image: python:3.11
  command: echo
  args: [done]
  depends: [prepare, train]
`;

describe("pipelines repository over gRPC (repo-sync + pipeline-registry + CLI)", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let nats: NatsServer;
  let repoSync: ServiceProcess;
  let registry: ServiceProcess;
  let tokens: Awaited<ReturnType<typeof writeTokens>>;
  let remote: string;
  let seed: string;

  before(async () => {
    dir = await tempDir("odin-e2e-repo-");
    nats = await startNats({ runtime: "binary" });
    tokens = await writeTokens(dir.path);
    remote = join(dir.path, "remote.git");
    seed = join(dir.path, "seed");
    git(dir.path, "init", "-q", "--bare", "--initial-branch=main", remote);
    git(dir.path, "clone", "-q", remote, seed);
    await cp(join(conformance, "sample-odin-pipelines"), seed, { recursive: true });
    git(seed, "add", "-A");
    git(seed, "commit", "-qm", "samples");
    git(seed, "push", "-q", "origin", "HEAD:main");
    repoSync = await startService("repo-sync", {
      ODIN_REPO_URL: remote,
      ODIN_ROOT_PATH: join(dir.path, "root"),
      ODIN_TOKENS_FILE: tokens.file,
      ODIN_NATS_URL: nats.url,
      ODIN_SYNC_INTERVAL_SECONDS: "0",
    });
    registry = await startService("pipeline-registry", {
      ODIN_REPO_SYNC_ADDRESS: repoSync.address,
      ODIN_SERVICE_TOKEN: tokens.service,
      ODIN_TOKENS_FILE: tokens.file,
      ODIN_NATS_URL: nats.url,
    });
  });

  after(async () => {
    await registry?.stop();
    await repoSync?.stop();
    await nats?.stop();
    await dir?.cleanup();
  });

  const asViewer = (server: ServiceProcess, ...args: string[]) =>
    odin(["--server", server.address, "--token", tokens.viewer, ...args]);
  const asOperator = (server: ServiceProcess, ...args: string[]) =>
    odin(["--server", server.address, ...args], { env: { ODIN_TOKEN: tokens.operator } });

  test("odin ls lists the repository's pipelines", async () => {
    const r = await asViewer(registry, "ls");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PIPELINE\s+NAME\s+TASKS\s+VALID$/m);
    assert.match(r.stdout, /^bert-ner\s+bert-ner\s+1\s+yes$/m);
    assert.match(r.stdout, /^imagenet-elastic\s+flow\s+1\s+yes$/m);
    assert.match(r.stdout, /^sst2\s+flow\s+1\s+yes$/m);
    assert.match(r.stdout, /^3 pipelines at commit [0-9a-f]{12}$/m);
  });

  test("push → commit on the remote → ls and show see it; the commit's author is the caller", async () => {
    const local = join(dir.path, "work", "hello");
    await mkdir(join(local, "conf"), { recursive: true });
    await writeFile(join(local, "main.yml"), hello);
    await writeFile(join(local, "conf", "settings.json"), "{}\n");
    const pushed = await asOperator(
      repoSync,
      "push",
      local,
      "--as",
      "alice/hello",
      "-m",
      "Add hello",
    );
    assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout);
    const commit = /as commit ([0-9a-f]{12})/.exec(pushed.stdout)?.[1];
    assert.ok(commit, pushed.stdout);
    assert.equal(git(remote, "rev-parse", "main").slice(0, 12), commit);
    assert.equal(
      git(remote, "log", "-1", "--format=%an <%ae> %s", "main"),
      "alice <alice@example.com> Add hello",
    );
    assert.equal(git(remote, "show", "main:alice/hello/conf/settings.json"), "{}");
    // The registry hears repo.synced over NATS and serves the new commit without being asked.
    await eventually(
      async () => (await asViewer(registry, "ls", "alice")).stdout.includes("alice/hello"),
      10_000,
      "alice/hello in odin ls",
    );
    const show = await asViewer(registry, "show", "alice/hello");
    assert.equal(show.code, 0, show.stderr);
    assert.match(
      show.stdout,
      /pipeline alice\/hello \(name hello\) at commit [0-9a-f]{12}: 3 tasks/,
    );
    assert.match(show.stdout, /^\s+1\s+prepare$/m);
    assert.match(show.stdout, /^\s+2\s+train\s+← prepare$/m);
    assert.match(show.stdout, /^\s+3\s+report\s+← prepare, train$/m);
    const mermaid = await asViewer(registry, "show", "alice/hello", "--format", "mermaid");
    assert.match(mermaid.stdout, /^graph TD$/m);
    assert.match(mermaid.stdout, /t0 --> t1/);
    const dot = await asViewer(registry, "show", "alice/hello", "--format", "dot");
    assert.match(dot.stdout, /"prepare" -> "train";/);
    const json = await asViewer(registry, "-o", "json", "show", "alice/hello");
    const body = JSON.parse(json.stdout) as {
      pipeline: { tasks: { name: string; depends: string[] }[] };
    };
    assert.deepEqual(
      body.pipeline.tasks.map((t) => [t.name, t.depends]),
      [
        ["prepare", []],
        ["train", ["prepare"]],
        ["report", ["prepare", "train"]],
      ],
    );
    const yaml = await asViewer(registry, "-o", "yaml", "ls");
    assert.match(yaml.stdout, /^commit: [0-9a-f]{40}$/m);
  });

  test("odin sync picks up a commit made elsewhere", async () => {
    git(seed, "pull", "-q", "--rebase", "origin", "main");
    await mkdir(join(seed, "elsewhere"), { recursive: true });
    await writeFile(
      join(seed, "elsewhere", "main.yml"),
      hello.replace("name: hello", "name: elsewhere"),
    );
    git(seed, "add", "-A");
    git(seed, "commit", "-qm", "elsewhere");
    git(seed, "push", "-q", "origin", "HEAD:main");
    const synced = await asOperator(repoSync, "sync");
    assert.equal(synced.code, 0, synced.stderr);
    assert.match(synced.stdout, /^synced: now at commit [0-9a-f]{12} \(was [0-9a-f]{12}\)$/m);
    await eventually(
      async () => (await asViewer(registry, "ls")).stdout.includes("elsewhere"),
      10_000,
      "elsewhere in odin ls",
    );
  });

  test("an invalid pipeline is refused before anything is sent, with file:line:col", async () => {
    const local = join(dir.path, "work", "broken");
    await mkdir(local, { recursive: true });
    await writeFile(
      join(local, "main.yml"),
      "tasks:\n- name: a\n  image: x\n  command: y\n  depends: [nope]\n",
    );
    const before = git(remote, "rev-parse", "main");
    const r = await asOperator(repoSync, "push", local);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      /broken\/main\.yml:5:13: a: depends on "nope", which is not a task of this pipeline/,
    );
    assert.match(r.stdout, /not pushed: broken is not valid/);
    assert.equal(git(remote, "rev-parse", "main"), before);
  });

  test("auth: no token and a bad token are unauthenticated; a viewer may not push", async () => {
    const none = await odin(["--server", registry.address, "ls"]);
    assert.equal(none.code, 6, "not authenticated");
    assert.match(none.stderr, /^odin: not authenticated: .*--token.*ODIN_TOKEN/);
    const bad = await odin(["--server", registry.address, "--token", "nope", "ls"]);
    assert.equal(bad.code, 6, "not authenticated");
    assert.match(bad.stderr, /^odin: not authenticated/);
    assert.doesNotMatch(bad.stderr, /nope/, "the token is not echoed");
    const local = join(dir.path, "work", "hello");
    const viewerPush = await asViewer(repoSync, "push", local, "--as", "bob/hello");
    assert.equal(viewerPush.code, 6, "not allowed");
    assert.match(viewerPush.stderr, /^odin: permission denied: .*operator/);
    for (const svc of [repoSync, registry]) {
      assert.ok(
        !svc.logs.some((l) => l.includes(tokens.viewer) || l.includes(tokens.operator)),
        `${svc.name} never logs a token`,
      );
    }
  });

  test("an unreachable server and an unknown pipeline are one clear line each", async () => {
    const down = await odin(["--server", "127.0.0.1:1", "--token", "x", "ls"]);
    assert.equal(down.code, 5, "unreachable");
    assert.match(
      down.stderr,
      /^odin: cannot reach odin at 127\.0\.0\.1:1: .* — is the server running\? set --server \/ ODIN_SERVER\n$/,
    );
    const missing = await asViewer(registry, "show", "no/such");
    assert.equal(missing.code, 4, "not found");
    assert.match(missing.stderr, /^odin: no pipeline "no\/such" at commit [0-9a-f]{12}/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
  });

  test("a Python client generated from proto/ lists and reads pipelines", async () => {
    const out = join(dir.path, "py");
    await mkdir(out, { recursive: true });
    const protos = execFileSync("find", ["odin", "-name", "*.proto"], {
      cwd: join(repoRoot, "proto"),
      encoding: "utf8",
    })
      .trim()
      .split("\n");
    execFileSync(
      "/usr/bin/python3",
      [
        "-m",
        "grpc_tools.protoc",
        "-I",
        join(repoRoot, "proto"),
        `--python_out=${out}`,
        `--grpc_python_out=${out}`,
        ...protos,
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const script = `
import sys, grpc
sys.path.insert(0, ${JSON.stringify(out)})
from odin.pipelineregistry.v1 import pipelineregistry_pb2 as pb, pipelineregistry_pb2_grpc as rpc
channel = grpc.insecure_channel(${JSON.stringify(registry.address)})
stub = rpc.PipelineRegistryServiceStub(channel)
auth = [("authorization", "Bearer ${tokens.viewer}")]
listing = stub.ListPipelines(pb.ListPipelinesRequest(), metadata=auth, timeout=10)
print("paths", ",".join(sorted(p.path for p in listing.pipelines)))
got = stub.GetPipeline(pb.GetPipelineRequest(path="bert-ner"), metadata=auth, timeout=10)
task = got.pipeline.tasks[0]
print("task", task.name, task.image, task.num_gpus, task.mounts[0].claim)
try:
    stub.ListPipelines(pb.ListPipelinesRequest(), timeout=10)
except grpc.RpcError as e:
    print("anonymous", e.code().name)
`;
    const printed = execFileSync("/usr/bin/python3", ["-c", script], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    assert.match(printed, /^paths .*alice\/hello.*bert-ner.*sst2/m);
    assert.match(printed, /^task conll-0 meadml\/mead2-pytorch-gpu:latest 1 data-rw-many$/m);
    assert.match(printed, /^anonymous UNAUTHENTICATED$/m);
  });
});
