import type { ParameterSpec } from "./parameters.js";
import type { ScheduleSpec } from "./schedules.js";
import type { TriggerSpec } from "./triggers.js";

/** The Kubernetes shapes a task can run as. */
export type ResourceType = "Pod" | "Job" | "TFJob" | "PyTorchJob" | "MPIJob" | "ElasticJob";

/** Every resource type, in SPEC.md order. */
export const resourceTypes: readonly ResourceType[] = [
  "Pod",
  "Job",
  "TFJob",
  "PyTorchJob",
  "MPIJob",
  "ElasticJob",
];

/** Resource types that run several workers (and default to one GPU per worker). */
export const multiWorkerTypes: ReadonlySet<ResourceType> = new Set([
  "TFJob",
  "PyTorchJob",
  "MPIJob",
  "ElasticJob",
]);

/** A volume mounted into the task: a PVC when `claim` is set, else an ephemeral volume. */
export interface Mount {
  name: string;
  path: string;
  claim?: string;
}

/** An emptyDir volume (for example `/dev/shm` with `medium: Memory`). */
export interface EphemeralVolume {
  name: string;
  type: "emptyDir";
  medium?: string;
  sizeLimit?: string;
}

/** A Kubernetes Secret mounted as a volume. */
export interface SecretMount {
  name: string;
  path: string;
  subPath?: string;
  /** File mode of the projected files (decimal value of e.g. 0o644). */
  mode?: number;
}

/** A Kubernetes ConfigMap mounted as a volume. */
export interface ConfigMapMount {
  name: string;
  path: string;
  subPath?: string;
}

/** Kubernetes resource quantities (`"4.5"`, `"500m"`, `"16Gi"`). */
export interface ResourceAmounts {
  limits?: string;
  requests?: string;
}

/** Pod-level security context. */
export interface SecurityContext {
  fsGroup?: number;
  runAsUser?: number;
  runAsGroup?: number;
}

/** A Kubernetes toleration. */
export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  tolerationSeconds?: number;
}

/** One task, with every alias, default and null rule of SPEC.md applied. */
export interface Task {
  name: string;
  image: string;
  command: string[];
  args: string[];
  /** Every task this one waits for: `depends` plus `^task` references, in that order, no repeats. */
  depends: string[];
  mounts: readonly Mount[];
  ephemeralVolumes: readonly EphemeralVolume[];
  secrets: readonly SecretMount[];
  configMaps: readonly ConfigMapMount[];
  /** GPUs per pod (per worker for multi-worker types); 0 means none requested. */
  numGpus: number;
  cpu?: ResourceAmounts;
  memory?: ResourceAmounts;
  securityContext?: SecurityContext;
  pullPolicy: "Always" | "IfNotPresent" | "Never";
  nodeSelector: Readonly<Record<string, string>>;
  resourceType: ResourceType;
  numWorkers: number;
  inputs: readonly string[];
  outputs: Readonly<Record<string, string>>;
  env: Readonly<Record<string, string>>;
  tolerations: readonly Toleration[];
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  serviceAccount?: string;
  retries: number;
  /** Wait before the first retry, in milliseconds; doubled per attempt. */
  retryBackoffMs: number;
  /** Limit on the task's whole run, in milliseconds. */
  timeoutMs?: number;
  /** How long a pod may stay unschedulable or pulling images, in milliseconds. */
  pendingTimeoutMs?: number;
  /** `cache: false`: never skipped because of an earlier result, and never recorded for later runs. */
  cache?: boolean;
  /** `cache_ttl`: how old an earlier result may be to be reused, in milliseconds (default: the server's). */
  cacheTtlMs?: number;
  /**
   * `cache_image_tag: true`: when no digest is known for the image's tag, key the image by its tag
   * (the user vouches that the tag does not move). Without it, an unknown digest is never a hit.
   */
  cacheImageTag?: boolean;
  /** Keys Odin does not know, kept as written (JSON-safe). */
  extra: Readonly<Record<string, unknown>>;
}

/**
 * A validated, normalized pipeline. Treat it as immutable: empty lists and maps are shared,
 * frozen values.
 */
export interface Pipeline {
  /** Directory of the pipeline relative to the repository root (`sst2`, `alice/sst2`). */
  path: string;
  /** Pipeline name, the prefix of its run ids. */
  name: string;
  /** Whether one failed task stops the whole run (default true). */
  failFast: boolean;
  /** Most tasks of one run that may run at once; undefined means no pipeline cap. */
  parallelism?: number;
  /** The run parameters it declares (`parameters:`), in file order; absent when none. */
  parameters?: ParameterSpec[];
  /** The cron schedules it declares (`schedules:`), in file order; absent when none. */
  schedules?: ScheduleSpec[];
  /** The commit triggers it declares (`triggers:`), in file order; absent when none. */
  triggers?: TriggerSpec[];
  /** Where to post when a run ends (`notify:`), in file order; absent when none. */
  notify?: NotifyTarget[];
  tasks: Task[];
}

/** The run states a notification can be asked for: the end states. */
export const notifyStates = ["SUCCEEDED", "FAILED", "CANCELLED"] as const;
/** A run end state a notification is posted for. */
export type NotifyState = (typeof notifyStates)[number];

/** One `notify:` entry: a webhook, named by its secret, posted to when a run ends in one of `on`. */
export interface NotifyTarget {
  /** Name of the secret holding the webhook's URL (the URL itself is never in the pipeline). */
  webhookSecret: string;
  /** The end states that trigger a post (default: all of them). */
  on: readonly NotifyState[];
}

/** A webhook secret's name: a Kubernetes Secret key (and file name) without dots or slashes at the ends. */
export const webhookSecretNamePattern = /^[A-Za-z0-9]([-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;

/** Default `retry_backoff` (10 s). */
export const defaultRetryBackoffMs = 10_000;
