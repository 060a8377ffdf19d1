// The launcher benchmark's observer, in a worker thread with its own NATS connection, as
// dag-scheduler is a process of its own: records on the process-wide monotonic clock when each
// SUCCEEDED task event arrives, on a plain subscription and through a JetStream durable consumer.
import { parentPort, workerData } from "node:worker_threads";
import { NatsEventBus, subjects } from "@odin/events";
import { common, events } from "@odin/proto";

if (!parentPort) throw new Error("launcher-observer.js runs as a worker thread");
const port = parentPort;
const { url } = workerData as { url: string };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const SUCCEEDED = common.TaskState.TASK_STATE_SUCCEEDED;
const core = new Map<string, number>();
const stream = new Map<string, number>();
const bus = await NatsEventBus.connect({ servers: url, name: "bench-observer" });
const subscription = await bus.subscribe(subjects.allTasks, (m) => {
  const t = now();
  const e = events.TaskEvent.decode(m.data);
  if (e.state === SUCCEEDED && !core.has(e.objectName)) core.set(e.objectName, t);
});
const consumer = await bus.consume({ durable: "bench", filter: subjects.allTasks }, (m) => {
  const t = now();
  const e = events.TaskEvent.decode(m.data);
  if (e.state === SUCCEEDED && !stream.has(e.objectName)) stream.set(e.objectName, t);
  return Promise.resolve();
});
port.on("message", (message: { type: string }) => {
  if (message.type === "counts") {
    port.postMessage({ type: "counts", core: core.size, stream: stream.size });
  } else if (message.type === "times") {
    port.postMessage({ type: "times", core: [...core], stream: [...stream] });
  } else if (message.type === "close") {
    void (async () => {
      await subscription.stop();
      await consumer.stop();
      await bus.close();
      port.postMessage({ type: "closed" });
    })();
  }
});
port.postMessage({ type: "ready" });
