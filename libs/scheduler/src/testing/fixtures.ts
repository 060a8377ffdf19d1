// Test doubles of the scheduler's ports: a launcher that reports task events on the bus as a real
// one would, pipelines from YAML text, checkouts that always succeed, and run records.
import { createHash } from "node:crypto";
import { subjects, type EventBus } from "@odin/events";
import { loadPipeline, type LaunchSpec, type Pipeline } from "@odin/pipeline-spec";
import { common, events } from "@odin/proto";
import type { LauncherPort, PipelineSource } from "../ports.js";
import type { RunRecord } from "../records.js";

/** What a scripted task does. */
export interface Script {
  exitCode?: number;
  outputs?: Record<string, unknown>;
  runMs?: number;
  /** Never finishes on its own. */
  hang?: boolean;
  /** Files it writes before it succeeds (path → content; `${TASK_PATH}` is its task path). */
  writes?: Record<string, string>;
}

/** Reports what a launcher would: RUNNING, then SUCCEEDED or FAILED, on the event bus. */
export class ScriptedLauncher implements LauncherPort {
  /** Launches that created something (a repeated launch of one attempt finds it, as in Kubernetes). */
  readonly launches: LaunchSpec[] = [];
  private readonly objects = new Set<string>();
  calls = 0;
  readonly cancels: string[] = [];
  scripts: Record<string, Script | Script[]> = {};
  /** The data volume the cache reads: path → content (absent: missing). */
  readonly files = new Map<string, string>();
  /** The digest the "cluster" runs each image as (default: one derived from the image). */
  readonly digests = new Map<string, string>();
  /** Paths hashed so far (a miss must hash nothing before its launch). */
  readonly hashed: string[] = [];
  constructor(private readonly bus: EventBus) {}

  hashFiles(
    paths: readonly string[],
    links: readonly { target: string; path: string }[] = [],
  ): Promise<string[]> {
    for (const l of links) {
      const target = this.files.get(l.target);
      if (!this.files.has(l.path) && target !== undefined) this.files.set(l.path, target);
    }
    this.hashed.push(...paths);
    return Promise.resolve(
      paths.map((p) => {
        const content = this.files.get(p);
        return content === undefined
          ? "missing"
          : `sha256:${createHash("sha256").update(content).digest("hex")}`;
      }),
    );
  }

  launch(request: LaunchSpec): Promise<{ objectName: string }> {
    this.calls++;
    const objectName = `${request.runId}--${request.task.name}-${request.attempt}`;
    if (this.objects.has(objectName)) return Promise.resolve({ objectName });
    this.objects.add(objectName);
    this.launches.push(request);
    const s = this.scripts[request.task.name];
    const script = (Array.isArray(s) ? s[request.attempt - 1] : s) ?? {};
    const report = (state: common.TaskState, extra: Partial<events.TaskEvent> = {}) =>
      this.bus
        .publish(
          subjects.task(request.runId),
          events.TaskEvent.encode({
            runId: request.runId,
            task: request.task.name,
            attempt: request.attempt,
            state,
            exitCode: undefined,
            reason: "",
            message: "",
            objectName,
            time: new Date(),
            outputsJson: "",
            imageDigest: "",
            ...extra,
          }).finish(),
          { msgId: `${request.runId}.${request.task.name}.${request.attempt}.${state}` },
        )
        .catch(() => undefined);
    setTimeout(() => {
      void report(common.TaskState.TASK_STATE_RUNNING).then(() => {
        if (script.hang) return;
        setTimeout(() => {
          const code = script.exitCode ?? 0;
          if (code === 0)
            for (const [path, content] of Object.entries(script.writes ?? {}))
              this.files.set(path.replace("${TASK_PATH}", request.paths.taskPath), content);
          const image = request.task.image;
          void report(
            code === 0 ? common.TaskState.TASK_STATE_SUCCEEDED : common.TaskState.TASK_STATE_FAILED,
            {
              exitCode: code,
              reason: code === 0 ? "Completed" : "Error",
              outputsJson: script.outputs ? JSON.stringify(script.outputs) : "",
              imageDigest:
                code === 0
                  ? (this.digests.get(image) ??
                    `sha256:${createHash("sha256").update(image).digest("hex")}`)
                  : "",
            },
          );
        }, script.runMs ?? 1);
      });
    }, 1);
    return Promise.resolve({ objectName });
  }

  cancel(runId: string, task: string, attempt?: number): Promise<void> {
    this.cancels.push(`${task}#${attempt ?? "*"}`);
    return Promise.resolve();
  }

  deleteRun(): Promise<{ deleted: number; dataPurged: boolean }> {
    return Promise.resolve({ deleted: 0, dataPurged: false });
  }

  /** Objects created per task of each run (a task launched twice would have two: attempts 1 and 2). */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const l of this.launches) {
      const key = `${l.runId}/${l.task.name}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
    return out;
  }
}

/** Pipelines from YAML text, by path. */
export class YamlPipelines implements PipelineSource {
  constructor(private readonly pipelines: Record<string, string>) {}
  getPipeline(path: string, commit: string | undefined, parameters: Record<string, unknown>) {
    const text = this.pipelines[path];
    if (text === undefined) throw new Error(`no pipeline ${path}`);
    const loaded = loadPipeline(text, { file: `${path}/main.yml`, path, parameters });
    return Promise.resolve({
      commit: commit ?? "c0ffee".padEnd(40, "0"),
      pipeline: loaded.valid ? (loaded.pipeline as Pipeline) : undefined,
      problems: loaded.problems,
      parameters: loaded.parameters,
    });
  }
}

/** Checkouts that always succeed. */
export const checkouts = {
  acquire: (commit: string) =>
    Promise.resolve({ commit, path: `/data/pipelines/commits/${commit}` }),
  release: () => Promise.resolve(),
};

/** Waits until `cond` holds, checking every 10 ms; fails the test after `timeoutMs` naming `what`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A run's record as the store keeps it: RUNNING, of pipeline `p`, one task; `extra` overrides. */
export function runRecord(id: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    id,
    pipeline: "p",
    pipelineName: "p",
    commit: "c",
    rootPath: "/r",
    dataPath: "/d",
    runPath: `/d/${id}`,
    state: "RUNNING",
    attempt: 1,
    labels: {},
    taskCount: 1,
    createTime: 1,
    cancelRequested: false,
    submittedBy: "t",
    ...extra,
  };
}
