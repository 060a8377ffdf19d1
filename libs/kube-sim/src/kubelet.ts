// The simulated scheduler and kubelet: every pod is scheduled onto one node and its containers go
// ContainerCreating → running → terminated as its script says, with the status fields, conditions,
// events and logs a real kubelet produces.
import { createHash } from "node:crypto";
import type { EventRecorder } from "./events.js";
import { resourceDef } from "./resources.js";

import type { Scheduler } from "./scheduler.js";
import {
  type PodScript,
  type ResolvedScript,
  type ScriptBook,
  SCRIPT_ANNOTATION,
  parseScriptAnnotation,
} from "./scripts.js";
import { type Change, type Cluster, nowSeconds } from "./store.js";
import type {
  ConditionJson,
  ContainerStateJson,
  ContainerStatusJson,
  PodJson,
  PodStatusJson,
} from "./types.js";

/** One line a container printed. */
export interface LogLine {
  /** RFC 3339 with nanoseconds, as `timestamps=true` prints it. */
  readonly time: string;
  readonly text: string;
}

/** An open `follow=true` log request. */
export interface LogFollower {
  readonly container: string;
  write(line: LogLine): void;
  end(): void;
}

/** How a pod ended when ended from outside: always Failed, with optional status.reason/message. */
export interface PodFailure {
  reason?: string;
  message?: string;
}

/** How a container ended, when ended from outside or by the simulator. */
export interface ContainerEnd {
  exitCode: number;
  reason?: string;
  message?: string;
}

interface ContainerRuntime {
  readonly name: string;
  readonly image: string;
  readonly script: ResolvedScript;
  readonly fallbackToLogs: boolean;
  readonly containerID: string;
  /** What the image resolved to when the pod was created (a later push does not change it). */
  readonly imageID: string;
  state: ContainerStateJson;
  readonly logs: LogLine[];
}

interface PodRuntime {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly containers: ContainerRuntime[];
  readonly followers: Set<LogFollower>;
  /** Pod IP, assigned when the pod is scheduled. */
  podIP: string;
  /** Terminal (or deleted): nothing scheduled for it may act any more. */
  done: boolean;
}

/** The view of a container's log the log endpoint needs. */
export interface ContainerLogView {
  readonly lines: readonly LogLine[];
  readonly state: ContainerStateJson;
  readonly running: boolean;
}

const POD = resourceDef("pods");

/** RFC 3339 with nanoseconds. */
function nowNanos(): string {
  return new Date().toISOString().replace(/Z$/, "000000Z");
}

/** The repository part of an image reference (`repo:tag` or `repo@sha256:…` → `repo`). */
function repository(image: string): string {
  const at = image.indexOf("@");
  if (at !== -1) return image.slice(0, at);
  const colon = image.lastIndexOf(":");
  return colon > image.lastIndexOf("/") ? image.slice(0, colon) : image;
}

/**
 * The `imageID` a container status reports, as containerd does: `repo@sha256:<digest>`. A pinned
 * image reports its own digest; a tag the digest pushed for it (`sim.pushImage`), else one derived
 * from the reference.
 */
function imageID(image: string, pushed?: ReadonlyMap<string, string>): string {
  const pinned = /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1];
  const digest =
    pinned ?? pushed?.get(image) ?? `sha256:${createHash("sha256").update(image).digest("hex")}`;
  return `${repository(image)}@${digest}`;
}

/** Simulated scheduler + kubelet for a single node. */
export class Kubelet {
  private readonly pods = new Map<string, PodRuntime>();
  private readonly imagesPresent = new Set<string>();
  /** Digests pushed for image tags (`sim.pushImage`): what new pods of the tag run. */
  readonly pushedImages = new Map<string, string>();
  private podCount = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly scheduler: Scheduler,
    private readonly events: EventRecorder,
    private readonly scripts: ScriptBook,
    private readonly nodeName: string,
    private readonly gpuNodes: readonly GpuNodeSpec[] = [],
  ) {
    cluster.onChange("pods", (change) => this.onPodChange(change));
  }

  /** Number of pods the kubelet still tracks (not deleted). */
  get tracked(): number {
    return this.pods.size;
  }

  /** The log of one container of a live pod, or undefined. */
  containerLog(uid: string, container: string): ContainerLogView | undefined {
    const c = this.pods.get(uid)?.containers.find((x) => x.name === container);
    if (c === undefined) return undefined;
    return { lines: c.logs, state: c.state, running: c.state.running !== undefined };
  }

  /** Registers a log follower; returns the function that unregisters it. */
  follow(uid: string, follower: LogFollower): () => void {
    const rt = this.pods.get(uid);
    if (rt === undefined) {
      follower.end();
      return () => undefined;
    }
    rt.followers.add(follower);
    return () => rt.followers.delete(follower);
  }

  /** Appends a line to a running container's log (external action). */
  appendLog(uid: string, text: string, container?: string): boolean {
    const rt = this.pods.get(uid);
    const c =
      container === undefined
        ? rt?.containers[0]
        : rt?.containers.find((x) => x.name === container);
    if (rt === undefined || c?.state.running === undefined) return false;
    this.print(rt, c, text);
    return true;
  }

  /** Ends every container that has not ended yet (external action); false if the pod is unknown. */
  endPod(uid: string, end: ContainerEnd, podFailure?: PodFailure): boolean {
    const rt = this.pods.get(uid);
    if (rt === undefined || rt.done) return false;
    const results = new Map<string, ContainerEnd>();
    for (const c of rt.containers) if (c.state.terminated === undefined) results.set(c.name, end);
    this.finish(rt, results, podFailure);
    return true;
  }

  /** Emits Killing events for the running containers of a pod about to be deleted. */
  killing(pod: PodJson): void {
    const rt = this.pods.get(pod.metadata.uid ?? "");
    if (rt === undefined) return;
    for (const c of rt.containers) {
      if (c.state.running !== undefined) {
        this.event(pod, "Normal", "Killing", `Stopping container ${c.name}`, c.name);
      }
    }
  }

  private onPodChange(change: Change): void {
    const pod = change.object as PodJson;
    const uid = pod.metadata.uid ?? "";
    if (change.type === "ADDED") this.admit(pod);
    else if (change.type === "DELETED") this.forget(uid);
  }

  private admit(pod: PodJson): void {
    const meta = pod.metadata;
    let annotation: PodScript | undefined;
    const raw = meta.annotations?.[SCRIPT_ANNOTATION];
    if (raw !== undefined) {
      try {
        annotation = parseScriptAnnotation(raw);
      } catch {
        // The API refuses invalid annotations on create; a pod stored some other way just runs
        // with the default script.
        annotation = undefined;
      }
    }
    const uid = meta.uid ?? "";
    const rt: PodRuntime = {
      uid,
      namespace: meta.namespace ?? "default",
      name: meta.name ?? "",
      followers: new Set(),
      podIP: "",
      done: false,
      containers: pod.spec.containers.map((c, i) => ({
        name: c.name,
        image: c.image ?? "",
        script: this.scripts.resolve(pod, c, annotation),
        fallbackToLogs: c.terminationMessagePolicy === "FallbackToLogsOnError",
        containerID: `containerd://${createHash("sha256").update(`${uid}/${i}`).digest("hex")}`,
        imageID: imageID(c.image ?? "", this.pushedImages),
        state: { waiting: { reason: "ContainerCreating" } },
        logs: [],
      })),
    };
    this.pods.set(uid, rt);
    this.scheduler.after(0, () => this.schedule(rt));
  }

  private forget(uid: string): void {
    const rt = this.pods.get(uid);
    if (rt === undefined) return;
    rt.done = true;
    this.pods.delete(uid);
    for (const f of rt.followers) f.end();
    rt.followers.clear();
  }

  /** Applies `mutate` to the pod if it is still the one this runtime tracks. */
  private updatePod(rt: PodRuntime, mutate: (pod: PodJson) => void): PodJson | undefined {
    const updated = this.cluster.update("pods", rt.namespace, rt.name, (draft) => {
      if (draft.metadata.uid !== rt.uid) return false;
      mutate(draft as PodJson);
    });
    return updated?.metadata.uid === rt.uid ? (updated as PodJson) : undefined;
  }

  private current(rt: PodRuntime): PodJson | undefined {
    const pod = this.cluster.get("pods", rt.namespace, rt.name);
    return pod?.metadata.uid === rt.uid ? (pod as PodJson) : undefined;
  }

  private event(
    pod: PodJson,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    container?: string,
    component = "kubelet",
  ): void {
    this.events.record(
      POD,
      pod,
      type,
      reason,
      message,
      component,
      container === undefined ? undefined : `spec.containers{${container}}`,
    );
  }

  /** GPUs held on `node` by pods that have not ended (but `except`). */
  private gpusInUse(node: string, except: PodJson): number {
    let used = 0;
    for (const o of this.cluster.store("pods").objects.values()) {
      const p = o as PodJson;
      if (p === except || p.spec.nodeName !== node) continue;
      const phase = p.status?.phase;
      if (phase === "Succeeded" || phase === "Failed") continue;
      used += gpusOf(p);
    }
    return used;
  }

  private schedule(rt: PodRuntime): void {
    const pod = this.current(rt);
    if (rt.done || pod === undefined || pod.metadata.deletionTimestamp !== undefined) return;
    const blocked = rt.containers.find((c) => c.script.unschedulable !== undefined);
    const wanted = gpusOf(pod);
    let node = this.nodeName;
    let noGpu: string | undefined;
    if (wanted > 0 && this.gpuNodes.length > 0) {
      const fit = this.gpuNodes.find((n) => n.gpus - this.gpusInUse(n.name, pod) >= wanted);
      if (fit) node = fit.name;
      else
        noGpu = `0/${this.gpuNodes.length + 1} nodes are available: ${this.gpuNodes.length + 1} Insufficient nvidia.com/gpu. preemption: 0/${this.gpuNodes.length + 1} nodes are available: ${this.gpuNodes.length + 1} No preemption victims found for incoming pod.`;
    }
    if (blocked !== undefined || noGpu !== undefined) {
      const message =
        blocked?.script.unschedulable ||
        noGpu ||
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
      const updated = this.updatePod(rt, (p) => {
        const status = ensureStatus(p);
        setCondition(status, "PodScheduled", "False", "Unschedulable", message);
      });
      if (updated !== undefined) {
        this.event(updated, "Warning", "FailedScheduling", message, undefined, "default-scheduler");
      }
      return;
    }
    const n = this.podCount++;
    rt.podIP = `10.${244 + ((n >> 16) & 7)}.${(n >> 8) & 255}.${n & 255}`;
    const now = nowSeconds();
    const updated = this.updatePod(rt, (p) => {
      p.spec.nodeName = node;
      const status = ensureStatus(p);
      status.phase = "Pending";
      status.hostIP = "10.0.0.1";
      status.hostIPs = [{ ip: "10.0.0.1" }];
      status.startTime = now;
      setCondition(status, "PodReadyToStartContainers", "False");
      setCondition(status, "Initialized", "True");
      setCondition(status, "Ready", "False", "ContainersNotReady", notReadyMessage(rt));
      setCondition(status, "ContainersReady", "False", "ContainersNotReady", notReadyMessage(rt));
      setCondition(status, "PodScheduled", "True");
      status.containerStatuses = containerStatuses(rt);
      const init = p.spec.initContainers;
      if (init !== undefined && init.length > 0) {
        // Init containers are not scripted: they complete at once.
        status.initContainerStatuses = init.map((c) => ({
          name: c.name,
          image: c.image ?? "",
          imageID: imageID(c.image ?? ""),
          containerID: `containerd://init-${n}-${c.name}`,
          ready: true,
          started: false,
          restartCount: 0,
          state: {
            terminated: { exitCode: 0, reason: "Completed", startedAt: now, finishedAt: now },
          },
          lastState: {},
        }));
      }
    });
    if (updated === undefined) return;
    this.event(
      updated,
      "Normal",
      "Scheduled",
      `Successfully assigned ${rt.namespace}/${rt.name} to ${this.nodeName}`,
      undefined,
      "default-scheduler",
    );
    for (const c of rt.containers) {
      if (!this.imagesPresent.has(c.image)) {
        this.event(updated, "Normal", "Pulling", `Pulling image "${c.image}"`, c.name);
      }
    }
    const startMs = Math.max(...rt.containers.map((c) => c.script.startMs), 0);
    this.scheduler.after(startMs, () => this.start(rt));
    const deadline = updated.spec.activeDeadlineSeconds;
    if (typeof deadline === "number" && deadline > 0) {
      this.scheduler.after(deadline * 1000, () => this.deadlineExceeded(rt));
    }
  }

  private start(rt: PodRuntime): void {
    if (rt.done) return;
    const failing = rt.containers.filter((c) => c.script.imagePullError !== undefined);
    if (failing.length > 0) {
      this.pullFailed(rt, failing);
      return;
    }
    const now = nowSeconds();
    for (const c of rt.containers) c.state = { running: { startedAt: now } };
    const updated = this.updatePod(rt, (p) => {
      const status = ensureStatus(p);
      status.phase = "Running";
      status.podIP = rt.podIP;
      status.podIPs = [{ ip: status.podIP }];
      setCondition(status, "PodReadyToStartContainers", "True");
      setCondition(status, "Ready", "True");
      setCondition(status, "ContainersReady", "True");
      status.containerStatuses = containerStatuses(rt);
    });
    if (updated === undefined) return;
    for (const c of rt.containers) {
      const message = this.imagesPresent.has(c.image)
        ? `Container image "${c.image}" already present on machine`
        : `Successfully pulled image "${c.image}" in ${c.script.startMs}ms`;
      this.imagesPresent.add(c.image);
      this.event(updated, "Normal", "Pulled", message, c.name);
      this.event(updated, "Normal", "Created", `Created container: ${c.name}`, c.name);
      this.event(updated, "Normal", "Started", `Started container ${c.name}`, c.name);
    }
    for (const c of rt.containers) {
      const { logs, runMs, runForever, spreadLogs } = c.script;
      if (!spreadLogs || runForever || runMs === 0) {
        for (const line of logs) this.print(rt, c, line);
      } else {
        logs.forEach((line, i) => {
          const at = (runMs * i) / logs.length;
          if (i === 0) this.print(rt, c, line);
          else this.scheduler.after(at, () => this.print(rt, c, line));
        });
      }
      if (!runForever) this.scheduler.after(runMs, () => this.exit(rt, c));
    }
  }

  private pullFailed(rt: PodRuntime, failing: ContainerRuntime[]): void {
    const messageOf = (c: ContainerRuntime): string =>
      c.script.imagePullError ||
      `rpc error: code = NotFound desc = failed to pull and unpack image "${c.image}": failed to resolve reference "${c.image}": not found`;
    for (const c of failing)
      c.state = { waiting: { reason: "ErrImagePull", message: messageOf(c) } };
    const updated = this.updatePod(rt, (p) => {
      ensureStatus(p).containerStatuses = containerStatuses(rt);
    });
    if (updated === undefined) return;
    for (const c of failing) {
      this.event(
        updated,
        "Warning",
        "Failed",
        `Failed to pull image "${c.image}": ${messageOf(c)}`,
        c.name,
      );
      this.event(updated, "Warning", "Failed", "Error: ErrImagePull", c.name);
    }
    const backOffMs = Math.max(10, ...failing.map((c) => c.script.startMs));
    this.scheduler.after(backOffMs, () => {
      if (rt.done) return;
      for (const c of failing) {
        c.state = {
          waiting: { reason: "ImagePullBackOff", message: `Back-off pulling image "${c.image}"` },
        };
      }
      const backedOff = this.updatePod(rt, (p) => {
        ensureStatus(p).containerStatuses = containerStatuses(rt);
      });
      if (backedOff === undefined) return;
      for (const c of failing) {
        this.event(backedOff, "Normal", "BackOff", `Back-off pulling image "${c.image}"`, c.name);
        this.event(backedOff, "Warning", "Failed", "Error: ImagePullBackOff", c.name);
      }
    });
  }

  private print(rt: PodRuntime, c: ContainerRuntime, text: string): void {
    if (c.state.terminated !== undefined) return;
    const line = { time: nowNanos(), text };
    c.logs.push(line);
    for (const f of rt.followers) if (f.container === c.name) f.write(line);
  }

  private exit(rt: PodRuntime, c: ContainerRuntime): void {
    if (rt.done || c.state.running === undefined) return;
    const end: ContainerEnd = { exitCode: c.script.exitCode };
    if (c.script.reason !== undefined) end.reason = c.script.reason;
    if (c.script.terminationMessage !== undefined) end.message = c.script.terminationMessage;
    this.finish(rt, new Map([[c.name, end]]));
  }

  private deadlineExceeded(rt: PodRuntime): void {
    if (rt.done) return;
    const pod = this.current(rt);
    if (pod !== undefined) {
      this.event(
        pod,
        "Warning",
        "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline",
      );
    }
    this.endPod(
      rt.uid,
      { exitCode: 137, reason: "Error" },
      {
        reason: "DeadlineExceeded",
        message: "Pod was active on the node longer than the specified deadline",
      },
    );
  }

  /** Terminates the given containers; when none is left running, the pod reaches its phase. */
  private finish(
    rt: PodRuntime,
    results: Map<string, ContainerEnd>,
    podFailure?: PodFailure,
  ): void {
    const now = nowSeconds();
    for (const c of rt.containers) {
      const end = results.get(c.name);
      if (end === undefined || c.state.terminated !== undefined) continue;
      let message = end.message;
      if (message === undefined && end.exitCode !== 0 && c.fallbackToLogs && c.logs.length > 0) {
        message = c.logs
          .slice(-80)
          .map((l) => l.text)
          .join("\n")
          .slice(-2048);
      }
      const terminated: NonNullable<ContainerStateJson["terminated"]> = {
        exitCode: end.exitCode,
        reason: end.reason ?? (end.exitCode === 0 ? "Completed" : "Error"),
        finishedAt: now,
        containerID: c.containerID,
      };
      if (c.state.running !== undefined) terminated.startedAt = c.state.running.startedAt;
      if (message !== undefined) terminated.message = message;
      c.state = { terminated };
    }
    const allEnded = rt.containers.every((c) => c.state.terminated !== undefined);
    if (allEnded) rt.done = true;
    this.updatePod(rt, (p) => {
      const status = ensureStatus(p);
      status.containerStatuses = containerStatuses(rt);
      if (!allEnded) {
        setCondition(status, "Ready", "False", "ContainersNotReady", notReadyMessage(rt));
        setCondition(status, "ContainersReady", "False", "ContainersNotReady", notReadyMessage(rt));
        return;
      }
      const failed =
        podFailure !== undefined || rt.containers.some((c) => c.state.terminated?.exitCode !== 0);
      status.phase = failed ? "Failed" : "Succeeded";
      if (podFailure?.reason !== undefined) status.reason = podFailure.reason;
      if (podFailure?.message !== undefined) status.message = podFailure.message;
      setCondition(status, "PodReadyToStartContainers", "False");
      setCondition(status, "Ready", "False", "PodCompleted");
      setCondition(status, "ContainersReady", "False", "PodCompleted");
    });
    for (const f of [...rt.followers]) {
      if (results.has(f.container) || allEnded) {
        rt.followers.delete(f);
        f.end();
      }
    }
  }
}

function ensureStatus(pod: PodJson): PodStatusJson {
  pod.status ??= { phase: "Pending" };
  return pod.status;
}

function notReadyMessage(rt: PodRuntime): string {
  const names = rt.containers.filter((c) => c.state.running === undefined).map((c) => c.name);
  return `containers with unready status: [${names.join(" ")}]`;
}

function containerStatuses(rt: PodRuntime): ContainerStatusJson[] {
  return rt.containers.map((c) => {
    const started = c.state.waiting === undefined;
    const status: ContainerStatusJson = {
      name: c.name,
      image: c.image,
      imageID: started ? c.imageID : "",
      ready: c.state.running !== undefined,
      started: c.state.running !== undefined,
      restartCount: 0,
      state: c.state,
      lastState: {},
    };
    if (started) status.containerID = c.containerID;
    return status;
  });
}

/** Sets a condition, keeping lastTransitionTime when its status does not change. */
export function setCondition(
  status: { conditions?: ConditionJson[] },
  type: string,
  value: "True" | "False",
  reason?: string,
  message?: string,
): void {
  const conditions = (status.conditions ??= []);
  const now = nowSeconds();
  const existing = conditions.find((c) => c.type === type);
  const next: ConditionJson = {
    type,
    status: value,
    lastProbeTime: null,
    lastTransitionTime:
      existing !== undefined &&
      existing.status === value &&
      existing.lastTransitionTime !== undefined
        ? existing.lastTransitionTime
        : now,
  };
  if (reason !== undefined) next.reason = reason;
  if (message !== undefined) next.message = message;
  if (existing === undefined) conditions.push(next);
  else conditions.splice(conditions.indexOf(existing), 1, next);
}

/** A simulated node with GPU capacity. */
export interface GpuNodeSpec {
  name: string;
  /** `nvidia.com/gpu` capacity (and allocatable). */
  gpus: number;
  /** The `nvidia.com/gpu.product` label, e.g. `NVIDIA-A100-SXM4-80GB`. */
  product?: string;
}

/** `nvidia.com/gpu` a pod asks for: the sum of its containers' limits (else requests). */
export function gpusOf(pod: PodJson): number {
  let n = 0;
  for (const c of pod.spec.containers ?? []) {
    const r = (
      c as { resources?: { limits?: Record<string, unknown>; requests?: Record<string, unknown> } }
    ).resources;
    const v = r?.limits?.["nvidia.com/gpu"] ?? r?.requests?.["nvidia.com/gpu"];
    n += Number(v ?? 0) || 0;
  }
  return n;
}
