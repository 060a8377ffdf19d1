// Test harness for the Kubernetes backend (not a test file itself): kube-sim, a real nats-server
// with the JetStream event bus, and backends wired to it the way apps/k8s-launcher wires them.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsEventBus, subjects, type Subscription } from "@odin/events";
import { newRunId, type Task } from "@odin/pipeline-spec";
import { common, events } from "@odin/proto";
import { silentLogger } from "@odin/service-kit";
import {
  SCRIPT_ANNOTATION,
  startKubeSim,
  startNats,
  type KubeSim,
  type KubeSimOptions,
  type NatsServer,
  type PodScript,
} from "@odin/testing";
import type { LaunchResult, LaunchSpec, TaskStateEvent } from "../backend.js";
import { publishStateEvents } from "../service.js";
import { taskWithDefaults } from "./contract.js";
import { KubernetesBackend, type KubernetesBackendOptions } from "../kubernetes/backend.js";

/** Namespace the tests launch into. */
export const testNamespace = "odin-test";

/** A task for kube-sim: `script` says what its pods do. */
export function simTask(name: string, script: PodScript = {}, fields: Partial<Task> = {}): Task {
  return taskWithDefaults({
    name,
    image: "registry.example/odin-test:1",
    command: ["train"],
    ...fields,
    annotations: { ...fields.annotations, [SCRIPT_ANNOTATION]: JSON.stringify(script) },
  });
}

/** The LaunchSpec of one attempt of a task in a run. */
export function launchSpecOf(runId: string, task: Task, attempt = 1): LaunchSpec {
  const runPath = `/data/odin/${runId}`;
  return {
    runId,
    pipeline: "tests/launcher",
    commit: "0123456789abcdef0123456789abcdef01234567",
    task,
    attempt,
    paths: {
      rootPath: "/data/pipelines",
      workPath: "/data/pipelines/tests/launcher",
      dataPath: "/data/odin",
      runPath,
      taskPath: `${runPath}/${task.name}`,
    },
  };
}

/** A task event as read back from the JetStream stream. */
export type BusEvent = events.TaskEvent & { stateName: string };

const stateNames = new Map<common.TaskState, string>([
  [common.TaskState.TASK_STATE_RUNNING, "RUNNING"],
  [common.TaskState.TASK_STATE_SUCCEEDED, "SUCCEEDED"],
  [common.TaskState.TASK_STATE_FAILED, "FAILED"],
  [common.TaskState.TASK_STATE_ERROR, "ERROR"],
]);

/** Polls `cond` until true or the timeout; the message says what was awaited. */
export async function waitUntil(
  cond: () => boolean,
  what: () => string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Shared per test file: one kube-sim, one nats-server, a bus and every event in its stream. */
export class LauncherHarness {
  /** Every task event in the JetStream stream (duplicates dropped by the server stay dropped). */
  readonly busEvents: BusEvent[] = [];
  private readonly backends: KubernetesBackend[] = [];
  private consumer: Subscription | undefined;

  private constructor(
    readonly sim: KubeSim,
    readonly nats: NatsServer,
    readonly bus: NatsEventBus,
    readonly dir: string,
  ) {}

  static async start(simOptions: KubeSimOptions = {}): Promise<LauncherHarness> {
    const [sim, nats] = await Promise.all([startKubeSim(simOptions), startNats()]);
    const bus = await NatsEventBus.connect({ servers: nats.url, name: "launcher-tests" });
    const dir = mkdtempSync(join(tmpdir(), "odin-k8s-launcher-"));
    const h = new LauncherHarness(sim, nats, bus, dir);
    h.consumer = await bus.consume(
      { durable: "launcher-tests", filter: subjects.allTasks },
      (m) => {
        const e = events.TaskEvent.decode(m.data);
        h.busEvents.push({ ...e, stateName: stateNames.get(e.state) ?? String(e.state) });
        return Promise.resolve();
      },
    );
    return h;
  }

  /** A fresh run id. */
  runId(prefix = "t"): string {
    return newRunId(prefix);
  }

  /** The launcher's data root (for purge tests). */
  get dataRoot(): string {
    return join(this.dir, "data");
  }

  /** A started backend publishing to the bus (closed by `close`). */
  async backend(
    options: Partial<KubernetesBackendOptions> = {},
    report?: (e: TaskStateEvent) => Promise<void>,
  ): Promise<KubernetesBackend> {
    const backend = new KubernetesBackend({
      kubeConfig: this.sim.kubeConfig(),
      manifest: { namespace: testNamespace },
      dataRoot: this.dataRoot,
      logDir: join(this.dir, "logs"),
      qps: 1000,
      burst: 1000,
      retry: { baseDelayMs: 20, maxDelayMs: 500 },
      logger: silentLogger,
      ...options,
    });
    this.backends.push(backend);
    await backend.start(report ?? publishStateEvents(this.bus));
    return backend;
  }

  /** Launches one attempt. */
  launch(
    backend: KubernetesBackend,
    runId: string,
    task: Task,
    attempt = 1,
  ): Promise<LaunchResult> {
    return backend.launch(launchSpecOf(runId, task, attempt));
  }

  /** The bus events of one attempt, in stream order. */
  of(runId: string, task: string, attempt = 1): BusEvent[] {
    return this.busEvents.filter(
      (e) => e.runId === runId && e.task === task && e.attempt === attempt,
    );
  }

  /** Waits for a state of an attempt on the bus and returns its event. */
  async reported(
    runId: string,
    task: string,
    state: string,
    attempt = 1,
    timeoutMs = 60_000,
  ): Promise<BusEvent> {
    await waitUntil(
      () => this.of(runId, task, attempt).some((e) => e.stateName === state),
      () =>
        `${state} of ${runId}/${task}/${attempt}; so far ${JSON.stringify(this.of(runId, task, attempt).map((e) => e.stateName))}`,
      timeoutMs,
    );
    return this.of(runId, task, attempt).find((e) => e.stateName === state) as BusEvent;
  }

  async close(): Promise<void> {
    await Promise.all(this.backends.splice(0).map((b) => b.close()));
    await this.consumer?.stop();
    await this.bus.close();
    await this.sim.close();
    await this.nats.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Reads every item of an async iterable. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
