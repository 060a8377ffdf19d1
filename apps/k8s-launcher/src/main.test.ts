// The real main.js as a process: configured by environment only, against kube-sim (through a
// kubeconfig file) and a real nats-server; LaunchTask over gRPC gives task events on NATS, and
// SIGTERM stops it cleanly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NatsEventBus, subjects } from "@odin/events";
import { common, events, K8sLauncherServiceClient, taskToProto } from "@odin/proto";
import { createClient, unary } from "@odin/service-kit";
import { SCRIPT_ANNOTATION, startKubeSim, startNats } from "@odin/testing";
import { taskWithDefaults } from "@odin/launcher/testing";

const mainJs = fileURLToPath(new URL("./main.js", import.meta.url));

test("k8s-launcher runs as a process: ready line, LaunchTask, task events, clean stop", async () => {
  const [sim, nats] = await Promise.all([startKubeSim(), startNats()]);
  const dir = mkdtempSync(join(tmpdir(), "odin-k8s-launcher-app-"));
  const bus = await NatsEventBus.connect({ servers: nats.url });
  const seen: events.TaskEvent[] = [];
  const sub = await bus.consume({ durable: "app-test", filter: subjects.allTasks }, (m) => {
    seen.push(events.TaskEvent.decode(m.data));
    return Promise.resolve();
  });
  const kubeconfig = join(dir, "kubeconfig.json");
  writeFileSync(kubeconfig, sim.kubeConfig().exportConfig());
  const child = spawn(process.execPath, [mainJs], {
    env: {
      PATH: process.env.PATH ?? "",
      ODIN_GRPC_HOST: "127.0.0.1",
      ODIN_GRPC_PORT: "0",
      ODIN_METRICS_PORT: "0",
      ODIN_AUTH: "off",
      ODIN_NATS_URL: nats.url,
      ODIN_KUBECONFIG: kubeconfig,
      ODIN_K8S_NAMESPACE: "apps",
      ODIN_IMAGE_PULL_SECRETS: "regcred",
      ODIN_DATA_PATH: join(dir, "data"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const logs: string[] = [];
  try {
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready:\n${logs.join("\n")}`)), 60_000);
      void exited.then((code) => reject(new Error(`exited ${code}:\n${logs.join("\n")}`)));
      let partial = "";
      child.stderr.on("data", (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          logs.push(line);
          try {
            const entry = JSON.parse(line) as { msg?: string; address?: string };
            if (entry.msg === "k8s-launcher ready" && entry.address) {
              clearTimeout(timer);
              resolve(entry.address);
            }
          } catch {
            // not a log line
          }
        }
      });
    });
    const client = createClient(K8sLauncherServiceClient, { address, retries: 0 });
    const runId = "app-test-1";
    const task = taskWithDefaults({
      name: "hello",
      image: "registry.example/hello:1",
      command: ["hello"],
      annotations: { [SCRIPT_ANNOTATION]: JSON.stringify({ runMs: 50 }) },
    });
    const res = await unary(client, "launchTask", {
      runId,
      pipeline: "hello",
      commit: "",
      task: taskToProto(task),
      taskId: `${runId}--hello`,
      attempt: 1,
      paths: {
        rootPath: "/data/pipelines",
        workPath: "/data/pipelines/hello",
        dataPath: "/data/odin",
        runPath: `/data/odin/${runId}`,
        taskPath: `/data/odin/${runId}/hello`,
      },
    });
    const pod = sim.get("pods", "apps", res.objectName) as {
      spec?: { imagePullSecrets?: { name: string }[] };
    };
    assert.deepEqual(pod.spec?.imagePullSecrets, [{ name: "regcred" }], "configuration applied");
    const deadline = Date.now() + 120_000;
    while (
      !seen.some((e) => e.runId === runId && e.state === common.TaskState.TASK_STATE_SUCCEEDED)
    ) {
      assert.ok(Date.now() < deadline, "SUCCEEDED on NATS");
      await new Promise((r) => setTimeout(r, 20));
    }
    client.close();
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  } finally {
    child.kill("SIGKILL");
    await sub.stop();
    await bus.close();
    await sim.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
