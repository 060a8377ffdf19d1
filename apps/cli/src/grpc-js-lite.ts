// The bundled CLI's stand-in for @grpc/grpc-js (see tools/bundle.mjs): the CLI calls over
// node:http2 (rpc.ts), so it needs only grpc-js's status codes and metadata, and the names the
// generated service files import at load time.

/** gRPC status codes, as grpc-js numbers them. */
export enum status {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

type MetadataValue = string | Buffer;

/** Call metadata: lower-cased keys, each with its values in order (as grpc-js's Metadata). */
export class Metadata {
  private readonly map = new Map<string, MetadataValue[]>();
  /** Adds a value to a key. */
  add(key: string, value: MetadataValue): void {
    const k = key.toLowerCase();
    this.map.set(k, [...(this.map.get(k) ?? []), value]);
  }
  /** Replaces a key's values. */
  set(key: string, value: MetadataValue): void {
    this.map.set(key.toLowerCase(), [value]);
  }
  /** A key's values. */
  get(key: string): MetadataValue[] {
    return this.map.get(key.toLowerCase()) ?? [];
  }
  /** Removes a key. */
  remove(key: string): void {
    this.map.delete(key.toLowerCase());
  }
  /** A copy. */
  clone(): Metadata {
    const copy = new Metadata();
    for (const [k, v] of this.map) for (const x of v) copy.add(k, x);
    return copy;
  }
  /** Each key's first value. */
  getMap(): Record<string, MetadataValue> {
    const out: Record<string, MetadataValue> = {};
    for (const [k, v] of this.map) if (v[0] !== undefined) out[k] = v[0];
    return out;
  }
}

/** Generated clients extend this; the bundled CLI never constructs one. */
export class Client {
  constructor() {
    throw new Error("grpc-js clients are not part of the bundled odin CLI; use rpc.ts");
  }
}

/** Returns a client class that cannot be constructed (the CLI calls through rpc.ts). */
export function makeGenericClientConstructor(): typeof Client {
  return Client;
}

// Imported by service-kit's server, client and gateway modules, which the bundle drops as unused
// (the bundler still checks that the names exist).
const absent = (name: string) =>
  class {
    constructor() {
      throw new Error(`grpc-js ${name} is not part of the bundled odin CLI`);
    }
  };
/** Not in the bundled CLI. */
export const Server = absent("Server");
/** Not in the bundled CLI. */
export const ServerCredentials = absent("ServerCredentials");
/** Not in the bundled CLI. */
export const ServerInterceptingCall = absent("ServerInterceptingCall");
/** Not in the bundled CLI. */
export const InterceptingCall = absent("InterceptingCall");
/** Not in the bundled CLI. */
export const credentials = {};
