import { natsReplicasVar, serviceKitConfigSchema, type ConfigSchema } from "@odin/service-kit";

/** Every variable dag-scheduler reads (documented in docs/configuration.md). */
export const dagSchedulerConfigSchema = {
  ...serviceKitConfigSchema,
  natsUrl: {
    name: "ODIN_NATS_URL",
    type: "string",
    required: true,
    description:
      "NATS with JetStream (one URL, or every cluster node's, comma-separated): task events and the run-state KV bucket.",
  },
  natsReplicas: natsReplicasVar,
  registryAddress: {
    name: "ODIN_REGISTRY_ADDRESS",
    type: "string",
    required: true,
    description: "`host:port` of pipeline-registry.",
  },
  repoSyncAddress: {
    name: "ODIN_REPO_SYNC_ADDRESS",
    type: "string",
    required: true,
    description: "`host:port` of repo-sync (run-pinned checkouts).",
  },
  launcherAddress: {
    name: "ODIN_LAUNCHER_ADDRESS",
    type: "string",
    required: true,
    description: "`host:port` of k8s-launcher.",
  },
  serviceToken: {
    name: "ODIN_SERVICE_TOKEN",
    type: "string",
    secret: true,
    description:
      "Bearer token this service presents to the other Odin services (an `operator` token here).",
  },
  dataPath: {
    name: "ODIN_DATA_PATH",
    type: "string",
    default: "/data/odin",
    description:
      "`DATA_PATH` of runs: each run's `RUN_PATH` is `<this>/<run id>`, as task pods see it.",
  },
  maxRunningTasks: {
    name: "ODIN_MAX_RUNNING_TASKS",
    type: "int",
    min: 1,
    default: 10000,
    description: "Most tasks launching or running at once across all runs; more wait in order.",
  },
  kvBucket: {
    name: "ODIN_KV_BUCKET",
    type: "string",
    default: "odin-run-state",
    description: "JetStream KV bucket holding run state (every replica must use the same).",
  },
  publicUrl: {
    name: "ODIN_PUBLIC_URL",
    type: "string",
    default: "",
    description:
      "The web UI's address as people reach it (e.g. `https://odin.example.com`): notifications link to `<this>/runs/<run id>`. Empty: `http://localhost:8080`, where `kubectl port-forward svc/gateway 8080` serves it.",
  },
  webhooksDir: {
    name: "ODIN_WEBHOOKS_DIR",
    type: "string",
    default: "/etc/odin/webhooks",
    description:
      "Directory of webhook secrets, one file per name holding the URL: where deploy/ mounts the optional `odin-webhooks` Secret. A pipeline's `notify: {webhook: {secret: NAME}}` is looked up here first.",
  },
  webhooksFile: {
    name: "ODIN_WEBHOOKS_FILE",
    type: "string",
    default: "",
    description:
      "A YAML/JSON file mapping webhook secret names to URLs (`slack-ml: https://hooks.slack.com/…`), looked up after `ODIN_WEBHOOKS_DIR`; empty: none.",
  },
} as const satisfies ConfigSchema;
