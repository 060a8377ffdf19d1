// `odin kube-sim` entry point: prints where it listens, writes a usable kubeconfig into a temp
// dir, stops on signal and cleans up.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { runKubeSimCli } from "./cli.js";
import { eventually, podBody } from "./client-helpers.js";

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
  return { stream, text: () => text };
}

test("runKubeSimCli serves until aborted; its kubeconfig works; the temp dir is removed", async () => {
  const stdout = capture();
  const stderr = capture();
  const abort = new AbortController();
  let ready: { url: string; kubeconfigPath: string } | undefined;
  const exit = runKubeSimCli(["--port", "0", "--script", '*:fail={"exitCode":4}'], {
    stdout: stdout.stream,
    stderr: stderr.stream,
    signal: abort.signal,
    onReady: (info) => (ready = info),
  });
  const info = await eventually(() => ready);
  assert.ok(info.kubeconfigPath.startsWith(tmpdir()), "kubeconfig lives in the temp dir");
  assert.match(
    stdout.text(),
    new RegExp(`kube-sim listening on ${info.url.replace(/[.]/g, "\\.")}`),
  );
  assert.ok(stdout.text().includes(info.kubeconfigPath));

  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedPod({
    namespace: "default",
    body: podBody("scripted", { image: "job:fail" }),
  });
  const pod = await eventually(async () => {
    const p = await core.readNamespacedPod({ namespace: "default", name: "scripted" });
    return p.status?.phase === "Failed" ? p : undefined;
  });
  assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 4);
  // What Odin created is visible with a plain HTTP GET, as with kubectl.
  const listed = (await (await fetch(`${info.url}/api/v1/namespaces/default/pods`)).json()) as {
    items: unknown[];
  };
  assert.equal(listed.items.length, 1);

  abort.abort();
  assert.equal(await exit, 0);
  assert.equal(existsSync(dirname(info.kubeconfigPath)), false);
  await assert.rejects(fetch(`${info.url}/version`));
  assert.equal(stderr.text(), "");
});

test("runKubeSimCli refuses bad arguments with usage and exit code 2; --help exits 0", async () => {
  const stderr = capture();
  assert.equal(
    await runKubeSimCli(["--port", "http"], { stderr: stderr.stream, stdout: capture().stream }),
    2,
  );
  assert.match(stderr.text(), /--port must be 0-65535/);
  assert.match(stderr.text(), /Usage: odin kube-sim/);
  const bad = capture();
  assert.equal(await runKubeSimCli(["--script", 'x={"exitcode":1}'], { stderr: bad.stream }), 2);
  assert.match(bad.text(), /unknown key "exitcode"/);
  const help = capture();
  assert.equal(await runKubeSimCli(["--help"], { stdout: help.stream }), 0);
  assert.match(help.text(), /--port N/);
});

test("--gpu-node serves GPU nodes; a GPU pod goes to the first with enough free, else stays unschedulable", async () => {
  const abort = new AbortController();
  let ready: { url: string } | undefined;
  const exit = runKubeSimCli(
    ["--port", "0", "--gpu-node", "gpu-a=2:NVIDIA-A100", "--gpu-node", "gpu-b=4"],
    { stdout: capture().stream, signal: abort.signal, onReady: (info) => (ready = info) },
  );
  const { url } = await eventually(() => ready);
  const nodes = (await (await fetch(`${url}/api/v1/nodes`)).json()) as {
    items: {
      metadata: { name: string; labels: Record<string, string> };
      status: { capacity: Record<string, string> };
    }[];
  };
  assert.deepEqual(
    nodes.items.map((n) => [n.metadata.name, n.status.capacity["nvidia.com/gpu"] ?? "0"]).sort(),
    [
      ["gpu-a", "2"],
      ["gpu-b", "4"],
      ["kube-sim-node", "0"],
    ],
  );
  const gpuPod = (name: string, gpus: number) => {
    const body = podBody(name, { image: "train:1", script: { runForever: true } });
    body.spec!.containers[0]!.resources = { limits: { "nvidia.com/gpu": String(gpus) } };
    return fetch(`${url}/api/v1/namespaces/default/pods`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  };
  const nodeOf = (name: string) =>
    eventually(async () => {
      const p = (await (await fetch(`${url}/api/v1/namespaces/default/pods/${name}`)).json()) as {
        spec: { nodeName?: string };
        status?: { conditions?: { type: string; status: string }[] };
      };
      if (p.spec.nodeName) return p.spec.nodeName;
      return p.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "False")
        ? "unschedulable"
        : undefined;
    });
  await gpuPod("one", 2);
  assert.equal(await nodeOf("one"), "gpu-a");
  await gpuPod("two", 3);
  assert.equal(await nodeOf("two"), "gpu-b");
  await gpuPod("three", 2);
  assert.equal(await nodeOf("three"), "unschedulable");
  abort.abort();
  assert.equal(await exit, 0);
  const bad = capture();
  assert.equal(await runKubeSimCli(["--gpu-node", "GPU=x"], { stderr: bad.stream }), 2);
  assert.match(bad.text(), /--gpu-node must be NAME=N\[:PRODUCT\]/);
});
