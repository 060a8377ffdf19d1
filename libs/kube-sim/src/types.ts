// JSON shapes of the objects kube-sim stores. They mirror the Kubernetes wire format (timestamps are
// RFC 3339 strings), not the client's deserialized classes (which use Date), and list only the
// fields the simulator reads or writes; everything else a client sends is kept untouched.

/** Reference from a dependent object to the object that owns it. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** `metadata` of a stored object. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [key: string]: unknown;
}

/** Any object kube-sim stores: pods, jobs, training jobs, events, namespaces. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** A container of a pod spec. */
export interface ContainerJson {
  name: string;
  image?: string;
  terminationMessagePolicy?: string;
  [key: string]: unknown;
}

/** `spec` of a pod. */
export interface PodSpecJson {
  containers: ContainerJson[];
  initContainers?: ContainerJson[];
  restartPolicy?: string;
  nodeName?: string;
  activeDeadlineSeconds?: number;
  [key: string]: unknown;
}

/** One of the three states of a container. */
export interface ContainerStateJson {
  waiting?: { reason: string; message?: string };
  running?: { startedAt: string };
  terminated?: {
    exitCode: number;
    reason: string;
    message?: string;
    startedAt?: string;
    finishedAt: string;
    containerID?: string;
  };
}

/** `status.containerStatuses[]` of a pod. */
export interface ContainerStatusJson {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: ContainerStateJson;
  lastState: ContainerStateJson;
}

/** A condition of a pod or a job. */
export interface ConditionJson {
  type: string;
  status: "True" | "False" | "Unknown";
  reason?: string;
  message?: string;
  lastProbeTime?: string | null;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
}

/** `status` of a pod. */
export interface PodStatusJson {
  phase: "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
  conditions?: ConditionJson[];
  containerStatuses?: ContainerStatusJson[];
  initContainerStatuses?: ContainerStatusJson[];
  hostIP?: string;
  podIP?: string;
  podIPs?: { ip: string }[];
  startTime?: string;
  reason?: string;
  message?: string;
  qosClass?: string;
  [key: string]: unknown;
}

/** A pod as stored. */
export interface PodJson extends KubeObject {
  spec: PodSpecJson;
  status?: PodStatusJson;
}

/** A pod template (of a Job or of a training job replica). */
export interface PodTemplateJson {
  metadata?: ObjectMeta;
  spec: PodSpecJson;
}

/** A batch/v1 Job as stored. */
export interface JobJson extends KubeObject {
  spec: {
    template: PodTemplateJson;
    backoffLimit?: number;
    activeDeadlineSeconds?: number;
    [key: string]: unknown;
  };
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    ready?: number;
    startTime?: string;
    completionTime?: string;
    conditions?: ConditionJson[];
    [key: string]: unknown;
  };
}

/** One entry of a training job's replica specs (`Worker`, `Master`, `Launcher`, …). */
export interface ReplicaSpecJson {
  replicas?: number;
  restartPolicy?: string;
  template: PodTemplateJson;
}

/** Per replica type counters of a training job's status. */
export interface ReplicaStatusJson {
  active?: number;
  succeeded?: number;
  failed?: number;
}

/** A Kubeflow training job (TFJob, PyTorchJob, MPIJob) or an ElasticJob as stored. */
export interface TrainingJobJson extends KubeObject {
  spec: {
    runPolicy?: { cleanPodPolicy?: string; activeDeadlineSeconds?: number; [key: string]: unknown };
    [key: string]: unknown;
  };
  status?: {
    conditions?: ConditionJson[];
    replicaStatuses?: Record<string, ReplicaStatusJson>;
    startTime?: string;
    completionTime?: string;
    [key: string]: unknown;
  };
}

/** A core/v1 Event as stored. */
export interface EventJson extends KubeObject {
  involvedObject: {
    kind: string;
    namespace?: string;
    name: string;
    uid: string;
    apiVersion: string;
    resourceVersion?: string;
    fieldPath?: string;
  };
  reason: string;
  message: string;
  type: "Normal" | "Warning";
  source: { component: string; host?: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  reportingComponent: string;
  reportingInstance: string;
}

/** Kubernetes `Status`: the body of every error response. */
export interface StatusJson {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message: string;
  reason: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: { reason: string; message: string; field: string }[];
    retryAfterSeconds?: number;
  };
  code: number;
}

/** True for a non-null object that is not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A value as text for an error message: strings as they are, anything else as JSON. */
export function show(value: unknown): string {
  return typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
}
