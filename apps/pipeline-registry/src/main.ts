#!/usr/bin/env node
// pipeline-registry: composition root. Reads configuration once, wires repo-sync, events, server.
import { NatsEventBus, subjects } from "@odin/events";
import { events, RepoSyncServiceClient } from "@odin/proto";
import {
  createClient,
  createLogger,
  createMetricsRegistry,
  natsErrorMetrics,
  readConfig,
  runUntilSignal,
  serverOptionsFromConfig,
  startServer,
  runMain,
} from "@odin/service-kit";
import { pipelineRegistryConfigSchema } from "./config.js";
import { PipelineCatalog, pipelineRegistryService, RepoSyncFileSource } from "@odin/registry";

async function main(): Promise<void> {
  const config = readConfig(process.env, pipelineRegistryConfigSchema);
  const logger = createLogger({ service: "pipeline-registry", level: config.logLevel });
  const repoSync = createClient(RepoSyncServiceClient, {
    address: config.repoSyncAddress,
    token: config.serviceToken,
  });
  const catalog = new PipelineCatalog(new RepoSyncFileSource(repoSync));
  const metrics = createMetricsRegistry();
  const bus = config.natsUrl
    ? await NatsEventBus.connect({
        servers: config.natsUrl,
        name: "pipeline-registry",
        replicas: config.natsReplicas,
        onError: natsErrorMetrics(metrics).eventBus,
        log: logger,
      })
    : undefined;
  // Every replica refreshes its own cache, so each consumes under its own name (not a shared durable).
  const synced = await bus?.subscribe(subjects.repoSynced, (m) => {
    const event = events.RepoSynced.decode(m.data);
    logger.info("repository moved; parsing the new commit", { commit: event.commit });
    void catalog.noteSynced(event.commit);
  });
  const server = await startServer({
    name: "pipeline-registry",
    ...(await serverOptionsFromConfig(config)),
    services: [pipelineRegistryService(catalog)],
    metricsRegistry: metrics,
    logger,
  });
  logger.info("pipeline-registry ready", {
    address: server.address,
    metricsPort: server.metricsPort,
    repoSync: config.repoSyncAddress,
  });
  await runUntilSignal(server, logger, {
    cleanup: async () => {
      await synced?.stop();
      await bus?.close();
      repoSync.close();
    },
  });
}

runMain("pipeline-registry", main);
