import { serviceKitConfigSchema, type ConfigSchema } from "@odin/service-kit";

const { grpcHost, grpcPort, logLevel, maxMessageBytes, metricsHost, metricsPort } =
  serviceKitConfigSchema;

/** Every variable the gateway reads (documented in docs/configuration.md). */
export const gatewayConfigSchema = {
  grpcHost,
  grpcPort,
  logLevel,
  maxMessageBytes,
  metricsHost,
  metricsPort,
  repoSyncAddress: {
    name: "ODIN_REPO_SYNC_ADDRESS",
    type: "string",
    required: true,
    description: "`host:port` of repo-sync.",
  },
  registryAddress: {
    name: "ODIN_REGISTRY_ADDRESS",
    type: "string",
    required: true,
    description: "`host:port` of pipeline-registry.",
  },
  schedulerAddress: {
    name: "ODIN_SCHEDULER_ADDRESS",
    type: "string",
    required: true,
    description: "`host:port` of dag-scheduler (a Service in front of its replicas).",
  },
  httpPort: {
    name: "ODIN_HTTP_PORT",
    type: "int",
    min: 0,
    max: 65535,
    default: 8080,
    description:
      "Port of the web UI and the HTTP/JSON API (Connect protocol and gRPC-Web, on `ODIN_GRPC_HOST`); 0 picks a free port (logged at startup).",
  },
  launcherAddress: {
    name: "ODIN_LAUNCHER_ADDRESS",
    type: "string",
    required: true,
    description: "`host:port` of k8s-launcher.",
  },
} as const satisfies ConfigSchema;
