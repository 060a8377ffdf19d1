// Odin's services over HTTP/1.1 for browsers and curl: the Connect protocol (JSON or binary, unary
// and server-streaming) and gRPC-Web, translated to gRPC calls on the services, plus the web UI's
// static files. Like the gRPC gateway it knows no method by name: every RPC of every routed service
// is registered from the committed descriptor set, its request re-encoded as protobuf and
// forwarded with the caller's `authorization` header as gRPC metadata, so the services
// authenticate and authorize browser calls exactly as they do the CLI's.
import { readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import {
  Client,
  credentials,
  Metadata,
  status,
  type ServiceDefinition,
  type ServiceError,
} from "@grpc/grpc-js";
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type Message,
} from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { descriptorSetPath } from "@odin/proto";
import type { GatewayRoute } from "./gateway.js";
import type { Logger } from "./logger.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./server.js";

/** Options of {@link startHttpGateway}. */
export interface HttpGatewayOptions {
  /** Address to listen on; default `0.0.0.0`. */
  host?: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** gRPC backends and the services each serves (every RPC of them becomes an HTTP endpoint). */
  routes: readonly GatewayRoute[];
  /** A directory of static files (the web UI) served at `/`; unknown paths get its index.html. */
  staticRoot?: string;
  logger: Logger;
  maxMessageBytes?: number;
}

/** A running HTTP gateway. */
export interface HttpGateway {
  port: number;
  /** `http://host:port/` to open in a browser (a wildcard host is reported as 127.0.0.1). */
  url: string;
  close(): Promise<void>;
}

// Request headers that become gRPC metadata: the bearer token and the caller's request id. Nothing
// else crosses (cookies in particular never reach a service).
const FORWARDED_HEADERS = ["authorization", "x-request-id"];

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
};

/** Every service of the committed descriptor set, by full name. */
function loadServices(): Map<string, DescService> {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath));
  const registry = createFileRegistry(set);
  const services = new Map<string, DescService>();
  for (const file of registry.files)
    for (const service of file.services) services.set(service.typeName, service);
  return services;
}

function metadataOf(header: Headers): Metadata {
  const metadata = new Metadata();
  for (const name of FORWARDED_HEADERS) {
    const value = header.get(name);
    if (value !== null) metadata.set(name, value);
  }
  return metadata;
}

/** A gRPC status as a Connect error (the codes are the same numbers), trailers kept. */
function connectErrorOf(err: ServiceError, address: string): ConnectError {
  const metadata = new Headers();
  for (const [key, values] of Object.entries(err.metadata?.getMap() ?? {})) {
    // Binary metadata travels base64-encoded under its `-bin` key, as the Connect protocol says.
    metadata.set(key, Buffer.isBuffer(values) ? values.toString("base64") : String(values));
  }
  const details =
    err.code === status.UNAVAILABLE
      ? `${err.details} (the gateway could not reach the service at ${address})`
      : err.details;
  return new ConnectError(details, err.code as number, metadata);
}

function deadlineOf(context: HandlerContext): Date | number {
  const ms = context.timeoutMs();
  return ms === undefined ? Infinity : Date.now() + ms;
}

const passThrough = (b: Buffer): Buffer => b;

// Content types of the binary encodings (Connect unary and streaming, gRPC-Web).
const BINARY_CONTENT_TYPE =
  /^application\/(proto|connect\+proto|grpc-web|grpc-web\+proto)\s*(;|$)/i;

/**
 * A response for the caller's encoding. JSON needs the message decoded; a binary caller gets the
 * service's bytes as they are: each top-level field is kept as an unknown field of an empty
 * message, which protobuf-es writes back verbatim. Decoding and re-encoding a 10,000-task
 * pipeline would cost half a second of this process's time, and the browser decodes it anyway.
 */
function responseOf(desc: DescMessage, bytes: Uint8Array, context: HandlerContext): Message {
  if (!BINARY_CONTENT_TYPE.test(context.requestHeader.get("content-type") ?? ""))
    return fromBinary(desc, bytes);
  const message = create(desc);
  const reader = new BinaryReader(bytes);
  const fields: NonNullable<Message["$unknown"]> = [];
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    fields.push({ no, wireType, data: reader.skip(wireType, no) });
  }
  if (fields.length > 0) message.$unknown = fields;
  return message;
}

function forwardUnary(client: Client, address: string, method: DescMethod, path: string) {
  return (request: Message, context: HandlerContext): Promise<Message> =>
    new Promise((resolve, reject) => {
      const call: { cancel(): void } = client.makeUnaryRequest(
        path,
        passThrough,
        passThrough,
        Buffer.from(toBinary(method.input, request)),
        metadataOf(context.requestHeader),
        { deadline: deadlineOf(context) },
        (err, response) => {
          context.signal.removeEventListener("abort", cancel);
          if (err) reject(connectErrorOf(err, address));
          else resolve(responseOf(method.output, response ?? Buffer.alloc(0), context));
        },
      );
      const cancel = (): void => call.cancel();
      context.signal.addEventListener("abort", cancel);
    });
}

function forwardServerStream(client: Client, address: string, method: DescMethod, path: string) {
  return async function* (request: Message, context: HandlerContext): AsyncGenerator<Message> {
    const upstream = client.makeServerStreamRequest(
      path,
      passThrough,
      passThrough,
      Buffer.from(toBinary(method.input, request)),
      metadataOf(context.requestHeader),
      { deadline: deadlineOf(context) },
    );
    const cancel = (): void => upstream.cancel();
    context.signal.addEventListener("abort", cancel);
    try {
      for await (const chunk of upstream as AsyncIterable<Buffer>)
        yield responseOf(method.output, chunk, context);
    } catch (err) {
      throw connectErrorOf(err as ServiceError, address);
    } finally {
      context.signal.removeEventListener("abort", cancel);
      upstream.cancel();
    }
  };
}

/** Serves files under `root`; paths that are not files get index.html, so deep links load the app. */
function staticFiles(root: string | undefined) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (root === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    let relative: string;
    try {
      relative = normalize(decodeURIComponent(url.pathname));
    } catch {
      res.writeHead(400, { "content-type": "text/plain" }).end("bad path\n");
      return;
    }
    // normalize() resolves every `..` against the leading `/`, so the joined path stays in root.
    let file = join(root, relative);
    const isFile = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!isFile || !file.startsWith(root + sep)) file = join(root, "index.html");
    // The build puts a gzipped copy beside each bundle; a browser that takes gzip gets that.
    const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    let body: Buffer | undefined = gzip
      ? await readFile(`${file}.gz`).catch(() => undefined)
      : undefined;
    const encoding = body === undefined ? undefined : "gzip";
    try {
      body ??= await readFile(file);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("the web UI is not built\n");
      return;
    }
    const hashed = /\.[0-9A-Z]{8}\.(js|css)$/i.test(file);
    res.writeHead(200, {
      "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": body.length,
      ...(encoding ? { "content-encoding": encoding } : {}),
      vary: "accept-encoding",
      // Bundles carry their content hash in the name; index.html must be revalidated.
      "cache-control": hashed ? "public, max-age=31536000, immutable" : "no-cache",
      "x-content-type-options": "nosniff",
      "content-security-policy":
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
      "referrer-policy": "no-referrer",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };
}

/**
 * Starts an HTTP/1.1 server that serves every RPC of the routed services with the Connect protocol
 * (and gRPC-Web) at `/<package>.<Service>/<Method>`, forwarding each to its gRPC backend, and the
 * web UI's files everywhere else.
 */
export async function startHttpGateway(options: HttpGatewayOptions): Promise<HttpGateway> {
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const services = loadServices();
  const clients: Client[] = [];
  const routes = (router: ConnectRouter): void => {
    // The implementations are generic over every method, which MethodImpl's types cannot express.
    const register = router.rpc as (method: DescMethod, impl: unknown) => ConnectRouter;
    for (const route of options.routes) {
      const client = new Client(route.address, credentials.createInsecure(), {
        "grpc.max_receive_message_length": max,
        "grpc.max_send_message_length": max,
      });
      clients.push(client);
      for (const definition of route.services) {
        const name = serviceNameOf(definition);
        const service = services.get(name);
        if (service === undefined)
          throw new Error(`${name} is not in the descriptor set; run npm run proto:gen`);
        for (const method of service.methods) {
          const path = `/${service.typeName}/${method.name}`;
          if (method.methodKind === "unary")
            register(method, forwardUnary(client, route.address, method, path));
          else if (method.methodKind === "server_streaming")
            register(method, forwardServerStream(client, route.address, method, path));
          // Odin has no client- or bidi-streaming RPCs; browsers could not call them over HTTP/1.1.
        }
      }
    }
  };
  const serveStatic = staticFiles(
    options.staticRoot === undefined ? undefined : resolve(options.staticRoot),
  );
  const handler = connectNodeAdapter({
    routes,
    grpc: false,
    readMaxBytes: max,
    writeMaxBytes: max,
    fallback: (req, res) => {
      // This server is HTTP/1.1 (createServer below), so these are http's own classes.
      const response = res as ServerResponse;
      serveStatic(req as IncomingMessage, response).catch((err: unknown) => {
        options.logger.error("static file", { err });
        if (!response.headersSent) response.writeHead(500).end();
      });
    },
  });
  const server = createServer(handler);
  const host = options.host ?? "0.0.0.0";
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : options.port);
    });
  });
  const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return {
    port,
    url: `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          for (const c of clients) c.close();
          resolve();
        });
        // Streams (WatchRun, log follow) would hold the server open: cut them.
        server.closeAllConnections();
      }),
  };
}

function serviceNameOf(definition: ServiceDefinition): string {
  const first = Object.values(definition)[0];
  if (first === undefined) throw new Error("a routed service has no methods");
  return first.path.split("/")[1] ?? "";
}
