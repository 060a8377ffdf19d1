import { natsReplicasVar, serviceKitConfigSchema, type ConfigSchema } from "@odin/service-kit";

/** Every variable k8s-launcher reads (documented in docs/configuration.md). */
export const k8sLauncherConfigSchema = {
  ...serviceKitConfigSchema,
  natsUrl: {
    name: "ODIN_NATS_URL",
    type: "string",
    required: true,
    description:
      "NATS with JetStream (one URL, or every cluster node's, comma-separated); task events are published there (subject `odin.events.task.<run>`).",
  },
  natsReplicas: natsReplicasVar,
  kubeconfig: {
    name: "ODIN_KUBECONFIG",
    type: "string",
    description:
      "Path of a kubeconfig file; unset: `KUBECONFIG`, then `~/.kube/config`, then the pod's service account (in cluster).",
  },
  namespace: {
    name: "ODIN_K8S_NAMESPACE",
    type: "string",
    default: "default",
    description: "Namespace of every object the launcher creates and watches.",
  },
  imagePullSecrets: {
    name: "ODIN_IMAGE_PULL_SECRETS",
    type: "string",
    description: "Comma-separated names of secrets every task pod uses to pull images.",
  },
  serviceAccount: {
    name: "ODIN_TASK_SERVICE_ACCOUNT",
    type: "string",
    description:
      "Service account of task pods whose task names none; unset: the namespace's default.",
  },
  initImage: {
    name: "ODIN_INIT_IMAGE",
    type: "string",
    default: "busybox:1.36",
    description:
      "Small image with `mkdir`, run as an init container to create `TASK_PATH` on a task's volume.",
  },
  elasticRdzvEndpoint: {
    name: "ODIN_ELASTIC_RDZV_ENDPOINT",
    type: "string",
    default: "etcd-service.elastic-job.svc:2379",
    description: "`host:port` of the etcd rendezvous server given to ElasticJob tasks.",
  },
  resourceTypes: {
    name: "ODIN_RESOURCE_TYPES",
    type: "string",
    default: "Pod,Job,TFJob,PyTorchJob,MPIJob,ElasticJob",
    description:
      "Comma-separated resource types to watch; leave out training types whose operator (CRD) is not installed.",
  },
  dataPath: {
    name: "ODIN_DATA_PATH",
    type: "string",
    default: "/data/odin",
    description:
      "`DATA_PATH` of runs, mounted in the launcher at the same path as in task pods: DeleteRunObjects with purge removes `<this>/<run id>` and nothing outside it.",
  },
  dataDownloadMaxBytes: {
    name: "ODIN_DATA_DOWNLOAD_MAX_BYTES",
    type: "int",
    min: 1,
    default: 1073741824,
    description:
      "Largest download of run files (`odin data --download`, DownloadRunFiles) in bytes; a larger one is refused before anything is sent.",
  },
  rootPath: {
    name: "ODIN_ROOT_PATH",
    type: "string",
    default: "/data/pipelines",
    description:
      "`ROOT_PATH` (the pipelines' checkouts) as mounted in the launcher: the cache may hash task `inputs` under it and under `ODIN_DATA_PATH`, nowhere else.",
  },
  logDir: {
    name: "ODIN_LOG_DIR",
    type: "string",
    description:
      "Where logs of finished pods are saved (`<run>/<task>/<attempt>/<pod>/<container>.log`); unset: `<ODIN_DATA_PATH>/.odin-logs`.",
  },
  pendingTimeoutSeconds: {
    name: "ODIN_PENDING_TIMEOUT_SECONDS",
    type: "int",
    min: 1,
    default: 300,
    description:
      "How long a pod may stay unschedulable or unable to pull its image before its task is ERROR, when the task sets no `pending_timeout`.",
  },
  qps: {
    name: "ODIN_K8S_QPS",
    type: "int",
    min: 1,
    default: 50,
    description: "Client-side rate limit of Kubernetes API requests per second.",
  },
  burst: {
    name: "ODIN_K8S_BURST",
    type: "int",
    min: 1,
    default: 100,
    description:
      "Most Kubernetes API requests sent at once after a quiet period (the size of the token bucket); the rate then falls back to `ODIN_K8S_QPS`.",
  },
  retries: {
    name: "ODIN_K8S_RETRIES",
    type: "int",
    min: 0,
    default: 5,
    description:
      "Retries of a Kubernetes API request answered 429 or 5xx or cut off (exponential backoff with jitter; Retry-After honoured).",
  },
} as const satisfies ConfigSchema;
