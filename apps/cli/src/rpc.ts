// gRPC calls of the odin CLI, made directly over node:http2 with the generated service
// definitions' (de)serializers. grpc-js is built for long-lived servers and clients: loading it
// costs a short-lived command more CPU than all its other work, so the CLI speaks the small part
// of the protocol it needs (unary and server-streaming calls, plaintext h2c, bearer token,
// deadline, status and trailing metadata) itself. Errors look like grpc-js ones (numeric `code`,
// `details`, `metadata`), so service-kit's describeGrpcError and problemsOf read them unchanged.
import { connect as http2Connect, type ClientHttp2Session, constants } from "node:http2";
import { Metadata, status } from "@grpc/grpc-js";
import { rememberErrorAddress } from "@odin/service-kit";

/** A method of a generated service definition (e.g. `DagSchedulerServiceService.getRun`). */
export interface RpcMethod<Req, Res> {
  readonly path: string;
  readonly responseStream: boolean;
  requestSerialize(value: Req): Buffer;
  responseDeserialize(value: Buffer): Res;
}

/** A failed call: the server's status, or UNAVAILABLE when it could not be reached. */
export class RpcError extends Error {
  override readonly name = "RpcError";
  constructor(
    readonly code: number,
    readonly details: string,
    readonly metadata: Metadata,
  ) {
    super(`${code} ${status[code] ?? ""}: ${details}`);
  }
}

/** Options of {@link RpcChannel}. */
export interface RpcChannelOptions {
  /** `host:port` of the server. */
  address: string;
  /** Bearer token sent on every call. */
  token?: string;
  /** Deadline of unary calls in ms (streams have none). */
  deadlineMs: number;
}

const maxMessageBytes = 64 * 1024 * 1024;

/** One HTTP/2 connection to an Odin server (or gateway), opened on the first call. */
export class RpcChannel {
  private session: ClientHttp2Session | undefined;
  /** Why the connection failed (e.g. `connect ECONNREFUSED …`), for the calls that were on it. */
  private connectionError: Error | undefined;
  constructor(private readonly options: RpcChannelOptions) {}

  /** The server's address, as given. */
  get address(): string {
    return this.options.address;
  }

  private connection(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2Connect(`http://${this.options.address}`);
    // A failed connection is reported by each call on it; the session's own error needs a
    // listener so it does not crash the process.
    session.on("error", (err: Error) => (this.connectionError = err));
    // Idle streams (none in flight) must not keep the command alive.
    session.unref();
    this.session = session;
    return session;
  }

  /** Calls a unary method. */
  async unary<Req, Res>(method: RpcMethod<Req, Res>, request: Req): Promise<Res> {
    let response: Res | undefined;
    for await (const message of this.call(method, request, this.options.deadlineMs)) {
      response = message;
    }
    if (response === undefined)
      throw this.fail(status.INTERNAL, "the server sent no response message", new Metadata());
    return response;
  }

  /** Calls a server-streaming method; leaving the loop early cancels the call. */
  stream<Req, Res>(method: RpcMethod<Req, Res>, request: Req): AsyncGenerator<Res> {
    return this.call(method, request, 0);
  }

  /** Closes the connection. */
  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  private fail(code: number, details: string, metadata: Metadata): RpcError {
    const err = new RpcError(code, details, metadata);
    rememberErrorAddress(err, this.options.address);
    return err;
  }

  private async *call<Req, Res>(
    method: RpcMethod<Req, Res>,
    request: Req,
    deadlineMs: number,
  ): AsyncGenerator<Res> {
    const body = method.requestSerialize(request);
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const headers: Record<string, string> = {
      [constants.HTTP2_HEADER_METHOD]: "POST",
      [constants.HTTP2_HEADER_PATH]: method.path,
      "content-type": "application/grpc",
      te: "trailers",
      "user-agent": "odin-cli",
    };
    if (deadlineMs > 0) headers["grpc-timeout"] = `${deadlineMs}m`;
    const token = this.options.token?.trim();
    if (token) headers.authorization = `Bearer ${token}`;

    const session = this.connection();
    session.ref();
    const stream = session.request(headers);
    stream.end(frame);

    // Messages and the final status arrive as events; the generator pulls them from a queue.
    const messages: Res[] = [];
    let final: RpcError | null | undefined; // null: OK
    let wake: (() => void) | undefined;
    const notify = (): void => {
      wake?.();
      wake = undefined;
    };
    const metadata = new Metadata();
    const finish = (err: RpcError | null): void => {
      if (final === undefined) final = err;
      notify();
    };
    const readStatus = (h: Record<string, string | string[] | undefined>): boolean => {
      for (const [key, value] of Object.entries(h)) {
        if (key.startsWith(":") || key.startsWith("grpc-") || value === undefined) continue;
        if (key === "content-type" || key === "date") continue;
        for (const v of Array.isArray(value) ? value : [value])
          if (key.endsWith("-bin")) metadata.add(key, Buffer.from(v, "base64"));
          else metadata.add(key, v);
      }
      const code = h["grpc-status"];
      if (code === undefined) return false;
      const n = Number(code);
      const message = decodeURIComponent(String(h["grpc-message"] ?? ""));
      finish(n === 0 ? null : this.fail(n, message, metadata));
      return true;
    };
    let timer: NodeJS.Timeout | undefined;
    if (deadlineMs > 0) {
      timer = setTimeout(() => {
        finish(this.fail(status.DEADLINE_EXCEEDED, "Deadline exceeded", metadata));
        stream.close(constants.NGHTTP2_CANCEL);
      }, deadlineMs + 1000);
    }

    let buffered: Buffer = Buffer.alloc(0);
    stream.on("response", (h) => {
      const httpStatus = Number(h[constants.HTTP2_HEADER_STATUS]);
      if (readStatus(h)) return;
      if (httpStatus !== 200)
        finish(
          this.fail(
            status.UNKNOWN,
            `the server answered HTTP ${httpStatus}, not gRPC — is ${this.options.address} an Odin server?`,
            metadata,
          ),
        );
    });
    stream.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 5) {
        const length = buffered.readUInt32BE(1);
        if (length > maxMessageBytes) {
          finish(this.fail(status.RESOURCE_EXHAUSTED, `a message of ${length} bytes`, metadata));
          stream.close(constants.NGHTTP2_CANCEL);
          return;
        }
        if (buffered.length < 5 + length) break;
        if (buffered[0] !== 0) {
          finish(this.fail(status.INTERNAL, "compressed messages are not supported", metadata));
          stream.close(constants.NGHTTP2_CANCEL);
          return;
        }
        try {
          messages.push(method.responseDeserialize(buffered.subarray(5, 5 + length)));
        } catch (err) {
          finish(this.fail(status.INTERNAL, `bad response: ${String(err)}`, metadata));
        }
        buffered = buffered.subarray(5 + length);
      }
      notify();
    });
    stream.on("trailers", (h: Record<string, string | string[] | undefined>) => void readStatus(h));
    stream.on("close", () =>
      finish(
        this.fail(
          status.UNAVAILABLE,
          this.connectionError?.message ??
            (stream.rstCode && stream.rstCode !== constants.NGHTTP2_NO_ERROR
              ? `the stream was reset (HTTP/2 code ${stream.rstCode}); connection reset`
              : "the connection closed before the call finished"),
          metadata,
        ),
      ),
    );
    stream.on("error", (err: Error) =>
      finish(this.fail(status.UNAVAILABLE, (this.connectionError ?? err).message, metadata)),
    );

    try {
      for (;;) {
        while (messages.length > 0) yield messages.shift()!;
        if (final !== undefined) {
          if (final) throw final;
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      if (timer) clearTimeout(timer);
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      if (!session.destroyed) session.unref();
    }
  }
}
