import {
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
  type JetStreamClient,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  type PushConsumer,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type NatsConnection,
} from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { natsServers, placementProblem, replicaProblem } from "@odin/events";
import {
  KeyExistsError,
  normalizeFilter,
  RevisionMismatchError,
  StoreClosedError,
  StoreUnavailableError,
  validateKey,
  validateRevision,
  ValueTooLargeError,
  type Change,
  type Entry,
  type KeyValueStore,
  type Watch,
} from "./store.js";

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Where the run-state bucket lives and how it is shaped. */
export interface NatsKeyValueStoreOptions {
  /** NATS server URL(s): a list, or one string with the URLs separated by commas. */
  servers: string | string[];
  /** Connection name shown by the server (e.g. the service name). */
  name?: string;
  /** KV bucket (default `odin-run-state`); every replica of a service must use the same one. */
  bucket?: string;
  /** Values kept per key, the live one included (default 1: no history). */
  history?: number;
  /**
   * Largest value in bytes (default 1 MiB, lowered to what the server takes in one message, its
   * `max_payload` less 1 KiB for headers). Larger values fail with `ValueTooLargeError`.
   */
  maxValueBytes?: number;
  /** Where the server keeps the bucket (default `file`: survives a server restart). */
  storage?: "file" | "memory";
  /**
   * Copies kept in a NATS cluster (default 1). An existing bucket with fewer is refused
   * (`StoreConfigError`, saying how to scale it up).
   */
  replicas?: number;
  /** Time limit of every operation, and of each step of a listing, in ms (default 5,000). */
  timeoutMs?: number;
  /** How long to wait for the first connection, in ms (default 5,000). */
  connectTimeoutMs?: number;
  /**
   * Told of each operation that failed (`get`, `create`, `update`, `put`, `delete`, `list`,
   * `watch`) — not of lost compare-and-sets, which are normal — e.g. to count it in a metric.
   */
  onError?: (operation: string) => void;
}

/** The bucket exists with settings this store cannot use, or the options ask for the impossible. */
export class StoreConfigError extends Error {
  override name = "StoreConfigError";
}

const MIB = 1024 * 1024;
/** Room left in a message for the headers of a write (the expected-revision header is ~60 bytes). */
const HEADER_ROOM = 1024;
const KV_OPERATION = "KV-Operation";

/**
 * The production run store: a JetStream KV bucket. Revisions are the stream sequence, so
 * compare-and-set holds across every connection and replica; the bucket is created when missing.
 */
export class NatsKeyValueStore implements KeyValueStore {
  private readonly watches = new Set<() => Promise<void>>();
  private readonly subjectPrefix: string;
  private closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly stream: string,
    bucket: string,
    private readonly url: string,
    private readonly timeoutMs: number,
    /** The largest value this store accepts, in bytes. */
    readonly maxValueBytes: number,
    private readonly onError: (operation: string) => void = () => {},
  ) {
    this.subjectPrefix = `$KV.${bucket}.`;
  }

  /**
   * Connects, creates the bucket if missing (or brings its history and size limit in line), and
   * fails fast with `StoreUnavailableError` when NATS or JetStream is not there.
   */
  static async connect(options: NatsKeyValueStoreOptions): Promise<NatsKeyValueStore> {
    const url = Array.isArray(options.servers) ? options.servers.join(",") : options.servers;
    const bucket = options.bucket ?? "odin-run-state";
    const history = options.history ?? 1;
    const timeoutMs = options.timeoutMs ?? 5000;
    const storage = options.storage ?? "file";
    if (!/^[-\w]+$/.test(bucket)) {
      throw new StoreConfigError(
        `bucket name ${JSON.stringify(bucket)} may use only letters, digits, - and _`,
      );
    }
    if (!Number.isInteger(history) || history < 1 || history > 64) {
      throw new StoreConfigError(`history must be an integer from 1 to 64, got ${history}`);
    }
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: natsServers(options.servers),
        name: options.name,
        timeout: options.connectTimeoutMs ?? 5000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
      });
    } catch (err) {
      throw new StoreUnavailableError(
        `cannot reach NATS at ${url}: ${(err as Error).message} — is nats-server running with -js?`,
        { cause: err },
      );
    }
    try {
      const fits = (nc.info?.max_payload ?? MIB) - HEADER_ROOM;
      const maxValueBytes = options.maxValueBytes ?? Math.min(MIB, fits);
      if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > fits) {
        throw new StoreConfigError(
          `maxValueBytes ${options.maxValueBytes} does not fit: NATS at ${url} takes messages up to ` +
            `${fits + HEADER_ROOM} bytes (max_payload) and a write needs ${HEADER_ROOM} for headers; ` +
            `lower maxValueBytes or raise max_payload in the server's configuration`,
        );
      }
      const js = jetstream(nc, { timeout: timeoutMs });
      const jsm = await js.jetstreamManager();
      const replicas = options.replicas ?? 1;
      const stream = `KV_${bucket}`;
      let kv: KV;
      try {
        kv = await new Kvm(js).create(bucket, {
          history,
          maxValueSize: maxValueBytes + HEADER_ROOM,
          storage: storage === "memory" ? StorageType.Memory : StorageType.File,
          replicas,
          timeout: timeoutMs,
        });
      } catch (err) {
        const problem = placementProblem(err, stream, replicas);
        if (problem !== undefined) throw new StoreConfigError(problem, { cause: err });
        throw err;
      }
      // An existing bucket keeps its settings; align the ones that may change, refuse the others.
      const { config } = await jsm.streams.info(stream);
      const fewer = replicaProblem(`bucket ${bucket}`, stream, config.num_replicas, replicas);
      if (fewer !== undefined) throw new StoreConfigError(fewer);
      if (config.storage !== (storage === "memory" ? StorageType.Memory : StorageType.File)) {
        throw new StoreConfigError(
          `bucket ${bucket} exists with ${config.storage} storage but ${storage} was asked; ` +
            `use the same storage option everywhere or delete the bucket`,
        );
      }
      if (
        config.max_msgs_per_subject !== history ||
        config.max_msg_size !== maxValueBytes + HEADER_ROOM
      ) {
        await jsm.streams.update(stream, {
          ...config,
          max_msgs_per_subject: history,
          max_msg_size: maxValueBytes + HEADER_ROOM,
        });
      }
      return new NatsKeyValueStore(
        nc,
        js,
        jsm,
        kv,
        stream,
        bucket,
        url,
        timeoutMs,
        maxValueBytes,
        options.onError,
      );
    } catch (err) {
      await nc.close().catch(() => undefined);
      if (err instanceof StoreConfigError) throw err;
      throw new StoreUnavailableError(
        `NATS at ${url} has no usable JetStream for bucket ${bucket}: ${(err as Error).message} — start nats-server with -js`,
        { cause: err },
      );
    }
  }

  async get(key: string): Promise<Entry | undefined> {
    this.checkOpen();
    validateKey(key);
    try {
      const entry = await this.kv.get(key);
      if (entry === null || entry.operation !== "PUT") return undefined;
      return { key, value: entry.value, revision: entry.revision };
    } catch (err) {
      throw this.translate(err, "get", `reading ${key}`);
    }
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    this.checkWrite(key, value);
    try {
      return await this.kv.create(key, value);
    } catch (err) {
      if (isWrongLastSequence(err)) throw new KeyExistsError(key, { cause: err });
      throw this.translate(err, "create", `creating ${key}`);
    }
  }

  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    this.checkWrite(key, value);
    validateRevision(expectedRevision);
    try {
      return await this.kv.update(key, value, expectedRevision);
    } catch (err) {
      if (isWrongLastSequence(err)) {
        throw new RevisionMismatchError(key, expectedRevision, undefined, { cause: err });
      }
      throw this.translate(err, "update", `updating ${key}`);
    }
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    this.checkWrite(key, value);
    try {
      return await this.kv.put(key, value);
    } catch (err) {
      throw this.translate(err, "put", `writing ${key}`);
    }
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    this.checkOpen();
    validateKey(key);
    if (expectedRevision !== undefined) validateRevision(expectedRevision);
    try {
      await this.kv.delete(
        key,
        expectedRevision !== undefined ? { previousSeq: expectedRevision } : undefined,
      );
    } catch (err) {
      if (isWrongLastSequence(err) && expectedRevision !== undefined) {
        throw new RevisionMismatchError(key, expectedRevision, undefined, { cause: err });
      }
      throw this.translate(err, "delete", `deleting ${key}`);
    }
  }

  async *keys(filter: string): AsyncIterable<string> {
    // A key rewritten during the listing comes again; report it once.
    const seen = new Set<string>();
    for await (const m of this.scan(filter, true)) {
      const key = m.subject.substring(this.subjectPrefix.length);
      if (!isDelete(m) && !seen.has(key)) {
        seen.add(key);
        yield key;
      }
    }
  }

  async *list(filter: string): AsyncIterable<Entry> {
    for await (const m of this.scan(filter, false)) {
      if (isDelete(m)) continue;
      yield { key: m.subject.substring(this.subjectPrefix.length), value: m.data, revision: m.seq };
    }
  }

  /**
   * One ordered push consumer per watch, with a single filter subject (NATS 2.9 has no
   * multi-filter consumers). It starts at an explicit stream sequence, the one after the last write
   * made before the call, rather than "new messages only": when the client recreates it after a
   * reconnect it then resumes after the last change seen instead of replaying the bucket.
   */
  async watch(filter: string, handler: (change: Change) => void): Promise<Watch> {
    const pattern = normalizeFilter(filter);
    this.checkOpen();
    let consumer: PushConsumer;
    let messages: ConsumerMessages;
    try {
      const { state } = await this.jsm.streams.info(this.stream);
      consumer = await this.js.consumers.getPushConsumer(this.stream, {
        filter_subjects: this.subjectPrefix + pattern,
        opt_start_seq: state.last_seq + 1,
      });
      messages = await consumer.consume({
        callback: (m) => {
          const key = m.subject.substring(this.subjectPrefix.length);
          const change: Change = isDelete(m)
            ? { op: "delete", key, revision: m.seq }
            : { op: "put", key, value: m.data, revision: m.seq };
          try {
            handler(change);
          } catch (err) {
            // The client would end the watch silently; a throwing handler is a bug, so make it loud.
            queueMicrotask(() => {
              throw err;
            });
          }
        },
      });
    } catch (err) {
      throw this.translate(err, "watch", `watching ${filter}`);
    }
    const stop = async (): Promise<void> => {
      if (!this.watches.delete(stop)) return;
      await messages.close();
      this.forget(consumer);
    };
    this.watches.add(stop);
    return { stop };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const stop of [...this.watches]) await stop();
    this.closed = true;
    // Drain flushes what is in flight; it cannot while the server is away, so close regardless.
    await this.withinTime(this.nc.drain(), "closing").catch(() => undefined);
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
  }

  /**
   * Streams the last message of every key matching `filter` through an ordered push consumer; the
   * iterator answers flow control only as the caller reads, so a long listing is paced by its
   * reader. Every step has the operation time limit, so a lost server fails the listing.
   */
  private async *scan(filter: string, headersOnly: boolean): AsyncGenerator<JsMsg> {
    const pattern = normalizeFilter(filter);
    this.checkOpen();
    const what = `listing ${filter === "" ? "every key" : filter}`;
    let consumer: PushConsumer;
    try {
      consumer = await this.js.consumers.getPushConsumer(this.stream, {
        filter_subjects: this.subjectPrefix + pattern,
        deliver_policy: DeliverPolicy.LastPerSubject,
        headers_only: headersOnly,
      });
    } catch (err) {
      throw this.translate(err, "list", what);
    }
    try {
      const info = await consumer.info(true);
      if (info.num_pending === 0) return;
      const messages = await consumer.consume();
      const iterator = messages[Symbol.asyncIterator]();
      try {
        let waiting: Promise<IteratorResult<JsMsg>> | undefined;
        let silentSince = Date.now();
        let received = 0;
        for (;;) {
          waiting ??= iterator.next();
          const next = await Promise.race([waiting, sleep(250).then(() => undefined)]);
          if (next === undefined) {
            // Quiet for a moment. With one value per key, a message counted as pending can be
            // replaced before it is delivered, so the count may never reach 0: ask the server
            // whether anything is really left before waiting longer. Nothing left to send is not
            // the end while messages it has sent are still on their way (a busy client).
            const now = await this.withinTime(consumer.info(false), what);
            if (now.num_pending === 0 && received >= now.delivered.consumer_seq) return;
            if (Date.now() - silentSince > this.timeoutMs) {
              throw new StoreUnavailableError(
                `${what}: NATS at ${this.url} sent nothing for ${this.timeoutMs} ms — is it running?`,
              );
            }
            continue;
          }
          waiting = undefined;
          silentSince = Date.now();
          if (next.done !== true) received++;
          if (next.done === true) {
            this.checkOpen();
            throw new StoreUnavailableError(`${what}: NATS at ${this.url} ended the listing early`);
          }
          yield next.value;
          if (next.value.info.pending === 0) return;
        }
      } catch (err) {
        if (!this.closed) this.onError("list");
        throw err;
      } finally {
        // In iterator mode the client ends the subscription only once the iterator is returned;
        // `stop()` first, so a `next()` still waiting on a silent server settles too.
        messages.stop();
        await iterator.return?.(undefined);
      }
    } finally {
      this.forget(consumer);
    }
  }

  /** Deletes a finished ephemeral consumer now rather than after the server's 5-minute idle limit. */
  private forget(consumer: PushConsumer): void {
    if (this.closed) return;
    consumer.delete().catch(() => undefined);
  }

  private withinTime<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              `${what}: NATS at ${this.url} sent nothing for ${this.timeoutMs} ms — is it running?`,
            ),
          ),
        this.timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  private checkWrite(key: string, value: Uint8Array): void {
    this.checkOpen();
    validateKey(key);
    if (!(value instanceof Uint8Array)) throw new TypeError(`value of ${key} must be a Uint8Array`);
    if (value.byteLength > this.maxValueBytes) {
      throw new ValueTooLargeError(
        `value of ${key} is ${value.byteLength} bytes, more than the store's limit of ${this.maxValueBytes}; keep run state small and split it across keys`,
      );
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError("the run store is closed");
  }

  /**
   * Connection trouble becomes `StoreUnavailableError`; anything else is a bug and passes as is.
   * Either way the operation failed, and `onError` hears of it.
   */
  private translate(err: unknown, operation: string, what: string): Error {
    if (this.closed)
      return new StoreClosedError(`${what}: the run store is closed`, { cause: err });
    this.onError(operation);
    if (
      err instanceof TimeoutError ||
      err instanceof RequestError ||
      err instanceof NoRespondersError ||
      err instanceof ConnectionError ||
      err instanceof ClosedConnectionError ||
      err instanceof DrainingConnectionError ||
      isLeaderless(err)
    ) {
      return new StoreUnavailableError(
        `${what}: NATS at ${this.url} did not answer within ${this.timeoutMs} ms (${err.message}) — is nats-server running with -js?`,
        { cause: err },
      );
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * In a cluster, while a bucket's replicas elect a new leader (a node was lost), writes find no
 * responder (reported by the client as "jetstream is not enabled") or get a 503: both pass.
 */
function isLeaderless(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  if (err.name === "JetStreamNotEnabled") return true;
  return err instanceof JetStreamApiError && err.status === 503;
}

function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

function isDelete(m: JsMsg): boolean {
  const op = m.headers?.get(KV_OPERATION);
  return op === "DEL" || op === "PURGE";
}
