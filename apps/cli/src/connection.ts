import { cliConfigSchema as vars } from "./config.js";
import { RpcChannel } from "./rpc.js";

/** Where the Odin server is and who is calling, from flags or the environment. */
export interface ConnectionOptions {
  server?: string;
  token?: string;
}

/** The server address from the environment: ODIN_SERVER, else ODIN_URL:ODIN_PORT, else localhost:50051. */
export function serverFromEnv(env: NodeJS.ProcessEnv): string {
  const server = env[vars.server.name];
  if (server) return server;
  const url = env[vars.url.name];
  const port = env[vars.port.name];
  if (url || port) {
    // ODIN_URL may be a URL (`https://odin.example:9003/`) or a host name.
    const host = (url ?? "").replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/[:/].*$/, "");
    return `${host || "localhost"}:${port || "50051"}`;
  }
  return "localhost:50051";
}

/** A channel to the Odin server at --server (or the environment) with --token / ODIN_TOKEN. */
export function connect(options: ConnectionOptions): RpcChannel {
  return new RpcChannel({
    address: options.server || serverFromEnv(process.env),
    token: options.token || process.env[vars.token.name],
    deadlineMs: 60_000,
  });
}
