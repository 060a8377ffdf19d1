#!/usr/bin/env node
// repo-sync: composition root. Reads configuration once, wires the repository, events and server.
import { NatsEventBus, subjects, type EventBus } from "@odin/events";
import { events } from "@odin/proto";
import {
  createLogger,
  readConfig,
  runUntilSignal,
  serverOptionsFromConfig,
  startServer,
  runMain,
} from "@odin/service-kit";
import { repoSyncConfigSchema } from "./config.js";
import { PipelineRepository, repoSyncService } from "@odin/repository";

async function main(): Promise<void> {
  const config = readConfig(process.env, repoSyncConfigSchema);
  const logger = createLogger({ service: "repo-sync", level: config.logLevel });
  const bus: EventBus | undefined = config.natsUrl
    ? await NatsEventBus.connect({ servers: config.natsUrl, name: "repo-sync" })
    : undefined;
  if (!bus) logger.warn("ODIN_NATS_URL is not set: repo.synced events are not published");
  const repo = await PipelineRepository.open({
    remote: config.repoUrl,
    branch: config.repoBranch,
    rootPath: config.rootPath,
    keepCheckouts: config.keepCheckouts,
    committer: { name: config.committerName, email: config.committerEmail },
    onSynced: async (e) => {
      logger.info("serving a new commit", { commit: e.commit, previous: e.previousCommit });
      await bus?.publish(subjects.repoSynced, events.RepoSynced.encode(e).finish(), {
        msgId: `repo.synced.${e.commit}`,
      });
    },
  });
  const status = repo.status();
  if (status.lastError)
    logger.error("first sync failed; retrying on the interval", { error: status.lastError });
  if (config.syncIntervalSeconds > 0) repo.startPeriodicSync(config.syncIntervalSeconds * 1000);
  const server = await startServer({
    name: "repo-sync",
    ...(await serverOptionsFromConfig(config)),
    services: [repoSyncService(repo)],
    logger,
  });
  logger.info("repo-sync ready", {
    address: server.address,
    remote: status.remote,
    commit: status.commit,
  });
  await runUntilSignal(server, logger, {
    cleanup: async () => {
      repo.close();
      await bus?.close();
    },
  });
}

runMain("repo-sync", main);
