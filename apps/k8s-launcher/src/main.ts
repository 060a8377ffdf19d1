#!/usr/bin/env node
// k8s-launcher: composition root. Reads configuration once, wires Kubernetes, NATS and the server.
import { Membership, NatsEventBus } from "@odin/events";
import { k8sLauncherService, KubernetesBackend, publishStateEvents } from "@odin/launcher";
import {
  createLogger,
  createMetricsRegistry,
  kubernetesApiMetrics,
  natsErrorMetrics,
  readConfig,
  runUntilSignal,
  serverOptionsFromConfig,
  startServer,
  runMain,
} from "@odin/service-kit";
import { k8sLauncherConfigSchema } from "./config.js";
import { backendOptions, loadKubeConfig } from "./options.js";

async function main(): Promise<void> {
  const config = readConfig(process.env, k8sLauncherConfigSchema);
  const logger = createLogger({ service: "k8s-launcher", level: config.logLevel });
  const kubeConfig = loadKubeConfig(config.kubeconfig);
  const metrics = createMetricsRegistry();
  const options = {
    ...backendOptions(config, kubeConfig, logger),
    metrics: kubernetesApiMetrics(metrics),
  };
  const serverOptions = await serverOptionsFromConfig(config);
  const bus = await NatsEventBus.connect({
    servers: config.natsUrl,
    name: "k8s-launcher",
    replicas: config.natsReplicas,
    onError: natsErrorMetrics(metrics).eventBus,
    log: logger,
  });
  // The launchers of one namespace split the reporting of attempts and the saving of logs.
  const share = await Membership.join(bus, {
    group: `k8s-launcher-${config.namespace}`,
    log: logger,
  });
  const backend = new KubernetesBackend({ ...options, share });
  try {
    // Lists Odin's objects and reports what happened while no launcher ran.
    await backend.start(publishStateEvents(bus));
  } catch (err) {
    await share.close();
    await bus.close();
    throw err;
  }
  const server = await startServer({
    name: "k8s-launcher",
    ...serverOptions,
    services: [
      k8sLauncherService(backend, {
        dataRoot: config.dataPath,
        maxDownloadBytes: config.dataDownloadMaxBytes,
        readRoots: [config.dataPath, config.rootPath],
      }),
    ],
    metricsRegistry: metrics,
    logger,
  });
  logger.info("k8s-launcher ready", {
    address: server.address,
    metricsPort: server.metricsPort,
    cluster: kubeConfig.getCurrentCluster()?.server,
    namespace: config.namespace,
    resourceTypes: options.resourceTypes,
  });
  await runUntilSignal(server, logger, {
    cleanup: async () => {
      // Said first, so the other launchers take this one's attempts over at once.
      await share.close();
      await backend.close();
      await bus.close();
    },
  });
}

runMain("k8s-launcher", main);
