#!/usr/bin/env node
// repo-sync: composition root. Reads configuration once, wires the repository, events and server.
import { randomUUID } from "node:crypto";
import { networkInterfaces } from "node:os";
import { NatsEventBus, subjects, type EventBus } from "@odin/events";
import { NatsKeyValueStore } from "@odin/run-store";
import { events } from "@odin/proto";
import {
  createLogger,
  createMetricsRegistry,
  natsErrorMetrics,
  readConfig,
  runUntilSignal,
  serverOptionsFromConfig,
  startServer,
  runMain,
} from "@odin/service-kit";
import { repoSyncConfigSchema } from "./config.js";
import {
  Lease,
  LeaderForwarder,
  PipelineRepository,
  repoSyncService,
  type LeaseHolder,
} from "@odin/repository";

/** The host other replicas reach this one at: configured, the listening address, or the first IPv4. */
function advertisedHost(configured: string | undefined, grpcHost: string): string {
  if (configured) return configured;
  if (grpcHost !== "0.0.0.0" && grpcHost !== "::" && grpcHost !== "") return grpcHost;
  for (const addresses of Object.values(networkInterfaces()))
    for (const a of addresses ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return "127.0.0.1";
}

async function main(): Promise<void> {
  const config = readConfig(process.env, repoSyncConfigSchema);
  const logger = createLogger({ service: "repo-sync", level: config.logLevel });
  const metrics = createMetricsRegistry();
  const natsErrors = natsErrorMetrics(metrics);
  const bus: EventBus | undefined = config.natsUrl
    ? await NatsEventBus.connect({
        servers: config.natsUrl,
        name: "repo-sync",
        replicas: config.natsReplicas,
        onError: natsErrors.eventBus,
        log: logger,
      })
    : undefined;
  if (!bus) logger.warn("ODIN_NATS_URL is not set: repo.synced events are not published");
  // Several replicas share the volume: a lease in NATS KV says which one writes.
  const leaseStore = config.natsUrl
    ? await NatsKeyValueStore.connect({
        servers: config.natsUrl,
        name: "repo-sync",
        bucket: "odin-leases",
        replicas: config.natsReplicas,
        onError: natsErrors.runStore,
        log: logger,
      })
    : undefined;
  const serverOptions = await serverOptionsFromConfig(config);
  // The lease names the port only once the server listens (ODIN_GRPC_PORT may be 0), so the
  // server starts first and the lease is taken after; until then this replica follows.
  const self: LeaseHolder = { id: randomUUID(), address: "" };
  // Set once the repository is open and the first lease attempt made.
  let takeOver: () => void = () => undefined;
  const lease = leaseStore
    ? new Lease({
        store: leaseStore,
        self,
        ttlMs: config.leaseSeconds * 1000,
        onChange: (leading) => {
          logger.info(leading ? "leading: this replica writes" : "following the leader", {
            id: self.id,
          });
          // The new leader fetches at once: pushes made through the old one are served.
          if (leading) takeOver();
        },
        onError: (err) => logger.warn("cannot renew or acquire the leader lease", { err }),
      })
    : undefined;
  if (!lease)
    logger.warn(
      "ODIN_NATS_URL is not set: this repo-sync runs alone (no other replica may share ODIN_ROOT_PATH)",
    );
  const repo = await PipelineRepository.open({
    remote: config.repoUrl,
    branch: config.repoBranch,
    rootPath: config.rootPath,
    keepCheckouts: config.keepCheckouts,
    committer: { name: config.committerName, email: config.committerEmail },
    ...(lease ? { lease } : {}),
    onSynced: async (e) => {
      logger.info("serving a new commit", { commit: e.commit, previous: e.previousCommit });
      await bus?.publish(subjects.repoSynced, events.RepoSynced.encode(e).finish(), {
        msgId: `repo.synced.${e.commit}`,
      });
    },
  });
  if (config.syncIntervalSeconds > 0) repo.startPeriodicSync(config.syncIntervalSeconds * 1000);
  const forwarder = lease ? new LeaderForwarder({ leadership: lease, self }) : undefined;
  const server = await startServer({
    name: "repo-sync",
    ...serverOptions,
    services: [repoSyncService(repo, forwarder)],
    metricsRegistry: metrics,
    logger,
  });
  if (lease) {
    self.address = `${advertisedHost(config.advertiseHost, config.grpcHost)}:${server.port}`;
    await lease.start();
    takeOver = () => void repo.sync().catch((err: unknown) => logger.warn("sync failed", { err }));
    // Leading from the start (the first replica, or the old leader gave up): serve the newest now.
    if (lease.isLeader()) await repo.sync().catch(() => undefined);
  }
  const status = repo.status();
  if (status.lastError)
    logger.error("first sync failed; retrying on the interval", { error: status.lastError });
  logger.info("repo-sync ready", {
    address: server.address,
    metricsPort: server.metricsPort,
    remote: status.remote,
    commit: status.commit,
    leading: lease?.isLeader() ?? true,
  });
  await runUntilSignal(server, logger, {
    cleanup: async () => {
      repo.close();
      forwarder?.close();
      // Given up at once, so another replica leads without waiting for the lease to run out.
      await lease?.close();
      await leaseStore?.close();
      await bus?.close();
    },
  });
}

runMain("repo-sync", main);
