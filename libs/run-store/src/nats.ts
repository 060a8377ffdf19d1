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
import {
  isStreamNotFound,
  natsServers,
  placementProblem,
  replicaProblem,
  StreamKeeper,
  withoutCredentials,
  type NatsLog,
} from "@odin/events";
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
  type KeyRevision,
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
  /** Where connection trouble and a lost bucket are reported (the service's logger). */
  log?: NatsLog;
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

/** One watch of the store, kept across lost consumers and a lost bucket. */
interface WatchState {
  /** The NATS subject the watch follows (`$KV.<bucket>.<pattern>`). */
  subject: string;
  /** `watch`'s handler (with values), or `watchKeys`'s (without). */
  handler: (change: Change | KeyRevision) => void;
  /** False for `watchKeys`: its consumer delivers headers only. */
  values: boolean;
  /** Stream sequence of the last change delivered: a consumer made again resumes after it. */
  last: number;
  /** Bumped whenever the consumer is replaced: what an older one delivers is dropped. */
  epoch: number;
  consumer: PushConsumer | undefined;
  messages: ConsumerMessages | undefined;
  stopped: boolean;
  /** Failed attempts to start the consumer again, for the delay before the next one. */
  failures: number;
  /** Whether "stopped" was logged and "resumed" is owed. */
  broken: boolean;
  retry: NodeJS.Timeout | undefined;
}

/**
 * The production run store: a JetStream KV bucket. Revisions are the stream sequence, so
 * compare-and-set holds across every connection and replica; the bucket is created when missing —
 * at connect, and again whenever NATS turns out to have lost it (its store was wiped): then every
 * watch is told `{ op: "reset" }` and follows the new, empty bucket from its start.
 */
export class NatsKeyValueStore implements KeyValueStore {
  private readonly watches = new Set<WatchState>();
  private readonly subjectPrefix: string;
  private closed = false;
  private keeper!: StreamKeeper;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly stream: string,
    private readonly bucket: string,
    private readonly url: string,
    private readonly timeoutMs: number,
    /** The largest value this store accepts, in bytes. */
    readonly maxValueBytes: number,
    private readonly log: NatsLog | undefined,
    private readonly onError: (operation: string) => void = () => {},
  ) {
    this.subjectPrefix = `$KV.${bucket}.`;
  }

  /**
   * Connects, creates the bucket if missing (or brings its history and size limit in line), and
   * fails fast with `StoreUnavailableError` when NATS or JetStream is not there.
   */
  static async connect(options: NatsKeyValueStoreOptions): Promise<NatsKeyValueStore> {
    const url = withoutCredentials(
      Array.isArray(options.servers) ? options.servers.join(",") : options.servers,
    );
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
        // No stack trace captured up front for every request (a tenth of a busy scheduler's CPU):
        // a failed request is translated into an error of ours that says what was being done.
        noAsyncTraces: true,
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
      /** Creates the bucket (a no-op when it exists), with the configured settings. */
      const create = async (): Promise<KV> => {
        try {
          return await new Kvm(js).create(bucket, {
            history,
            maxValueSize: maxValueBytes + HEADER_ROOM,
            storage: storage === "memory" ? StorageType.Memory : StorageType.File,
            replicas,
            timeout: timeoutMs,
            // Reads of a replicated bucket go to its leader. A direct get (nats.js's default) may be
            // answered by any replica, and one still catching up after a restart answers with an
            // older value or none: a compare-and-set that reads "no record" decides there is
            // nothing to change, and a scheduler dropped task events that way.
            ...(replicas > 1 ? { allow_direct: false } : {}),
          });
        } catch (err) {
          const problem = placementProblem(err, stream, replicas);
          if (problem !== undefined) throw new StoreConfigError(problem, { cause: err });
          throw err;
        }
      };
      const kv = await create();
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
      const store = new NatsKeyValueStore(
        nc,
        js,
        jsm,
        kv,
        stream,
        bucket,
        url,
        timeoutMs,
        maxValueBytes,
        options.log,
        options.onError,
      );
      store.keeper = await StreamKeeper.start({
        nc,
        jsm,
        stream,
        what: `bucket ${bucket}`,
        url,
        create: async () => void (await create()),
        onLost: () => store.restartWatches(),
        ...(options.log ? { log: options.log } : {}),
      });
      return store;
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
      const entry = await this.keeper.run(() => this.kv.get(key));
      if (entry === null || entry.operation !== "PUT") return undefined;
      return { key, value: entry.value, revision: entry.revision };
    } catch (err) {
      throw this.translate(err, "get", `reading ${key}`);
    }
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    this.checkWrite(key, value);
    try {
      return await this.keeper.run(() => this.createOnce(key, value));
    } catch (err) {
      if (isWrongLastSequence(err)) throw new KeyExistsError(key, { cause: err });
      throw this.translate(err, "create", `creating ${key}`);
    }
  }

  /**
   * `kv.create` without its fallback read on every failure (a read of a missing bucket waits the
   * whole time limit, a write fails at once): writes if the key has no value, or only a deleted one.
   */
  private async createOnce(key: string, value: Uint8Array): Promise<number> {
    try {
      return await this.kv.put(key, value, { previousSeq: 0 });
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      const entry = await this.kv.get(key);
      if (entry === null || entry.operation === "PUT") throw err;
      return this.kv.update(key, value, entry.revision);
    }
  }

  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    this.checkWrite(key, value);
    validateRevision(expectedRevision);
    try {
      return await this.keeper.run(() => this.kv.update(key, value, expectedRevision));
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
      return await this.keeper.run(() => this.kv.put(key, value));
    } catch (err) {
      throw this.translate(err, "put", `writing ${key}`);
    }
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    this.checkOpen();
    validateKey(key);
    if (expectedRevision !== undefined) validateRevision(expectedRevision);
    try {
      await this.keeper.run(() =>
        this.kv.delete(
          key,
          expectedRevision !== undefined ? { previousSeq: expectedRevision } : undefined,
        ),
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
   * reconnect it then resumes after the last change seen instead of replaying the bucket. When the
   * consumer ends for good it is made again after the last change delivered; when the bucket was
   * lost, the handler hears `{ op: "reset" }` and then every change of the new bucket.
   */
  watch(filter: string, handler: (change: Change) => void): Promise<Watch> {
    return this.startWatch(filter, true, handler as (change: Change | KeyRevision) => void);
  }

  /** As {@link watch}, through a consumer that delivers the messages' headers only. */
  watchKeys(filter: string, handler: (change: KeyRevision) => void): Promise<Watch> {
    return this.startWatch(filter, false, handler);
  }

  private async startWatch(
    filter: string,
    values: boolean,
    handler: (change: Change | KeyRevision) => void,
  ): Promise<Watch> {
    const pattern = normalizeFilter(filter);
    this.checkOpen();
    const w: WatchState = {
      subject: this.subjectPrefix + pattern,
      handler,
      values,
      last: 0,
      epoch: 0,
      consumer: undefined,
      messages: undefined,
      stopped: false,
      failures: 0,
      broken: false,
      retry: undefined,
    };
    // Registered first: a bucket lost meanwhile restarts this watch too (from the new bucket's
    // start), and then this call leaves it as that restart made it.
    this.watches.add(w);
    try {
      const epoch = w.epoch;
      const { state } = await this.keeper.run(() => this.jsm.streams.info(this.stream));
      if (w.epoch === epoch) {
        w.last = state.last_seq;
        await this.keeper.run(() => this.follow(w));
      }
    } catch (err) {
      this.watches.delete(w);
      await this.unfollow(w);
      throw this.translate(err, "watch", `watching ${filter}`);
    }
    return {
      stop: async () => {
        if (!this.watches.delete(w)) return;
        await this.unfollow(w);
      },
    };
  }

  /** Starts (again) the consumer of a watch, after the last change it delivered. */
  private async follow(w: WatchState): Promise<void> {
    void this.detach(w);
    const epoch = w.epoch;
    const consumer = await this.js.consumers.getPushConsumer(this.stream, {
      filter_subjects: w.subject,
      opt_start_seq: w.last + 1,
      ...(w.values ? {} : { headers_only: true }),
    });
    if (epoch !== w.epoch || w.stopped) {
      this.forget(consumer);
      return;
    }
    const messages = await consumer.consume({
      callback: (m) => {
        if (epoch !== w.epoch) return;
        w.last = m.seq;
        const key = m.subject.substring(this.subjectPrefix.length);
        const change: Change | KeyRevision = isDelete(m)
          ? { op: "delete", key, revision: m.seq }
          : w.values
            ? { op: "put", key, value: m.data, revision: m.seq }
            : { op: "put", key, revision: m.seq };
        deliver(w, change);
      },
    });
    if (epoch !== w.epoch || w.stopped) {
      void messages.close();
      this.forget(consumer);
      return;
    }
    w.consumer = consumer;
    w.messages = messages;
    void (async () => {
      // The client retries a lost consumer by itself, but cannot tell a stream that was deleted
      // and made again from the one it knew: ask the keeper, which restarts the watch if so.
      for await (const s of messages.status()) {
        if (
          epoch === w.epoch &&
          (s.type === "stream_not_found" ||
            s.type === "consumer_deleted" ||
            s.type === "heartbeats_missed")
        )
          this.keeper.ensure().catch(() => undefined);
      }
    })();
    void messages.closed().then(() => {
      if (epoch === w.epoch && !w.stopped && !this.closed)
        this.refollowLater(w, "its consumer ended");
    });
  }

  /** Starts a watch's consumer again after a delay that grows while that fails. */
  private refollowLater(w: WatchState, reason: string): void {
    if (w.retry !== undefined) return;
    if (!w.broken)
      this.log?.warn(`a watch of bucket ${this.bucket} stopped; starting it again`, {
        stream: this.stream,
        nats: this.url,
        reason,
        action:
          "nothing while NATS restarts; if this lasts, check that nats-server runs with JetStream",
      });
    w.broken = true;
    const delay = Math.min(5000, 500 * 2 ** Math.min(w.failures, 4));
    w.retry = setTimeout(() => {
      w.retry = undefined;
      if (w.stopped || this.closed) return;
      // A lost bucket restarts the watch itself (from the new bucket's start).
      this.keeper
        .ensure()
        .then((lost) => (lost ? undefined : this.follow(w)))
        .then(
          () => {
            if (w.broken)
              this.log?.info(`a watch of bucket ${this.bucket} resumed`, { stream: this.stream });
            w.broken = false;
            w.failures = 0;
          },
          (err: unknown) => {
            w.failures++;
            this.refollowLater(w, (err as Error).message);
          },
        );
    }, delay);
    w.retry.unref();
  }

  /** The bucket was lost and made again: every watch hears a reset and follows the new one. */
  private restartWatches(): void {
    for (const w of this.watches) {
      void this.detach(w);
      w.failures = 0;
      w.last = 0;
      deliver(w, { op: "reset" });
      this.follow(w).catch((err: unknown) => this.refollowLater(w, (err as Error).message));
    }
  }

  /** Stops a watch's consumer for good. */
  private async unfollow(w: WatchState): Promise<void> {
    w.stopped = true;
    await this.detach(w);
  }

  /** Drops a watch's consumer (and any pending retry); what it still delivers is ignored. */
  private async detach(w: WatchState): Promise<void> {
    w.epoch++;
    if (w.retry !== undefined) clearTimeout(w.retry);
    w.retry = undefined;
    const { messages, consumer } = w;
    w.messages = undefined;
    w.consumer = undefined;
    await messages?.close();
    if (consumer) this.forget(consumer);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.keeper.close();
    for (const w of [...this.watches]) {
      this.watches.delete(w);
      await this.unfollow(w);
    }
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
      consumer = await this.keeper.run(() =>
        this.js.consumers.getPushConsumer(this.stream, {
          filter_subjects: this.subjectPrefix + pattern,
          deliver_policy: DeliverPolicy.LastPerSubject,
          headers_only: headersOnly,
        }),
      );
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
      const why =
        err instanceof ConnectionError
          ? err.message
          : `it did not answer within ${this.timeoutMs} ms (${err.message})`;
      return new StoreUnavailableError(
        `${what}: NATS at ${this.url} is unavailable: ${why} — is nats-server running with -js?`,
        { cause: err },
      );
    }
    if (isStreamNotFound(err)) {
      return new StoreUnavailableError(
        `${what}: bucket ${this.bucket} is missing on NATS at ${this.url} and could not be created again (${(err as Error).message}) — check that nats-server runs with -js and has room`,
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

/** Hands a change to a watch's handler; a throwing handler is a bug, so it is made loud. */
function deliver(w: WatchState, change: Change | KeyRevision): void {
  try {
    w.handler(change);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
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
