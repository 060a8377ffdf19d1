// odin server: every service in one process (embedded mode).
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { startEmbedded } from "@odin/embedded";
import { KubernetesBackend } from "@odin/launcher";
import { webRoot } from "@odin/web";
import { createLogger, loadTokensFile, type LogLevel } from "@odin/service-kit";

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
  logLevel: LogLevel;
}

/** The examples shipped with Odin: the default pipelines of `odin server`. */
export function defaultRepo(): string {
  return fileURLToPath(new URL("../../../../examples/pipelines", import.meta.url));
}

/** `odin server`: runs until interrupted; prints one line saying where and how it serves. */
export async function serverCommand(
  options: ServerOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const repo = options.repo ?? defaultRepo();
  if (!/:\/\/|@/.test(repo) && !existsSync(repo))
    throw new Error(`--repo ${repo}: no such directory (give a pipelines directory or a git URL)`);
  const logger = createLogger({ service: "odin-server", level: options.logLevel });
  const auth = options.tokens ? await loadTokensFile(options.tokens) : "off";
  let kubeContext: string | undefined;
  let backend: KubernetesBackend | undefined;
  if (options.kube) {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
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
    logger,
  });
  out.write(
    `odin server listening on ${odin.address} — ${auth === "off" ? "auth off (embedded mode: every caller is an admin; pass --tokens FILE to require tokens)" : "auth on"}\n` +
      `  web UI and HTTP/JSON API: ${odin.webUrl ?? ""}\n` +
      `  pipelines: ${/:\/\/|@/.test(repo) ? repo : resolve(repo)} (commit ${odin.repoCommit.slice(0, 12)})\n` +
      `  run data:  ${resolve(options.data)}\n` +
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
