// The shapes of the rendered objects the checks read (only the fields they use), and an index of
// a rendered overlay by kind and name.
import type { K8sObject } from "./render.js";

/** `env[]` entry of a container. */
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: KeyRef;
    configMapKeyRef?: KeyRef;
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: { resource: string };
  };
}

/** A reference to one key of a Secret or ConfigMap. */
export interface KeyRef {
  name: string;
  key: string;
  optional?: boolean;
}

/** A probe; the checks understand the grpc, httpGet and tcpSocket handlers. */
export interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { port: number | string; path?: string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
}

/** A container of a pod template. */
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  envFrom?: unknown[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  resources?: {
    requests?: Record<string, string | number>;
    limits?: Record<string, string | number>;
  };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
}

/** A pod volume (the sources the checks resolve). */
export interface Volume {
  name: string;
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  secret?: { secretName: string; items?: { key: string; path: string }[]; optional?: boolean };
  configMap?: { name: string; items?: { key: string; path: string }[]; optional?: boolean };
  emptyDir?: Record<string, unknown>;
}

/** The pod spec of a workload's template. */
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    runAsGroup?: number;
    fsGroup?: number;
  };
}

/** A Deployment or StatefulSet. */
export interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    strategy?: {
      type?: string;
      rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string };
    };
    /** StatefulSets: the headless Service that names their pods, and how pods are started. */
    serviceName?: string;
    podManagementPolicy?: string;
    template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec };
    volumeClaimTemplates?: PersistentVolumeClaim[];
  };
}

/** A PersistentVolumeClaim (also a StatefulSet's claim template). */
export interface PersistentVolumeClaim {
  metadata: { name: string };
  spec?: {
    accessModes?: string[];
    resources?: { requests?: { storage?: string } };
  };
}

/** A Service. */
export interface Service extends K8sObject {
  spec: {
    type?: string;
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    selector?: Record<string, string>;
    ports?: { name?: string; port: number; targetPort?: number | string }[];
  };
}

/** A rule of a Role or ClusterRole. */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** A RoleBinding or ClusterRoleBinding. */
export interface RoleBinding extends K8sObject {
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

/** Kinds that live in a namespace (everything the overlays render except these). */
export const clusterScopedKinds: ReadonlySet<string> = new Set([
  "Namespace",
  "ClusterRole",
  "ClusterRoleBinding",
  "PersistentVolume",
  "StorageClass",
  "CustomResourceDefinition",
  "PriorityClass",
  "IngressClass",
]);

/** Kinds whose pod template the checks inspect. */
export const workloadKinds: ReadonlySet<string> = new Set(["Deployment", "StatefulSet"]);

/** `Kind/name`, how problems name an object. */
export function refOf(o: K8sObject): string {
  return `${o.kind}/${o.metadata.name}`;
}

/** A rendered overlay, indexed. */
export class Rendered {
  private readonly byKey = new Map<string, K8sObject>();

  constructor(readonly objects: readonly K8sObject[]) {
    for (const o of objects) this.byKey.set(`${o.kind}/${o.metadata.name}`, o);
  }

  /** The object of a kind and name, if rendered. */
  get<T extends K8sObject = K8sObject>(kind: string, name: string): T | undefined {
    return this.byKey.get(`${kind}/${name}`) as T | undefined;
  }

  /** Every object of a kind. */
  all<T extends K8sObject = K8sObject>(kind: string): T[] {
    return this.objects.filter((o) => o.kind === kind) as T[];
  }

  /** Deployments and StatefulSets. */
  workloads(): Workload[] {
    return this.objects.filter((o) => workloadKinds.has(o.kind)) as Workload[];
  }

  /** The decoded entries of a Secret (`data` is base64, `stringData` plain), or undefined. */
  secretData(name: string): Map<string, string> | undefined {
    const s = this.get(`Secret`, name);
    if (s === undefined) return undefined;
    const out = new Map<string, string>();
    const data = (s.data ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(data)) out.set(k, Buffer.from(v, "base64").toString());
    const stringData = (s.stringData ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(stringData)) out.set(k, v);
    return out;
  }

  /** The entries of a ConfigMap (`data` and `binaryData` keys), or undefined. */
  configMapData(name: string): Map<string, string> | undefined {
    const c = this.get(`ConfigMap`, name);
    if (c === undefined) return undefined;
    const out = new Map<string, string>();
    for (const [k, v] of Object.entries((c.data ?? {}) as Record<string, string>)) out.set(k, v);
    const binary = (c.binaryData ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(binary)) out.set(k, Buffer.from(v, "base64").toString());
    return out;
  }
}
