// odin server: every service in one process (embedded mode).
import { existsSync } from "node:fs";
import { cp, mkdir, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setLogger } from "@grpc/grpc-js";
import { KubeConfig } from "@kubernetes/client-node";
import { cliConfigSchema as vars } from "../config.js";
import { CommandError } from "../exit.js";
import { startEmbedded } from "@odin/embedded";
import { KubernetesBackend } from "@odin/launcher";
import { webRoot } from "@odin/web";
import {
  createLogger,
  createMetricsRegistry,
  kubernetesApiMetrics,
  loadTokensFile,
  type LogLevel,
} from "@odin/service-kit";

/** The port `odin server` listens on by default (the CLI's default `--server` is localhost:50051). */
export const defaultServerPort = 50051;
/** The port of `odin server`'s web UI and HTTP/JSON API by default. */
export const defaultHttpPort = 8080;

/** Options of `odin server`. */
export interface ServerOptions {
  repo?: string;
  data: string;
  port: number;
  /** The web UI's and HTTP/JSON API's port (0 picks a free one). */
  httpPort: number;
  host: string;
  nats?: string;
  /** Run tasks on Kubernetes: the current kubeconfig context (KUBECONFIG, ~/.kube/config, in-cluster). */
  kube?: boolean;
  namespace?: string;
  tokens?: string;
  /** The global cap on tasks running at once (0: none). */
  maxRunningTasks: number;
  /** Serve /metrics and /healthz on this port (on `host`); unset: no metrics endpoint. */
  metricsPort?: number;
  /** Webhook secret names to URLs (YAML/JSON) for pipelines' `notify:`; default ODIN_WEBHOOKS_FILE. */
  webhooks?: string;
  /** The web UI's address as people reach it (notification links); default ODIN_PUBLIC_URL. */
  publicUrl?: string;
  logLevel: LogLevel;
}

/**
 * The kubeconfig `--kube` uses, as kubectl picks it: KUBECONFIG's files, else ~/.kube/config, else
 * the in-cluster service account; a clear error when there is none.
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const listed = (env.KUBECONFIG ?? "").split(delimiter).filter(Boolean);
  const missing = listed.filter((f) => !existsSync(f));
  if (listed.length > 0 && missing.length === listed.length)
    throw new CommandError(
      `--kube: KUBECONFIG names ${missing.join(", ")}, which does not exist; point KUBECONFIG at your cluster's kubeconfig (odin kube-sim prints one)`,
    );
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (listed.length === 0 && !existsSync(home) && !env.KUBERNETES_SERVICE_HOST)
    throw new CommandError(
      `--kube: no kubeconfig — KUBECONFIG is not set and ${home} does not exist; set KUBECONFIG to your cluster's kubeconfig (odin kube-sim prints one)`,
    );
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (err) {
    throw new CommandError(`--kube: cannot read the kubeconfig: ${(err as Error).message}`);
  }
  return kubeConfig;
}

/** The examples shipped with Odin: the default pipelines of `odin server`. */
export function defaultRepo(): string {
  return fileURLToPath(new URL("../../../../examples/pipelines", import.meta.url));
}

/**
 * The pipelines `odin server` serves when given none: a copy of the shipped examples in its state
 * directory (`<data>/.odin/pipelines`), made on the first start and kept after. `odin push` writes
 * into the directory served, which must not be Odin's own files: they belong to every user of the
 * installation, are often read-only, and are replaced by an upgrade.
 */
export async function examplesCopy(data: string): Promise<string> {
  const dir = join(resolve(data), ".odin", "pipelines");
  if (existsSync(dir)) return dir;
  await mkdir(join(dir, ".."), { recursive: true });
  // Copied aside and renamed into place: a start interrupted midway leaves no half copy.
  const partial = `${dir}.${process.pid}.partial`;
  await rm(partial, { recursive: true, force: true });
  await cp(defaultRepo(), partial, { recursive: true });
  await rename(partial, dir);
  return dir;
}

/** `odin server`: runs until interrupted; prints one line saying where and how it serves. */
export async function serverCommand(
  options: ServerOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const repo = options.repo ?? (await examplesCopy(options.data));
  if (!/:\/\/|@/.test(repo) && !existsSync(repo))
    throw new Error(`--repo ${repo}: no such directory (give a pipelines directory or a git URL)`);
  const logger = createLogger({ service: "odin-server", level: options.logLevel });
  // grpc-js prints its own errors (e.g. a port in use) to stderr before Odin reports them in one
  // clear line; its messages go to the server's log instead.
  setLogger({
    error: (...args: unknown[]) => logger.debug("grpc", { message: args.join(" ") }),
    info: (...args: unknown[]) => logger.debug("grpc", { message: args.join(" ") }),
    debug: (...args: unknown[]) => logger.debug("grpc", { message: args.join(" ") }),
  });
  const auth = options.tokens ? await loadTokensFile(options.tokens) : "off";
  const webhooks = options.webhooks || process.env[vars.webhooksFile.name] || undefined;
  if (webhooks && !existsSync(webhooks))
    throw new CommandError(
      `--webhooks ${webhooks}: no such file; give a YAML file mapping webhook names to URLs (docs/notifications.md)`,
    );
  const publicUrl = options.publicUrl || process.env[vars.publicUrl.name] || undefined;
  if (publicUrl && !/^https?:\/\/[^/\s]+/.test(publicUrl))
    throw new CommandError(
      `--public-url ${publicUrl}: give the web UI's address as people open it, e.g. https://odin.example.com`,
    );
  let kubeContext: string | undefined;
  let backend: KubernetesBackend | undefined;
  const metricsRegistry = createMetricsRegistry();
  if (options.kube) {
    const kubeConfig = loadKubeConfig();
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster)
      throw new Error(
        "--kube: no current Kubernetes context; set KUBECONFIG or run kubectl config use-context",
      );
    kubeContext = `${kubeConfig.getCurrentContext()} (${cluster.server})`;
    backend = new KubernetesBackend({
      kubeConfig,
      manifest: { namespace: options.namespace ?? "default" },
      dataRoot: resolve(options.data),
      metrics: kubernetesApiMetrics(metricsRegistry),
      logger,
    });
  }
  const odin = await startEmbedded({
    repo,
    dataDir: options.data,
    host: options.host,
    port: options.port,
    http: { port: options.httpPort, webRoot },
    auth,
    natsUrl: options.nats,
    backend,
    maxRunningTasks: options.maxRunningTasks > 0 ? options.maxRunningTasks : undefined,
    metricsRegistry,
    webhooks: webhooks ? { file: resolve(webhooks) } : undefined,
    publicUrl,
    metrics:
      options.metricsPort !== undefined
        ? { host: options.host, port: options.metricsPort }
        : undefined,
    logger,
  });
  out.write(
    `odin server listening on ${odin.address} — ${auth === "off" ? "auth off (embedded mode: every caller is an admin; pass --tokens FILE to require tokens)" : "auth on"}\n` +
      `  web UI and HTTP/JSON API: ${odin.webUrl ?? ""}\n` +
      (odin.checkout
        ? `  pipelines: ${odin.checkout.directory} — your git work tree: runs use the commits of branch ${odin.checkout.branch} (now ${odin.repoCommit.slice(0, 12)}), odin push commits there as ${odin.checkout.identity && auth === "off" ? odin.checkout.identity : "the caller"}\n` +
          (odin.checkout.dirty
            ? `  warning: ${odin.checkout.directory} has uncommitted changes; runs use its commits, not those changes (commit them to run them), and odin push is refused until they are committed or stashed\n`
            : "")
        : `  pipelines: ${/:\/\/|@/.test(repo) ? repo : resolve(repo)} (commit ${odin.repoCommit.slice(0, 12)})${options.repo === undefined ? " — a copy of Odin's examples, made on the first start: odin push writes there; --repo DIR serves your own" : ""}\n`) +
      `  run data:  ${resolve(options.data)}\n` +
      (odin.metricsPort !== undefined
        ? `  metrics:   http://${options.host}:${odin.metricsPort}/metrics\n`
        : "") +
      (webhooks ? `  webhooks:  names from ${resolve(webhooks)}\n` : "") +
      (options.maxRunningTasks > 0
        ? `  at most ${options.maxRunningTasks} tasks run at once across all runs\n`
        : "") +
      `  events and run state: ${options.nats ? `NATS at ${options.nats}` : "in memory (lost when the server stops)"}\n` +
      (kubeContext
        ? `  tasks run on Kubernetes: context ${kubeContext}, namespace ${options.namespace ?? "default"}\n`
        : `  tasks run as local processes (their images are ignored)\n`) +
      `try: odin ls; odin run diamond --follow   (with ODIN_SERVER=${odin.address} if not the default)\n`,
  );
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      out.write("odin server stopping\n");
      done();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  await odin.close();
  return 0;
}
