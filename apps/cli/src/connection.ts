import type { Client } from "@grpc/grpc-js";
import { createClient, readConfig, type ClientConstructor } from "@odin/service-kit";
import { cliConfigSchema } from "./config.js";

/** Where the Odin server is and who is calling, from flags or the environment. */
export interface ConnectionOptions {
  server?: string;
  token?: string;
}

/** A client of one Odin service, dialled at --server / ODIN_SERVER with --token / ODIN_TOKEN. */
export function connect<C extends Client>(
  Ctor: ClientConstructor<C>,
  options: ConnectionOptions,
): { client: C; address: string } {
  const env = readConfig(process.env, cliConfigSchema);
  const address = options.server || env.server;
  const token = options.token || env.token;
  return { client: createClient(Ctor, { address, token, deadlineMs: 60_000 }), address };
}
