// kube-sim for the launcher benchmark, in a worker thread so that the simulated API server does
// not share the launcher's event loop (a real API server does not). It records, on the process-wide
// monotonic clock, when each pod turned Succeeded (sim.onChange) and reports those times on request.
import { parentPort, workerData } from "node:worker_threads";
import { startKubeSim, type KubeSimOptions } from "@odin/testing";

if (!parentPort) throw new Error("launcher-sim.js runs as a worker thread");
const port = parentPort;
const sim = await startKubeSim(workerData as KubeSimOptions);
const succeededAt = new Map<string, number>();
sim.onChange("pods", (_type, object) => {
  const phase = (object.status as { phase?: string } | undefined)?.phase;
  const name = object.metadata.name ?? "";
  if (phase === "Succeeded" && !succeededAt.has(name)) {
    succeededAt.set(name, Number(process.hrtime.bigint()) / 1e6);
  }
});
port.on("message", (message: { type: string }) => {
  if (message.type === "times") {
    port.postMessage({ type: "times", times: [...succeededAt], stats: sim.stats() });
  } else if (message.type === "close") {
    void sim.close().then(() => port.postMessage({ type: "closed" }));
  }
});
port.postMessage({ type: "ready", url: sim.url });
