#!/usr/bin/env node
// gateway: composition root. One address for the CLI and other clients (gRPC), and one for
// browsers and curl (the web UI and the HTTP/JSON API); calls are forwarded as they are (the
// services authenticate them).
import {
  DagSchedulerServiceService,
  K8sLauncherServiceService,
  PipelineRegistryServiceService,
  RepoSyncServiceService,
} from "@odin/proto";
import {
  createLogger,
  readConfig,
  runUntilSignal,
  startGateway,
  startHttpGateway,
  runMain,
} from "@odin/service-kit";
import { webRoot } from "@odin/web";
import { gatewayConfigSchema } from "./config.js";

async function main(): Promise<void> {
  const config = readConfig(process.env, gatewayConfigSchema);
  const logger = createLogger({ service: "gateway", level: config.logLevel });
  const routes = [
    { address: config.repoSyncAddress, services: [RepoSyncServiceService] },
    { address: config.registryAddress, services: [PipelineRegistryServiceService] },
    { address: config.schedulerAddress, services: [DagSchedulerServiceService] },
    { address: config.launcherAddress, services: [K8sLauncherServiceService] },
  ];
  const gateway = await startGateway({
    host: config.grpcHost,
    port: config.grpcPort,
    maxMessageBytes: config.maxMessageBytes,
    logger,
    routes,
    ...(config.metricsPort !== 0
      ? { metrics: { port: config.metricsPort, host: config.metricsHost } }
      : {}),
  });
  const http = await startHttpGateway({
    host: config.grpcHost,
    port: config.httpPort,
    maxMessageBytes: config.maxMessageBytes,
    logger,
    routes,
    staticRoot: webRoot,
  });
  logger.info("gateway ready", {
    address: gateway.address,
    webUrl: http.url,
    metricsPort: gateway.metricsPort,
  });
  await runUntilSignal(
    {
      close: async (graceMs?: number) => {
        await http.close();
        await gateway.close(graceMs);
      },
    },
    logger,
  );
}

runMain("gateway", main);
