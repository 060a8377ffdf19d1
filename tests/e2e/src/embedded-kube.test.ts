// `odin server --kube` against kube-sim: embedded mode with the Kubernetes backend, the way anyone
// tries the Kubernetes path without a cluster.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startKubeSim, type KubeSim } from "@odin/testing";
import { odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

let sim: KubeSim;
let server: OdinServer;
let address = "";
let dir: { path: string; cleanup(): Promise<void> };

before(async () => {
  dir = await tempDir("odin-e2e-kube-");
  sim = await startKubeSim({ defaultRunMs: [5, 20] });
  sim.script({ image: "busybox*", terminationMessage: '{"words": 7}', logs: ["ran on kube-sim"] });
  const kubeconfig = join(dir.path, "kubeconfig.json");
  await writeFile(kubeconfig, sim.kubeConfig().exportConfig());
  server = await startOdinServer(
    ["--kube", "--namespace", "trial", "--data", join(dir.path, "data")],
    { HOME: dir.path, KUBECONFIG: kubeconfig },
  );
  address = server.address;
  assert.match(
    server.output(),
    /tasks run on Kubernetes: context kube-sim \(http:\/\/127\.0\.0\.1:\d+\), namespace trial/,
  );
});

after(async () => {
  await server?.stop();
  await sim?.close();
  await dir?.cleanup();
});

test("the diamond example runs as pods in kube-sim, outputs passed through termination messages", async () => {
  const r = await odin(["--server", address, "run", "diamond", "--follow"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const runId = /^run (diamond-[a-z0-9]{8}):/m.exec(r.stdout)![1]!;
  const pods = sim.created("pods").filter((p) => p.metadata.labels?.["odin.dev/run"] === runId);
  assert.equal(pods.length, 4);
  assert.ok(pods.every((p) => p.metadata.namespace === "trial"));
  const logs = await odin(["--server", address, "logs", `${runId}--right`]);
  assert.equal(logs.stdout.trim(), "ran on kube-sim");
  const right = pods.find((p) => p.metadata.labels?.["odin.dev/task"] === "right") as unknown as {
    spec: { containers: { args: string[] }[] };
  };
  assert.ok(
    right.spec.containers[0]!.args.includes("7"),
    "^prepare.outputs.words was resolved from prepare's termination message",
  );
});
