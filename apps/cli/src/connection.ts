import type { Client } from "@grpc/grpc-js";
import { createClient, type ClientConstructor } from "@odin/service-kit";

/** Where the Odin server is and who is calling, from flags or the environment. */
export interface ConnectionOptions {
  server?: string;
  token?: string;
}

/** The address the CLI dials when neither --server nor ODIN_SERVER is given. */
export const defaultServer = "localhost:50051";

/** A client of one Odin service, dialled at --server / ODIN_SERVER with --token / ODIN_TOKEN. */
export function connect<C extends Client>(
  Ctor: ClientConstructor<C>,
  options: ConnectionOptions,
): { client: C; address: string } {
  const address = options.server || process.env.ODIN_SERVER || defaultServer;
  const token = options.token || process.env.ODIN_TOKEN || undefined;
  return { client: createClient(Ctor, { address, token, deadlineMs: 60_000 }), address };
}
