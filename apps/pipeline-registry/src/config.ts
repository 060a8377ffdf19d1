import { natsReplicasVar, serviceKitConfigSchema, type ConfigSchema } from "@odin/service-kit";

/** Every variable pipeline-registry reads (documented in docs/configuration.md). */
export const pipelineRegistryConfigSchema = {
  ...serviceKitConfigSchema,
  repoSyncAddress: {
    name: "ODIN_REPO_SYNC_ADDRESS",
    type: "string",
    required: true,
    description: "`host:port` of repo-sync's gRPC server.",
  },
  serviceToken: {
    name: "ODIN_SERVICE_TOKEN",
    type: "string",
    secret: true,
    description:
      "Bearer token this service presents to the other Odin services (a `viewer` token is enough here).",
  },
  natsUrl: {
    name: "ODIN_NATS_URL",
    type: "string",
    description:
      "NATS with JetStream (one URL, or every cluster node's, comma-separated); `repo.synced` events refresh the cache at once. Unset: the cache follows repo-sync only when asked for the newest commit.",
  },
  natsReplicas: natsReplicasVar,
} as const satisfies ConfigSchema;
