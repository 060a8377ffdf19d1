// Simulated controllers: the batch/v1 Job controller and the Kubeflow training operators (TFJob,
// PyTorchJob, MPIJob, ElasticJob). Each creates pods from its templates with owner references
// and the standard labels, follows their phases, and writes counters and conditions.
import type { EventRecorder } from "./events.js";
import { setCondition } from "./kubelet.js";
import { type ResourceDef, RESOURCES, apiVersionOf, resourceDef } from "./resources.js";
import type { Scheduler } from "./scheduler.js";
import { type Change, type Cluster, nowSeconds } from "./store.js";
import type {
  ConditionJson,
  JobJson,
  KubeObject,
  OwnerReference,
  PodJson,
  PodTemplateJson,
  ReplicaSpecJson,
  TrainingJobJson,
} from "./types.js";
import { isRecord } from "./types.js";

/** Label carrying a training job's name on its pods. */
export const TRAINING_JOB_NAME_LABEL = "training.kubeflow.org/job-name";
/** Label carrying a pod's replica type, lower case (`worker`, `master`, `launcher`). */
export const TRAINING_REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type";
/** Label carrying a pod's index within its replica type. */
export const TRAINING_REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index";
/** Label naming the operator that created a pod (`tfjob-controller`, …). */
export const TRAINING_OPERATOR_LABEL = "training.kubeflow.org/operator-name";
/** Label `master` on the coordinating pod: Master, Chief or Launcher. */
export const TRAINING_JOB_ROLE_LABEL = "training.kubeflow.org/job-role";

/** Creates a pod through the same path as the API (naming, validation, defaulting). */
export type PodCreator = (pod: PodJson) => PodJson;
/** Deletes a pod gracefully, as the garbage collector or a controller would. */
export type PodDeleter = (namespace: string, name: string) => void;

type Phase = "Pending" | "Running" | "Succeeded" | "Failed";

function phaseOf(pod: KubeObject): Phase {
  const status = pod["status"];
  const phase = isRecord(status) ? status["phase"] : undefined;
  return phase === "Running" || phase === "Succeeded" || phase === "Failed" ? phase : "Pending";
}

function controllerRef(pod: KubeObject): OwnerReference | undefined {
  return pod.metadata.ownerReferences?.find((r) => r.controller === true);
}

function ownerRef(def: ResourceDef, owner: KubeObject): OwnerReference {
  return {
    apiVersion: apiVersionOf(def),
    kind: def.kind,
    name: owner.metadata.name ?? "",
    uid: owner.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

function podFromTemplate(
  template: PodTemplateJson,
  namespace: string,
  labels: Record<string, string>,
  owner: OwnerReference,
  naming: { name: string } | { generateName: string },
): PodJson {
  const meta = template.metadata ?? {};
  const pod: PodJson = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...naming,
      namespace,
      labels: { ...(meta.labels ?? {}), ...labels },
      ownerReferences: [owner],
    },
    spec: structuredClone(template.spec),
  };
  if (meta.annotations !== undefined) pod.metadata.annotations = { ...meta.annotations };
  return pod;
}

interface OwnedPod {
  phase: Phase;
  replicaType: string;
}

interface OwnerRuntime {
  readonly def: ResourceDef;
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly pods: Map<string, OwnedPod>;
  done: boolean;
  /** batch/v1 Job only: pods failed so far. */
  failed: number;
}

/** Job controller + training operators over one cluster. */
export class Controllers {
  private readonly owners = new Map<string, OwnerRuntime>();

  constructor(
    private readonly cluster: Cluster,
    private readonly scheduler: Scheduler,
    private readonly events: EventRecorder,
    private readonly createPod: PodCreator,
    private readonly deletePod: PodDeleter,
  ) {
    cluster.onChange("jobs", (change) => this.onOwnerChange(change));
    for (const def of RESOURCES) {
      if (def.replicaSpecsKey !== undefined) {
        cluster.onChange(def.resource, (change) => this.onOwnerChange(change));
      }
    }
    cluster.onChange("pods", (change) => this.onPodChange(change));
  }

  private onOwnerChange(change: Change): void {
    const uid = change.object.metadata.uid ?? "";
    if (change.type === "DELETED") {
      this.owners.delete(uid);
      return;
    }
    if (change.type !== "ADDED") return;
    const def = resourceDef(change.object.kind ?? "");
    // Controllers react after the API call that created the object has returned.
    this.scheduler.after(0, () => {
      const current = this.cluster.getByUid(uid);
      if (current === undefined) return;
      if (def.resource === "jobs") this.startJob(current.object as JobJson);
      else this.startTrainingJob(def, current.object as TrainingJobJson);
    });
  }

  private runtime(def: ResourceDef, object: KubeObject): OwnerRuntime {
    const rt: OwnerRuntime = {
      def,
      uid: object.metadata.uid ?? "",
      namespace: object.metadata.namespace ?? "default",
      name: object.metadata.name ?? "",
      pods: new Map(),
      done: false,
      failed: 0,
    };
    this.owners.set(rt.uid, rt);
    return rt;
  }

  private updateOwner(
    rt: OwnerRuntime,
    mutate: (draft: KubeObject) => boolean | void,
  ): KubeObject | undefined {
    return this.cluster.update(rt.def.resource, rt.namespace, rt.name, (draft) => {
      if (draft.metadata.uid !== rt.uid) return false;
      return mutate(draft);
    });
  }

  private ownerObject(rt: OwnerRuntime): KubeObject | undefined {
    return this.cluster.getByUid(rt.uid)?.object;
  }

  private record(
    rt: OwnerRuntime,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    component: string,
  ): void {
    const owner = this.ownerObject(rt);
    if (owner !== undefined) this.events.record(rt.def, owner, type, reason, message, component);
  }

  private spawn(rt: OwnerRuntime, pod: PodJson, replicaType: string, component: string): void {
    let created: PodJson;
    try {
      created = this.createPod(pod);
    } catch (error) {
      this.record(
        rt,
        "Warning",
        "FailedCreate",
        `Error creating: ${(error as Error).message}`,
        component,
      );
      return;
    }
    rt.pods.set(created.metadata.uid ?? "", { phase: "Pending", replicaType });
    const reason = rt.def.resource === "jobs" ? "SuccessfulCreate" : "SuccessfulCreatePod";
    this.record(rt, "Normal", reason, `Created pod: ${created.metadata.name ?? ""}`, component);
  }

  // ---- batch/v1 Job ------------------------------------------------------------------------

  private startJob(job: JobJson): void {
    const rt = this.runtime(resourceDef("jobs"), job);
    this.updateOwner(rt, (draft) => {
      const status = ((draft as JobJson).status ??= {});
      status.startTime = nowSeconds();
      status.active = 0;
      status.ready = 0;
    });
    this.spawnJobPod(rt, job);
    const deadline = job.spec.activeDeadlineSeconds;
    if (typeof deadline === "number" && deadline > 0) {
      this.scheduler.after(deadline * 1000, () => {
        if (!rt.done)
          this.failJob(rt, "DeadlineExceeded", "Job was active longer than specified deadline");
      });
    }
  }

  private spawnJobPod(rt: OwnerRuntime, job: JobJson): void {
    const labels = {
      "batch.kubernetes.io/controller-uid": rt.uid,
      "batch.kubernetes.io/job-name": rt.name,
      "controller-uid": rt.uid,
      "job-name": rt.name,
    };
    const pod = podFromTemplate(job.spec.template, rt.namespace, labels, ownerRef(rt.def, job), {
      generateName: `${rt.name}-`,
    });
    this.spawn(rt, pod, "", "job-controller");
    this.refreshJobStatus(rt);
  }

  private refreshJobStatus(
    rt: OwnerRuntime,
    extra?: (status: NonNullable<JobJson["status"]>) => void,
  ): void {
    const phases = [...rt.pods.values()].map((p) => p.phase);
    this.updateOwner(rt, (draft) => {
      const before = JSON.stringify((draft as JobJson).status ?? {});
      const status = ((draft as JobJson).status ??= {});
      status.active = phases.filter((p) => p === "Pending" || p === "Running").length;
      status.ready = phases.filter((p) => p === "Running").length;
      const succeeded = phases.filter((p) => p === "Succeeded").length;
      if (succeeded > 0) status.succeeded = succeeded;
      if (rt.failed > 0) status.failed = rt.failed;
      extra?.(status);
      return JSON.stringify(status) !== before;
    });
  }

  private onJobPod(
    rt: OwnerRuntime,
    podUid: string,
    before: Phase | undefined,
    after: Phase | "Deleted",
  ): void {
    const job = this.ownerObject(rt) as JobJson | undefined;
    if (job === undefined) return;
    const terminalNow = after === "Succeeded" || after === "Failed" || after === "Deleted";
    const wasTerminal = before === "Succeeded" || before === "Failed";
    if (after === "Deleted") {
      rt.pods.delete(podUid);
      if (wasTerminal || rt.done) return;
    } else {
      const owned = rt.pods.get(podUid);
      if (owned !== undefined) owned.phase = after;
    }
    if (rt.done) return;
    if (!terminalNow || wasTerminal) {
      this.refreshJobStatus(rt);
      return;
    }
    if (after === "Succeeded") {
      rt.done = true;
      this.refreshJobStatus(rt, (status) => {
        status.completionTime = nowSeconds();
        setCondition(
          status,
          "SuccessCriteriaMet",
          "True",
          "CompletionsReached",
          "Reached expected number of succeeded pods",
        );
        setCondition(
          status,
          "Complete",
          "True",
          "CompletionsReached",
          "Reached expected number of succeeded pods",
        );
      });
      this.record(rt, "Normal", "Completed", "Job completed", "job-controller");
      return;
    }
    rt.failed++;
    const backoffLimit = typeof job.spec.backoffLimit === "number" ? job.spec.backoffLimit : 6;
    if (rt.failed > backoffLimit) {
      this.failJob(rt, "BackoffLimitExceeded", "Job has reached the specified backoff limit");
    } else {
      this.spawnJobPod(rt, job);
    }
  }

  private failJob(rt: OwnerRuntime, reason: string, message: string): void {
    rt.done = true;
    this.refreshJobStatus(rt, (status) => {
      setCondition(status, "FailureTarget", "True", reason, message);
      setCondition(status, "Failed", "True", reason, message);
    });
    this.record(rt, "Warning", reason, message, "job-controller");
    for (const key of this.cluster.podsOwnedBy(rt.uid)) {
      const [namespace, name] = splitKey(key);
      const pod = this.cluster.get("pods", namespace, name);
      if (pod !== undefined && (phaseOf(pod) === "Pending" || phaseOf(pod) === "Running")) {
        this.deletePod(namespace, name);
      }
    }
  }

  // ---- training jobs -----------------------------------------------------------------------

  private startTrainingJob(def: ResourceDef, job: TrainingJobJson): void {
    const rt = this.runtime(def, job);
    const component = `${def.kind.toLowerCase()}-controller`;
    const specs = replicaSpecs(def, job);
    const now = nowSeconds();
    this.updateOwner(rt, (draft) => {
      const status = ((draft as TrainingJobJson).status ??= {});
      status.startTime = now;
      status.replicaStatuses = Object.fromEntries(specs.map(([type]) => [type, {}]));
      setTrainingCondition(
        status,
        "Created",
        `${def.kind}Created`,
        `${def.kind} ${rt.name} is created.`,
      );
    });
    this.record(
      rt,
      "Normal",
      `${def.kind}Created`,
      `${def.kind} ${rt.name} is created.`,
      component,
    );
    const owner = ownerRef(def, job);
    for (const [type, spec] of specs) {
      const replicas = typeof spec.replicas === "number" ? spec.replicas : 1;
      const lower = type.toLowerCase();
      const restartPolicy = spec.restartPolicy === "ExitCode" ? "Never" : spec.restartPolicy;
      for (let i = 0; i < replicas; i++) {
        const labels: Record<string, string> = {
          [TRAINING_OPERATOR_LABEL]: component,
          [TRAINING_JOB_NAME_LABEL]: rt.name,
          [TRAINING_REPLICA_TYPE_LABEL]: lower,
          [TRAINING_REPLICA_INDEX_LABEL]: String(i),
        };
        if (lower === "master" || lower === "chief" || lower === "launcher") {
          labels[TRAINING_JOB_ROLE_LABEL] = "master";
        }
        const name = lower === "launcher" ? `${rt.name}-launcher` : `${rt.name}-${lower}-${i}`;
        const pod = podFromTemplate(spec.template, rt.namespace, labels, owner, { name });
        pod.spec.restartPolicy = restartPolicy ?? pod.spec.restartPolicy ?? "Never";
        this.spawn(rt, pod, type, component);
      }
    }
    if (rt.pods.size === 0 && !rt.done) {
      this.finishTraining(
        rt,
        "Failed",
        `${def.kind} ${rt.namespace}/${rt.name} has no replicas to run.`,
      );
    }
    const deadline = job.spec.runPolicy?.activeDeadlineSeconds;
    if (typeof deadline === "number" && deadline > 0) {
      this.scheduler.after(deadline * 1000, () => {
        if (!rt.done) {
          this.finishTraining(
            rt,
            "Failed",
            `${def.kind} ${rt.namespace}/${rt.name} has failed because it was active longer than specified deadline`,
            "DeadlineExceeded",
          );
          this.cleanPods(rt, "Running");
        }
      });
    }
  }

  private onTrainingPod(
    rt: OwnerRuntime,
    podUid: string,
    after: Phase | "Deleted",
    podName: string,
  ): void {
    const owned = rt.pods.get(podUid);
    if (owned === undefined) return;
    const kind = rt.def.kind;
    const id = `${rt.namespace}/${rt.name}`;
    if (after === "Deleted") {
      const wasTerminal = owned.phase === "Succeeded" || owned.phase === "Failed";
      if (rt.done || wasTerminal) return;
      owned.phase = "Failed";
      this.finishTraining(
        rt,
        "Failed",
        `${kind} ${id} has failed because pod ${podName} was deleted.`,
      );
      return;
    }
    owned.phase = after;
    if (rt.done) {
      this.refreshReplicaStatuses(rt);
      return;
    }
    const pods = [...rt.pods.values()];
    const failed = pods.filter((p) => p.phase === "Failed");
    const launcher = pods.find((p) => p.replicaType.toLowerCase() === "launcher");
    if (failed.length > 0) {
      const type = failed[0]?.replicaType ?? "Worker";
      const count = failed.filter((p) => p.replicaType === type).length;
      this.finishTraining(
        rt,
        "Failed",
        `${kind} ${id} has failed because ${count} ${type} replica(s) failed.`,
      );
    } else if (
      rt.def.resource === "mpijobs" && launcher !== undefined
        ? launcher.phase === "Succeeded"
        : pods.every((p) => p.phase === "Succeeded")
    ) {
      this.finishTraining(rt, "Succeeded", `${kind} ${id} successfully completed.`);
    } else {
      this.refreshReplicaStatuses(
        rt,
        pods.some((p) => p.phase === "Running"),
      );
    }
  }

  private refreshReplicaStatuses(
    rt: OwnerRuntime,
    running = false,
    extra?: (status: NonNullable<TrainingJobJson["status"]>) => void,
  ): void {
    const counts: Record<string, { active?: number; succeeded?: number; failed?: number }> = {};
    for (const p of rt.pods.values()) {
      const c = (counts[p.replicaType] ??= {});
      if (p.phase === "Running") c.active = (c.active ?? 0) + 1;
      if (p.phase === "Succeeded") c.succeeded = (c.succeeded ?? 0) + 1;
      if (p.phase === "Failed") c.failed = (c.failed ?? 0) + 1;
    }
    const kind = rt.def.kind;
    this.updateOwner(rt, (draft) => {
      const before = JSON.stringify((draft as TrainingJobJson).status ?? {});
      const status = ((draft as TrainingJobJson).status ??= {});
      status.replicaStatuses = { ...(status.replicaStatuses ?? {}), ...counts };
      if (running && !status.conditions?.some((c) => c.type === "Running" && c.status === "True")) {
        setTrainingCondition(
          status,
          "Running",
          `${kind}Running`,
          `${kind} ${rt.namespace}/${rt.name} is running.`,
        );
      }
      extra?.(status);
      return JSON.stringify(status) !== before;
    });
  }

  private finishTraining(
    rt: OwnerRuntime,
    outcome: "Succeeded" | "Failed",
    message: string,
    reason?: string,
  ): void {
    rt.done = true;
    const kind = rt.def.kind;
    const conditionReason = reason ?? `${kind}${outcome}`;
    this.refreshReplicaStatuses(rt, false, (status) => {
      const running = status.conditions?.find((c) => c.type === "Running");
      if (running !== undefined) {
        running.status = "False";
        running.lastTransitionTime = nowSeconds();
        running.lastUpdateTime = running.lastTransitionTime;
      }
      setTrainingCondition(status, outcome, conditionReason, message);
      status.completionTime = nowSeconds();
    });
    this.record(
      rt,
      outcome === "Failed" ? "Warning" : "Normal",
      conditionReason,
      message,
      `${kind.toLowerCase()}-controller`,
    );
    const job = this.ownerObject(rt) as TrainingJobJson | undefined;
    const policy = job?.spec.runPolicy?.cleanPodPolicy;
    if (policy === "All" || policy === "Running") this.cleanPods(rt, policy);
  }

  private cleanPods(rt: OwnerRuntime, policy: "All" | "Running"): void {
    for (const key of this.cluster.podsOwnedBy(rt.uid)) {
      const [namespace, name] = splitKey(key);
      const pod = this.cluster.get("pods", namespace, name);
      if (pod === undefined) continue;
      const phase = phaseOf(pod);
      if (policy === "All" || phase === "Pending" || phase === "Running")
        this.deletePod(namespace, name);
    }
  }

  // ---- pods --------------------------------------------------------------------------------

  private onPodChange(change: Change): void {
    const ref = controllerRef(change.object);
    if (ref === undefined) return;
    const rt = this.owners.get(ref.uid);
    if (rt === undefined) return;
    const podUid = change.object.metadata.uid ?? "";
    if (!rt.pods.has(podUid)) return;
    const before = change.previous === undefined ? undefined : phaseOf(change.previous);
    const after: Phase | "Deleted" = change.type === "DELETED" ? "Deleted" : phaseOf(change.object);
    if (change.type === "MODIFIED" && before === after) return;
    if (rt.def.resource === "jobs") this.onJobPod(rt, podUid, before, after);
    else this.onTrainingPod(rt, podUid, after, change.object.metadata.name ?? "");
  }
}

/** The replica specs of a training job, coordinating replica first. */
export function replicaSpecs(def: ResourceDef, job: KubeObject): [string, ReplicaSpecJson][] {
  const spec = job["spec"];
  const specs =
    isRecord(spec) && def.replicaSpecsKey !== undefined ? spec[def.replicaSpecsKey] : undefined;
  if (!isRecord(specs)) return [];
  const rank = (type: string): number =>
    ["master", "chief", "launcher"].includes(type.toLowerCase()) ? 0 : 1;
  return Object.entries(specs)
    .filter(
      (entry): entry is [string, ReplicaSpecJson] =>
        isRecord(entry[1]) && isRecord(entry[1]["template"]),
    )
    .sort((a, b) => rank(a[0]) - rank(b[0]));
}

function setTrainingCondition(
  status: { conditions?: ConditionJson[] },
  type: string,
  reason: string,
  message: string,
): void {
  const now = nowSeconds();
  const conditions = (status.conditions ??= []);
  const next: ConditionJson = {
    type,
    status: "True",
    reason,
    message,
    lastUpdateTime: now,
    lastTransitionTime: now,
  };
  const i = conditions.findIndex((c) => c.type === type);
  if (i >= 0) conditions.splice(i, 1, next);
  else conditions.push(next);
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}
