// One address for every Odin service: a gRPC router that forwards each call, untouched (bytes,
// metadata, deadline, status, trailers), to the service that implements it. The services still
// authenticate every call themselves.
import {
  Client,
  credentials,
  type Metadata,
  Server,
  ServerCredentials,
  status,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type ServiceDefinition,
  type ServiceError,
} from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "./logger.js";

/** A backend and the services it serves. */
export interface GatewayRoute {
  address: string;
  services: readonly ServiceDefinition[];
}

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  host?: string;
  port: number;
  routes: readonly GatewayRoute[];
  logger: Logger;
  maxMessageBytes?: number;
}

/** A running gateway. */
export interface Gateway {
  port: number;
  address: string;
  close(graceMs?: number): Promise<void>;
}

const passThrough = (b: Buffer): Buffer => b;

function forwardedMetadata(incoming: Metadata): Metadata {
  const out = incoming.clone();
  // Transport-level headers are the channel's business, not the call's.
  for (const key of [
    "host",
    "user-agent",
    "te",
    "content-type",
    "grpc-accept-encoding",
    "grpc-encoding",
  ])
    out.remove(key);
  return out;
}

function unavailable(address: string, err: ServiceError): ServiceError {
  if (err.code !== status.UNAVAILABLE) return err;
  return Object.assign(new Error(err.details), {
    ...err,
    details: `${err.details} (the gateway could not reach the service at ${address})`,
  });
}

/** Starts a gateway that serves every route's services on one port. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const max = options.maxMessageBytes ?? 16 * 1024 * 1024;
  const server = new Server({
    "grpc.max_receive_message_length": max,
    "grpc.max_send_message_length": max,
  });
  const clients: Client[] = [];
  const health = new HealthImplementation({ "": "SERVING" });
  health.addToServer(server);
  for (const route of options.routes) {
    const client = new Client(route.address, credentials.createInsecure(), {
      "grpc.max_receive_message_length": max,
      "grpc.max_send_message_length": max,
    });
    clients.push(client);
    for (const method of route.services.flatMap((s) => Object.values(s))) {
      const path = method.path;
      if (method.requestStream) continue;
      if (!method.responseStream) {
        server.register(
          path,
          (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
            client.makeUnaryRequest(
              path,
              passThrough,
              passThrough,
              call.request,
              forwardedMetadata(call.metadata),
              { deadline: call.getDeadline() },
              (err, response) =>
                err ? callback(unavailable(route.address, err)) : callback(null, response),
            );
          },
          passThrough,
          passThrough,
          "unary",
        );
      } else {
        server.register(
          path,
          (call: ServerWritableStream<Buffer, Buffer>) => {
            const upstream = client.makeServerStreamRequest(
              path,
              passThrough,
              passThrough,
              call.request,
              forwardedMetadata(call.metadata),
              {
                deadline: call.getDeadline(),
              },
            );
            call.on("cancelled", () => upstream.cancel());
            upstream.on("data", (chunk: Buffer) => {
              if (!call.write(chunk)) {
                upstream.pause();
                call.once("drain", () => upstream.resume());
              }
            });
            upstream.on("error", (err: ServiceError) =>
              call.emit("error", unavailable(route.address, err)),
            );
            upstream.on("end", () => call.end());
          },
          passThrough,
          passThrough,
          "serverStream",
        );
      }
    }
  }
  const host = options.host ?? "0.0.0.0";
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const address = `${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${port}`;
  options.logger.info("gateway routes", {
    routes: options.routes.map((r) => ({
      address: r.address,
      services: r.services.map((s) => Object.values(s)[0]?.path.split("/")[1]),
    })),
  });
  return {
    port,
    address,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        health.setStatus("", "NOT_SERVING");
        const timer = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          for (const c of clients) c.close();
          resolve();
        });
      }),
  };
}
