#!/usr/bin/env node
// gateway: composition root. One address for the CLI and other clients; calls are forwarded as
// they are (the services authenticate them).
import {
  DagSchedulerServiceService,
  K8sLauncherServiceService,
  PipelineRegistryServiceService,
  RepoSyncServiceService,
} from "@odin/proto";
import { createLogger, readConfig, runUntilSignal, startGateway, runMain } from "@odin/service-kit";
import { gatewayConfigSchema } from "./config.js";

async function main(): Promise<void> {
  const config = readConfig(process.env, gatewayConfigSchema);
  const logger = createLogger({ service: "gateway", level: config.logLevel });
  const gateway = await startGateway({
    host: config.grpcHost,
    port: config.grpcPort,
    maxMessageBytes: config.maxMessageBytes,
    logger,
    routes: [
      { address: config.repoSyncAddress, services: [RepoSyncServiceService] },
      { address: config.registryAddress, services: [PipelineRegistryServiceService] },
      { address: config.schedulerAddress, services: [DagSchedulerServiceService] },
      { address: config.launcherAddress, services: [K8sLauncherServiceService] },
    ],
  });
  logger.info("gateway ready", { address: gateway.address });
  await runUntilSignal(gateway, logger);
}

runMain("gateway", main);
