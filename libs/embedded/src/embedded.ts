import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { MemoryEventBus, NatsEventBus, type EventBus } from "@odin/events";
import { configuredWebhookSecrets, WebhookNotifier, type DeliveryOptions } from "@odin/notify";
import {
  k8sLauncherService,
  Launcher,
  LocalBackend,
  publishStateEvents,
  type TaskBackend,
} from "@odin/launcher";
import { PipelineCatalog, pipelineRegistryService } from "@odin/registry";
import { PipelineRepository, repoSyncService } from "@odin/repository";
import { MemoryKeyValueStore, NatsKeyValueStore, type KeyValueStore } from "@odin/run-store";
import { subjects } from "@odin/events";
import { events } from "@odin/proto";
import {
  dagSchedulerService,
  Scheduler,
  ScheduleRunner,
  SchedulerStore,
  TriggerRunner,
} from "@odin/scheduler";
import {
  createMetricsRegistry,
  natsErrorMetrics,
  schedulerMetrics,
  startHttpGateway,
  startServer,
  type HttpGateway,
  type Logger,
  type MetricsRegistry,
  type OdinServer,
  type TokenStore,
} from "@odin/service-kit";
import {
  CatalogPipelines,
  RepositoryCheckouts,
  RepositoryCommits,
  RepositoryFiles,
} from "./adapters.js";
import { gitCheckoutAt, LocalDirectoryRemote, type GitCheckout } from "./local-remote.js";

/** How to run Odin in one process. */
export interface EmbeddedOptions {
  /**
   * A directory of pipelines, a git work tree (its commits are served and `odin push` commits to
   * its branch), or any git URL.
   */
  repo: string;
  branch?: string;
  /** `DATA_PATH` of runs; Odin's own state goes to `<data>/.odin`. */
  dataDir: string;
  host?: string;
  port: number;
  /** `"off"` (the default of `odin server`) or the tokens to accept. */
  auth: TokenStore | "off";
  /** Use this NATS server (JetStream) for events and run state instead of memory. */
  natsUrl?: string;
  /** Run tasks through this backend instead of local processes (e.g. Kubernetes). */
  backend?: TaskBackend;
  /** Also serve the services over HTTP (Connect protocol, gRPC-Web) and the web UI's files. */
  http?: { port: number; webRoot?: string };
  /** At most this many tasks launching or running at once across all runs (the global cap). */
  maxRunningTasks?: number;
  /** Serve Prometheus /metrics and /healthz over HTTP here (port 0 picks one); unset: none. */
  metrics?: { host: string; port: number };
  /** The registry every part records into (e.g. a Kubernetes `backend`'s too); default: a new one. */
  metricsRegistry?: MetricsRegistry;
  /** Where pipelines' `notify:` webhook names are resolved (a directory of files, a YAML file); unset: none. */
  webhooks?: { directory?: string; file?: string };
  /** How webhook posts are retried (tests count waits instead of sleeping); default: 5 attempts from 2 s. */
  webhookDelivery?: DeliveryOptions;
  /** How often a git work tree given as `repo` is looked at for new commits (default 5 s). */
  syncIntervalMs?: number;
  /** The web UI's address as people reach it, for notification links; default: the web UI's own. */
  publicUrl?: string;
  logger: Logger;
}

/** A running embedded Odin. */
export interface Embedded {
  address: string;
  port: number;
  /** The bound metrics port, when metrics are served. */
  metricsPort: number | undefined;
  repoCommit: string;
  /** The web UI's address, when `http` was asked for. */
  webUrl?: string;
  /** When `repo` is a git work tree: what is served from it. */
  checkout: GitCheckout | undefined;
  close(): Promise<void>;
}

/**
 * All four services in one process, on one port: the same libraries and the same code paths as
 * the deployed services, with the event bus, run store and launcher backend swapped for
 * in-memory and local-process adapters (or NATS and Kubernetes when asked).
 */
export async function startEmbedded(options: EmbeddedOptions): Promise<Embedded> {
  const data = resolve(options.dataDir);
  const state = join(data, ".odin");
  await mkdir(state, { recursive: true });
  const log = options.logger;

  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(options.repo) || /^[^/]+@[^:]+:/.test(options.repo);
  // A git work tree is served as it is (runs are pinned to its commits, pushes commit to its
  // branch); any other directory through a remote of Odin's own that snapshots its files.
  const checkout = isUrl ? undefined : await gitCheckoutAt(options.repo);
  const local =
    isUrl || checkout ? undefined : await LocalDirectoryRemote.open(options.repo, state);
  // One registry for every part, as each deployed service has its own.
  const metrics = options.metricsRegistry ?? createMetricsRegistry();
  const natsErrors = options.natsUrl ? natsErrorMetrics(metrics) : undefined;
  const bus: EventBus = options.natsUrl
    ? await NatsEventBus.connect({
        servers: options.natsUrl,
        name: "odin-server",
        onError: natsErrors?.eventBus,
        log,
      })
    : new MemoryEventBus();
  const kv: KeyValueStore = options.natsUrl
    ? await NatsKeyValueStore.connect({
        servers: options.natsUrl,
        name: "odin-server",
        onError: natsErrors?.runStore,
        log,
      })
    : new MemoryKeyValueStore();

  // The catalog reads the repository, and the repository tells the catalog when it moves.
  const follow: { catalog?: PipelineCatalog } = {};
  const repo = await PipelineRepository.open({
    remote: checkout ? checkout.directory : local ? local.url : options.repo,
    branch: options.branch ?? checkout?.branch ?? (local ? "main" : undefined),
    rootPath: join(state, checkout ? "checkout-repo" : "repo"),
    prepareRemote: local ? () => local.snapshot() : undefined,
    pushToCheckout: checkout !== undefined,
    onSynced: async (e) => {
      if (local && e.previousCommit)
        await local
          .writeBack()
          .catch((err: unknown) =>
            log.warn("could not write pushed files back", { error: (err as Error).message }),
          );
      await follow.catalog?.noteSynced(e.commit);
      // As repo-sync announces it: schedules and commit triggers follow at once.
      await bus
        .publish(subjects.repoSynced, events.RepoSynced.encode(e).finish(), {
          msgId: `repo.synced.${e.commit}`,
        })
        .catch((err: unknown) =>
          log.warn("could not announce the new commit", { error: (err as Error).message }),
        );
    },
  });
  const status = repo.status();
  if (status.lastError)
    throw new Error(`cannot read the pipelines repository ${status.remote}: ${status.lastError}`);
  // A local directory or work tree is re-read whenever asked for its newest commit (it changes
  // under our feet).
  const onDisk = Boolean(local || checkout);
  const catalog = new PipelineCatalog(new RepositoryFiles(repo, onDisk), {
    maxStalenessMs: onDisk ? 0 : 30_000,
  });
  follow.catalog = catalog;

  const backend: TaskBackend =
    options.backend ??
    new LocalBackend({ logDir: join(state, "logs"), dataRoot: data, logger: log });
  await backend.start(publishStateEvents(bus));
  // One launcher, two callers: the scheduler in this process and the K8sLauncherService, as in a
  // deployment (same checks on every request).
  // The cache hashes inputs and outputs here, on the local filesystem (the checkouts are under it).
  const launcher = new Launcher(backend, { readRoots: [data] });
  const pipelines = new CatalogPipelines(catalog);
  const scheduler = new Scheduler({
    store: new SchedulerStore(kv),
    bus,
    pipelines,
    checkouts: new RepositoryCheckouts(repo),
    launcher,
    dataPath: data,
    maxRunningTasks: options.maxRunningTasks,
    metrics: schedulerMetrics(metrics),
    logger: log,
    notifier: new WebhookNotifier({
      secrets: configuredWebhookSecrets(options.webhooks ?? {}),
      delivery: options.webhookDelivery,
      log,
    }),
    // The web UI's address is known once it listens (its port may be picked then).
    publicUrl: () => options.publicUrl ?? http?.url,
  });
  await scheduler.start();
  const schedules = new ScheduleRunner({
    kv,
    runs: scheduler,
    pipelines,
    declared: pipelines,
    bus,
    logger: log,
  });
  await schedules.start();
  const triggers = new TriggerRunner({
    kv,
    runs: scheduler,
    declared: pipelines,
    commits: new RepositoryCommits(repo),
    bus,
    logger: log,
  });
  await triggers.start();
  // A remote is fetched every minute; a work tree on this machine more often, so a `git commit`
  // there starts its commit triggers within seconds (`odin sync`: at once). A plain directory is
  // snapshotted whenever it is read (and by the schedules' sweep every minute).
  if (isUrl) repo.startPeriodicSync(60_000);
  else if (checkout) repo.startPeriodicSync(options.syncIntervalMs ?? 5_000);

  const services = [
    repoSyncService(repo),
    pipelineRegistryService(catalog),
    dagSchedulerService(scheduler, schedules, triggers),
    k8sLauncherService(launcher, { dataRoot: data }),
  ];
  const host = options.host ?? "127.0.0.1";
  let server: OdinServer;
  let http: HttpGateway | undefined;
  try {
    server = await startServer({
      name: "odin",
      host,
      port: options.port,
      auth: options.auth,
      // With auth off, pushes into someone's own work tree are authored as its git config says.
      anonymousSubject: checkout?.identity,
      metrics: options.metrics,
      metricsRegistry: metrics,
      services,
      logger: log,
    });
    if (options.http) {
      // Browser calls go through the gRPC server like any other client's, so they are
      // authenticated, authorized, logged and counted the same way.
      http = await startHttpGateway({
        host,
        port: options.http.port,
        routes: [{ address: server.address, services: services.map((s) => s.definition) }],
        staticRoot: options.http.webRoot,
        logger: log,
      }).catch(async (err: unknown) => {
        await server.close(0);
        throw err;
      });
    }
  } catch (err) {
    await triggers.close();
    await schedules.close();
    await scheduler.close();
    await backend.close();
    throw err;
  }
  return {
    address: server.address,
    port: server.port,
    metricsPort: server.metricsPort,
    repoCommit: repo.currentCommit(),
    webUrl: http?.url,
    checkout,
    close: async () => {
      await http?.close();
      await server.close(2000);
      await triggers.close();
      await schedules.close();
      await scheduler.close();
      await backend.close();
      repo.close();
      await bus.close();
      await kv.close();
    },
  };
}
