// What Kubernetes objects mean for a task attempt (SPEC.md "Resource types and completion"), as
// pure functions of the objects: no I/O, no clock. What they say is fed to the attempt core
// (src/attempt/core.ts) as facts.
//
// - Pod: phase Succeeded → SUCCEEDED, phase Failed → FAILED; exit code and reason from the main
//   container's terminated state (a pod-level reason such as Evicted or DeadlineExceeded wins).
// - Job: condition Complete → SUCCEEDED, condition Failed → FAILED.
// - TFJob, PyTorchJob, MPIJob, ElasticJob: condition Succeeded → SUCCEEDED, Failed → FAILED —
//   never "whatever the first pod did", which was the original's bug.
// - RUNNING: as soon as any pod of the attempt runs.
// - Stuck (ERROR once it lasts past pending_timeout): a container waiting on an image it cannot
//   pull, a container config that cannot be created, or PodScheduled=False/Unschedulable.
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import {
  attemptLabel,
  managedByLabel,
  managedByValue,
  runLabel,
  taskLabel,
} from "@odin/k8s-manifests";
import type { ResourceType } from "@odin/pipeline-spec";
import type { AttemptId, Observation, Stuck } from "../attempt/core.js";
import type { ObjectEvent } from "../backend.js";

// Defined with Odin's other keys in one place; re-exported for the backend's readers.
export {
  cancelledAnnotation,
  legacyPendingTimeoutAnnotation,
  pendingTimeoutAnnotation,
} from "@odin/k8s-manifests";

/** Label with a training pod's role (`master` on a PyTorchJob master, MPIJob launcher, TFJob chief). */
export const trainingJobRoleLabel = "training.kubeflow.org/job-role";
/** Label with a training pod's index within its replica type. */
export const trainingReplicaIndexLabel = "training.kubeflow.org/replica-index";

/** Waiting reasons of a container that cannot start without outside help. */
export const stuckWaitingReasons: ReadonlySet<string> = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
]);

/** Longest message copied from Kubernetes into an event (termination messages can be log tails). */
export const maxMessageLength = 2048;

/** A Kubernetes time: a Date from the typed client, an RFC 3339 string from a watch. */
type KubeTime = Date | string | undefined | null;

/** Metadata fields the launcher reads. */
export interface MetaLike {
  name?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { kind?: string; name?: string; controller?: boolean }[];
  deletionTimestamp?: KubeTime;
  creationTimestamp?: KubeTime;
  resourceVersion?: string;
}

/** Any Kubernetes object as the watches deliver it. */
export interface ObjectLike {
  apiVersion?: string;
  kind?: string;
  metadata?: MetaLike;
  spec?: unknown;
  status?: unknown;
}

/** A status condition (Jobs, training jobs, pods). */
export interface ConditionLike {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: KubeTime;
  lastUpdateTime?: KubeTime;
}

/** A Date from a Kubernetes time, or undefined. */
export function toDate(value: KubeTime): Date | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The attempt an object (or pod) belongs to, or undefined when it is not one of Odin's. */
export function attemptIdOf(meta: MetaLike | undefined): AttemptId | undefined {
  const labels = meta?.labels;
  if (labels === undefined || labels[managedByLabel] !== managedByValue) return undefined;
  const runId = labels[runLabel];
  const task = labels[taskLabel];
  const attempt = Number(labels[attemptLabel]);
  if (!runId || !task || !Number.isSafeInteger(attempt) || attempt < 1) return undefined;
  return { runId, task, attempt };
}

function clip(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === "") return undefined;
  return t.length > maxMessageLength ? `${t.slice(0, maxMessageLength - 1)}…` : t;
}

/** A JSON object's text when `message` is one (a task's outputs), else undefined. */
export function outputsFromTerminationMessage(message: string | undefined): string | undefined {
  const text = message?.trim();
  if (!text?.startsWith("{")) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? JSON.stringify(parsed)
      : undefined;
  } catch {
    return undefined;
  }
}

type ContainerStatus = NonNullable<NonNullable<V1Pod["status"]>["containerStatuses"]>[number];

/**
 * The digest in a container status's `imageID` (`docker-pullable://repo@sha256:…`,
 * `repo@sha256:…` or a bare `sha256:…`): what the cluster actually ran, whatever tag was asked for.
 */
export function digestOfImageId(imageId: string | undefined): string | undefined {
  const m = /(sha256:[0-9a-f]{64})$/.exec(imageId ?? "");
  return m?.[1];
}

/** The status of a pod's main container: the first of `spec.containers` (init containers aside). */
export function mainContainerStatus(pod: V1Pod): ContainerStatus | undefined {
  const statuses = pod.status?.containerStatuses ?? [];
  const main = pod.spec?.containers[0]?.name;
  return statuses.find((s) => s.name === main) ?? statuses[0];
}

/** True when the pod has ended (Succeeded or Failed). */
export function podEnded(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}

/** The attempt's outcome told by a finished pod; undefined while it has not finished. */
export function podOutcome(pod: V1Pod): Observation | undefined {
  const phase = pod.status?.phase;
  if (phase !== "Succeeded" && phase !== "Failed") return undefined;
  const terminated = mainContainerStatus(pod)?.state?.terminated;
  const time = toDate(terminated?.finishedAt) ?? undefined;
  if (phase === "Succeeded") {
    const outputsJson = outputsFromTerminationMessage(terminated?.message);
    const imageDigest = digestOfImageId(mainContainerStatus(pod)?.imageID);
    return {
      state: "SUCCEEDED",
      exitCode: terminated?.exitCode ?? 0,
      ...(terminated?.reason ? { reason: terminated.reason } : {}),
      ...(time ? { time } : {}),
      ...(outputsJson ? { outputsJson } : {}),
      ...(imageDigest ? { imageDigest } : {}),
    };
  }
  const reason = pod.status?.reason || terminated?.reason || "Failed";
  const detail =
    clip(pod.status?.message) ??
    clip(terminated?.message) ??
    (terminated ? `exited with code ${terminated.exitCode}` : undefined);
  return {
    state: "FAILED",
    ...(terminated ? { exitCode: terminated.exitCode } : {}),
    reason,
    message: `pod ${pod.metadata?.name ?? "?"} failed (${reason})${detail ? `: ${detail}` : ""}`,
    ...(time ? { time } : {}),
  };
}

/** True when the pod runs now (phase Running and not being deleted). */
export function podRunning(pod: V1Pod): boolean {
  return pod.status?.phase === "Running" && !pod.metadata?.deletionTimestamp;
}

/** When the pod's main container started, when Kubernetes says. */
export function podStartTime(pod: V1Pod): Date | undefined {
  return (
    toDate(mainContainerStatus(pod)?.state?.running?.startedAt) ?? toDate(pod.status?.startTime)
  );
}

/** Whether a pending pod is stuck on scheduling or on its images / container config. */
export function podStuck(pod: V1Pod): Stuck | undefined {
  if (pod.status?.phase !== "Pending" || pod.metadata?.deletionTimestamp) return undefined;
  const scheduled = pod.status.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason === "Unschedulable") {
    const since = toDate(scheduled.lastTransitionTime);
    return {
      reason: "Unschedulable",
      message: clip(scheduled.message) ?? "no node can run the pod",
      ...(since ? { since } : {}),
    };
  }
  for (const s of [
    ...(pod.status.initContainerStatuses ?? []),
    ...(pod.status.containerStatuses ?? []),
  ]) {
    const waiting = s.state?.waiting;
    if (waiting?.reason && stuckWaitingReasons.has(waiting.reason)) {
      return {
        reason: waiting.reason,
        message: clip(waiting.message) ?? `container ${s.name}: ${waiting.reason}`,
      };
    }
  }
  return undefined;
}

function trueCondition(obj: ObjectLike, types: readonly string[]): ConditionLike | undefined {
  const conditions = (obj.status as { conditions?: ConditionLike[] } | undefined)?.conditions;
  if (!Array.isArray(conditions)) return undefined;
  // The last matching condition wins: operators append, and a job that failed after a restart
  // still lists its earlier conditions.
  for (let i = conditions.length - 1; i >= 0; i--) {
    const c = conditions[i];
    if (c && c.status === "True" && types.includes(c.type ?? "")) return c;
  }
  return undefined;
}

function podRole(pod: V1Pod): number {
  const labels = pod.metadata?.labels ?? {};
  if (labels[trainingJobRoleLabel] === "master") return 0;
  if ((labels[trainingReplicaIndexLabel] ?? "0") === "0") return 1;
  return 2;
}

function byRoleThenName(a: V1Pod, b: V1Pod): number {
  return podRole(a) - podRole(b) || (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");
}

/** The pod whose container tells a multi-pod attempt's exit code: a failed one, the master first. */
export function representativePod(
  pods: readonly V1Pod[],
  state: "SUCCEEDED" | "FAILED",
): V1Pod | undefined {
  const phase = state === "SUCCEEDED" ? "Succeeded" : "Failed";
  return pods.filter((p) => p.status?.phase === phase).sort(byRoleThenName)[0];
}

/** The terminal conditions of each owner type: [done, failed]. */
const terminalConditions: Readonly<Record<Exclude<ResourceType, "Pod">, [string, string]>> = {
  Job: ["Complete", "Failed"],
  TFJob: ["Succeeded", "Failed"],
  PyTorchJob: ["Succeeded", "Failed"],
  MPIJob: ["Succeeded", "Failed"],
  ElasticJob: ["Succeeded", "Failed"],
};

/** True when a Job or training job has reached a terminal condition. */
export function ownerEnded(kind: Exclude<ResourceType, "Pod">, obj: ObjectLike): boolean {
  return trueCondition(obj, terminalConditions[kind]) !== undefined;
}

/**
 * The outcome of a Job or training job from its conditions, with exit code, reason and outputs
 * from its pods when they are known. `detailed` says whether a pod supplied them (when false, the
 * caller may look the pods up and ask again).
 */
export function ownerOutcome(
  kind: Exclude<ResourceType, "Pod">,
  obj: ObjectLike,
  pods: readonly V1Pod[],
): (Observation & { detailed: boolean }) | undefined {
  const [doneType, failedType] = terminalConditions[kind];
  const condition = trueCondition(obj, [doneType, failedType]);
  if (condition === undefined) return undefined;
  const time = toDate(condition.lastTransitionTime) ?? toDate(condition.lastUpdateTime);
  const name = obj.metadata?.name ?? "?";
  if (condition.type === doneType) {
    const pod = representativePod(pods, "SUCCEEDED");
    const terminated = pod ? mainContainerStatus(pod)?.state?.terminated : undefined;
    const outputsJson = outputsFromTerminationMessage(terminated?.message);
    const imageDigest = pod ? digestOfImageId(mainContainerStatus(pod)?.imageID) : undefined;
    return {
      state: "SUCCEEDED",
      exitCode: terminated?.exitCode ?? 0,
      ...(time ? { time } : {}),
      ...(outputsJson ? { outputsJson } : {}),
      ...(imageDigest ? { imageDigest } : {}),
      detailed: terminated !== undefined,
    };
  }
  const pod = representativePod(pods, "FAILED");
  const podResult = pod ? podOutcome(pod) : undefined;
  const conditionReason = condition.reason || "Failed";
  // A deadline is the owner's decision; otherwise the pod says best what went wrong (OOMKilled…).
  const reason =
    conditionReason === "DeadlineExceeded"
      ? conditionReason
      : (podResult?.reason ?? conditionReason);
  const parts = [
    `${kind} ${name} failed (${conditionReason})${condition.message ? `: ${clip(condition.message)}` : ""}`,
    ...(podResult?.message ? [podResult.message] : []),
  ];
  return {
    state: "FAILED",
    ...(podResult?.exitCode !== undefined ? { exitCode: podResult.exitCode } : {}),
    reason,
    message: clip(parts.join("; ")) ?? "",
    ...(time ? { time } : {}),
    detailed: podResult?.exitCode !== undefined,
  };
}

/** A Kubernetes Event about one of an attempt's objects, as the launcher reports it. */
export function objectEventOf(event: CoreV1Event, attempt: number): ObjectEvent {
  const time =
    toDate(event.lastTimestamp) ??
    toDate(event.eventTime) ??
    toDate(event.firstTimestamp) ??
    toDate(event.metadata.creationTimestamp) ??
    new Date(0);
  return {
    time,
    type: event.type === "Warning" ? "Warning" : "Normal",
    reason: event.reason ?? "",
    message: event.message ?? "",
    objectKind: event.involvedObject.kind ?? "",
    objectName: event.involvedObject.name ?? "",
    source: event.source?.component ?? event.reportingComponent ?? "",
    count: event.count ?? 1,
    attempt,
  };
}
