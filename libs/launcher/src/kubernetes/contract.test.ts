// The TaskBackend contract (shared with the local backend) on the Kubernetes backend, with kube-sim
// scripting what each task's pod prints, how long it runs and how it exits.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@odin/service-kit";
import { startKubeSim } from "@odin/testing";
import { backendContract } from "../testing/contract.js";
import { KubernetesBackend } from "./backend.js";
import { launchSpecOf, simTask } from "../testing/harness.js";

const sim = await startKubeSim();
const dir = mkdtempSync(join(tmpdir(), "odin-k8s-contract-"));
// A namespace per backend: a Kubernetes launcher reports every Odin object it finds (that is how
// it catches up after a restart), and the contract counts what one backend reported.
let backends = 0;

backendContract(
  "kubernetes (kube-sim)",
  () =>
    Promise.resolve(
      new KubernetesBackend({
        kubeConfig: sim.kubeConfig(),
        manifest: { namespace: `contract-${++backends}` },
        dataRoot: join(dir, "data"),
        logDir: join(dir, "logs"),
        qps: 1000,
        burst: 1000,
        logger: silentLogger,
      }),
    ),
  {
    makeTask: (b) => simTask(b.name, { exitCode: b.exitCode, runMs: b.runMs, logs: [...b.lines] }),
    paths: (runId, task) => launchSpecOf(runId, simTask(task)).paths,
    quietMs: 400,
    teardown: async () => {
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  },
);
