import { natsReplicasVar, serviceKitConfigSchema, type ConfigSchema } from "@odin/service-kit";

/** Every variable repo-sync reads (documented in docs/configuration.md). */
export const repoSyncConfigSchema = {
  ...serviceKitConfigSchema,
  repoUrl: {
    name: "ODIN_REPO_URL",
    type: "string",
    required: true,
    description:
      "Git URL (or local path) of the pipelines repository. Credentials in it are never logged or reported.",
  },
  repoBranch: {
    name: "ODIN_REPO_BRANCH",
    type: "string",
    description: "Branch to follow and push to; default: the remote's default branch.",
  },
  rootPath: {
    name: "ODIN_ROOT_PATH",
    type: "string",
    default: "/data/pipelines",
    description:
      "Directory on the shared volume holding the working clone and one read-only checkout per commit (`commits/<sha>`, `current`).",
  },
  syncIntervalSeconds: {
    name: "ODIN_SYNC_INTERVAL_SECONDS",
    type: "int",
    min: 0,
    default: 60,
    description: "How often to fetch the remote; 0 syncs only on demand (`odin sync`, pushes).",
  },
  keepCheckouts: {
    name: "ODIN_KEEP_CHECKOUTS",
    type: "int",
    min: 0,
    default: 3,
    description: "Recent checkouts kept besides the current one and those runs still use.",
  },
  committerName: {
    name: "ODIN_GIT_COMMITTER_NAME",
    type: "string",
    default: "Odin",
    description: "Committer name of pushes (the author is the caller).",
  },
  committerEmail: {
    name: "ODIN_GIT_COMMITTER_EMAIL",
    type: "string",
    default: "odin@localhost",
    description: "Committer e-mail of pushes.",
  },
  natsUrl: {
    name: "ODIN_NATS_URL",
    type: "string",
    description:
      "NATS with JetStream (one URL, or every cluster node's, comma-separated); `repo.synced` events are published there. Unset: no events.",
  },
  natsReplicas: natsReplicasVar,
  advertiseHost: {
    name: "ODIN_ADVERTISE_HOST",
    type: "string",
    description:
      "Host (an IP address in a pod) at which the other repo-sync replicas reach this one's gRPC port, to forward pushes and syncs while it leads; unset: `ODIN_GRPC_HOST` when it names one address, else the machine's first non-loopback IPv4 address.",
  },
  leaseSeconds: {
    name: "ODIN_LEADER_LEASE_SECONDS",
    type: "int",
    min: 1,
    max: 600,
    default: 5,
    description:
      "How long repo-sync's leader lease (NATS KV bucket `odin-leases`) lasts unrenewed: when the leader dies another replica takes over after at most about this long. Needs `ODIN_NATS_URL`; without it repo-sync runs alone and always leads.",
  },
} as const satisfies ConfigSchema;
