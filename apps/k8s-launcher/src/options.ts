// From configuration to the Kubernetes backend's options: comma lists split and checked, the
// kubeconfig loaded from a file or the default chain (KUBECONFIG, ~/.kube/config, in cluster).
import { KubeConfig } from "@kubernetes/client-node";
import type { KubernetesBackendOptions } from "@odin/launcher";
import { resourceTypes as knownResourceTypes, type ResourceType } from "@odin/pipeline-spec";
import { ConfigError, type ConfigOf, type Logger } from "@odin/service-kit";
import type { k8sLauncherConfigSchema } from "./config.js";

/** The launcher's configuration as read by `readConfig`. */
export type K8sLauncherConfig = ConfigOf<typeof k8sLauncherConfigSchema>;

/** The non-empty items of a comma-separated list, trimmed. */
export function commaList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** The resource types of `ODIN_RESOURCE_TYPES`; a name Odin does not know is a configuration error. */
export function parseResourceTypes(value: string): ResourceType[] {
  const known = new Set<string>(knownResourceTypes);
  const types = commaList(value);
  const unknown = types.filter((t) => !known.has(t));
  if (unknown.length > 0 || types.length === 0) {
    throw new ConfigError([
      `ODIN_RESOURCE_TYPES: expected a comma-separated list of ${[...known].join(", ")}, got ${JSON.stringify(value)}`,
    ]);
  }
  return types as ResourceType[];
}

/** The kubeconfig: `ODIN_KUBECONFIG` when set, else the client's default chain. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new ConfigError([
      "no Kubernetes cluster configured: set ODIN_KUBECONFIG or KUBECONFIG, or run in a pod with a service account",
    ]);
  }
  return kc;
}

/** The backend's options from configuration. */
export function backendOptions(
  config: K8sLauncherConfig,
  kubeConfig: KubeConfig,
  logger: Logger,
): KubernetesBackendOptions {
  return {
    kubeConfig,
    manifest: {
      namespace: config.namespace,
      imagePullSecrets: commaList(config.imagePullSecrets),
      ...(config.serviceAccount ? { serviceAccount: config.serviceAccount } : {}),
      initImage: config.initImage,
      elasticRdzvEndpoint: config.elasticRdzvEndpoint,
    },
    dataRoot: config.dataPath,
    ...(config.logDir ? { logDir: config.logDir } : {}),
    defaultPendingTimeoutMs: config.pendingTimeoutSeconds * 1000,
    qps: config.qps,
    burst: config.burst,
    retry: { retries: config.retries },
    resourceTypes: parseResourceTypes(config.resourceTypes),
    logger,
  };
}
