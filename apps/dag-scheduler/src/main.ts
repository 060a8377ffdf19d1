#!/usr/bin/env node
// dag-scheduler: composition root. Reads configuration once, wires store, events, clients, server.
import { Membership, NatsEventBus } from "@odin/events";
import { configuredWebhookSecrets, WebhookNotifier } from "@odin/notify";
import {
  K8sLauncherServiceClient,
  PipelineRegistryServiceClient,
  RepoSyncServiceClient,
} from "@odin/proto";
import { NatsKeyValueStore } from "@odin/run-store";
import {
  dagSchedulerService,
  GrpcLauncher,
  RegistryPipelineSource,
  RepoSyncCheckouts,
  RepoSyncCommits,
  Scheduler,
  ScheduleRunner,
  SchedulerStore,
  TriggerRunner,
} from "@odin/scheduler";
import {
  createClient,
  createLogger,
  createMetricsRegistry,
  natsErrorMetrics,
  schedulerMetrics,
  readConfig,
  runUntilSignal,
  serverOptionsFromConfig,
  startServer,
  runMain,
} from "@odin/service-kit";
import { dagSchedulerConfigSchema } from "./config.js";

async function main(): Promise<void> {
  const config = readConfig(process.env, dagSchedulerConfigSchema);
  const logger = createLogger({ service: "dag-scheduler", level: config.logLevel });
  const token = config.serviceToken;
  const registry = createClient(PipelineRegistryServiceClient, {
    address: config.registryAddress,
    token,
  });
  const repoSync = createClient(RepoSyncServiceClient, { address: config.repoSyncAddress, token });
  const launcher = createClient(K8sLauncherServiceClient, {
    address: config.launcherAddress,
    token,
  });
  const metrics = createMetricsRegistry();
  const natsErrors = natsErrorMetrics(metrics);
  const kv = await NatsKeyValueStore.connect({
    servers: config.natsUrl,
    name: "dag-scheduler",
    bucket: config.kvBucket,
    replicas: config.natsReplicas,
    onError: natsErrors.runStore,
    log: logger,
  });
  const bus = await NatsEventBus.connect({
    servers: config.natsUrl,
    name: "dag-scheduler",
    replicas: config.natsReplicas,
    onError: natsErrors.eventBus,
    log: logger,
  });
  // The schedulers sharing a run store split its runs between them.
  const share = await Membership.join(bus, {
    group: `dag-scheduler-${config.kvBucket}`,
    log: logger,
  });
  const pipelines = new RegistryPipelineSource(registry);
  const scheduler = new Scheduler({
    store: new SchedulerStore(kv),
    bus,
    pipelines,
    checkouts: new RepoSyncCheckouts(repoSync),
    launcher: new GrpcLauncher(launcher),
    dataPath: config.dataPath,
    maxRunningTasks: config.maxRunningTasks,
    metrics: schedulerMetrics(metrics),
    logger,
    notifier: new WebhookNotifier({
      secrets: configuredWebhookSecrets({
        directory: config.webhooksDir,
        file: config.webhooksFile,
      }),
      log: logger,
    }),
    publicUrl: config.publicUrl || undefined,
    share,
  });
  await scheduler.start();
  const schedules = new ScheduleRunner({
    kv,
    runs: scheduler,
    pipelines,
    declared: pipelines,
    bus,
    logger,
  });
  await schedules.start();
  const triggers = new TriggerRunner({
    kv,
    runs: scheduler,
    declared: pipelines,
    commits: new RepoSyncCommits(repoSync),
    bus,
    logger,
  });
  await triggers.start();
  const server = await startServer({
    name: "dag-scheduler",
    ...(await serverOptionsFromConfig(config)),
    services: [dagSchedulerService(scheduler, schedules, triggers)],
    metricsRegistry: metrics,
    logger,
  });
  logger.info("dag-scheduler ready", {
    address: server.address,
    metricsPort: server.metricsPort,
  });
  await runUntilSignal(server, logger, {
    cleanup: async () => {
      // Said first, so the other schedulers take this one's runs over at once.
      await share.close();
      await triggers.close();
      await schedules.close();
      await scheduler.close();
      await bus.close();
      await kv.close();
      for (const c of [registry, repoSync, launcher]) c.close();
    },
  });
}

runMain("dag-scheduler", main);
