// Keeping a JetStream stream in existence for as long as a service runs. NATS can come back without
// its store (a node restarted on a fresh volume, `-sd` wiped) or someone can delete a stream: the
// connection reconnects, but the stream, the KV bucket on it and every consumer are gone. Each
// adapter that owns a stream (the event bus, the run store, the leases bucket) keeps one
// StreamKeeper: after every reconnect, and whenever an operation fails in a way a missing stream
// explains, `ensure()` looks the stream up, creates it again with the configured settings when it
// is missing, and says whether the stream now there is still the one the adapter knew (by its
// creation time). When it is not, what the stream held is lost: `onLost` lets the owner restart
// its watches and consumers and tell its users.
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  type StreamInfo,
} from "@nats-io/jetstream";
import {
  ConnectionError,
  NoRespondersError,
  TimeoutError,
  type NatsConnection,
} from "@nats-io/nats-core";

/** Where the NATS adapters report connection and stream trouble; `@odin/service-kit`'s Logger fits. */
export interface NatsLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** How a {@link StreamKeeper} finds and recreates its stream. */
export interface StreamKeeperOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** The JetStream stream (`ODIN_EVENTS`, `KV_odin-run-state`). */
  stream: string;
  /** What the stream is to users, for messages (`bucket odin-leases`). */
  what: string;
  /** The server's URL without credentials, for messages. */
  url: string;
  /** Creates the stream with the configured settings (replicas and all); called when it is missing. */
  create(): Promise<void>;
  /**
   * Told, synchronously, when the stream now there is not the one known (it was lost and created
   * again, here or by another service): everything it held is gone, and so are its consumers.
   */
  onLost?(): void;
  log?: NatsLog;
  /** First delay before checking again after a failed check following a reconnect (default 500 ms; doubles up to 5 s). */
  retryDelayMs?: number;
}

/** An error a missing stream explains (or NATS being away, which `ensure` then tells apart). */
export function mayMeanMissingStream(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // A publish or KV write to a subject no stream takes is answered "no responders", which the
  // client reports as "jetstream is not enabled"; a direct KV read gets no answer at all.
  return (
    isStreamNotFound(err) ||
    err.name === "JetStreamNotEnabled" ||
    err instanceof NoRespondersError ||
    err instanceof TimeoutError ||
    (err instanceof JetStreamApiError && err.status === 503)
  );
}

/** The JetStream API said the stream does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/** The JetStream API said the consumer does not exist. */
export function isConsumerNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

/** Removes `user:password@` from server URLs, so messages and logs carry no credentials. */
export function withoutCredentials(url: string): string {
  return url.replace(/\/\/[^/@\s]*@/g, "//");
}

/**
 * Keeps one stream: finds it at start, checks it again after every reconnect and on demand
 * (`ensure`), and creates it again when it is missing. Checks are never run in a loop of their
 * own except after a reconnect, and then with a growing delay.
 */
export class StreamKeeper {
  /** Creation time of the stream this keeper knows; another value means another stream. */
  private created: string | undefined;
  /** False from a disconnect until the stream was checked again. */
  private checked = true;
  /** False while the client reconnects: a request sent then is never answered. */
  private connected = true;
  private ensuring: Promise<boolean> | undefined;
  /** The reconnect the check in flight belongs to: a later reconnect needs a check of its own. */
  private ensuringFor = 0;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private reconnects = 0;

  private constructor(private readonly options: StreamKeeperOptions) {}

  /**
   * Starts keeping a stream that exists now (the owner created or found it), remembering which one
   * it is, and follows the connection's state.
   */
  static async start(options: StreamKeeperOptions): Promise<StreamKeeper> {
    const keeper = new StreamKeeper(options);
    keeper.created = (await options.jsm.streams.info(options.stream)).created;
    void keeper.follow();
    return keeper;
  }

  /**
   * Makes sure the stream exists, creating it when it is missing. Resolves true when the stream
   * is not the one known before (it was lost: `onLost` has been called), false when it is. Fails
   * when NATS cannot be asked (down, JetStream not ready): nothing is created then.
   */
  ensure(): Promise<boolean> {
    if (this.ensuring === undefined || this.ensuringFor !== this.reconnects) {
      const checking: Promise<boolean> = this.check().finally(() => {
        if (this.ensuring === checking) this.ensuring = undefined;
      });
      this.ensuring = checking;
      this.ensuringFor = this.reconnects;
    }
    return this.ensuring;
  }

  /** Resolves once the stream was checked since the last disconnect (at once when it was). */
  async ready(): Promise<void> {
    if (!this.checked) await this.ensure();
  }

  /**
   * Runs an operation on the stream. When it fails in a way a missing stream explains, checks
   * the stream; if it had been lost (and is now created again), runs the operation once more.
   * Otherwise the operation's own error is thrown.
   */
  async run<T>(op: () => Promise<T>): Promise<T> {
    await this.ready();
    try {
      return await op();
    } catch (err) {
      if (this.closed || !mayMeanMissingStream(err)) throw err;
      const lost = await this.ensure().catch(() => false);
      if (!lost) throw err;
      return op();
    }
  }

  /** Stops following the connection. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private async check(): Promise<boolean> {
    const { jsm, stream } = this.options;
    // The client would hold the request and the answer would never come: fail now instead.
    if (!this.connected)
      throw new ConnectionError(`not connected to NATS at ${this.options.url}; reconnecting`);
    let info: StreamInfo | undefined;
    try {
      info = await jsm.streams.info(stream);
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
    }
    if (info === undefined) {
      try {
        await this.options.create();
      } catch (err) {
        // Another service may have created it in the meantime (with other settings): use that one.
        info = await jsm.streams.info(stream).catch(() => undefined);
        if (info === undefined) {
          this.options.log?.error(`${this.options.what} is missing and cannot be created again`, {
            stream,
            nats: this.options.url,
            error: (err as Error).message,
            action:
              "check that NATS runs with JetStream (-js) and has room for it; the service retries on its next operation",
          });
          throw err;
        }
      }
      info ??= await jsm.streams.info(stream);
    }
    this.checked = true;
    if (info.created === this.created) return false;
    this.created = info.created;
    this.options.log?.warn(
      `${this.options.what} was lost: NATS no longer had it (its store was lost or the stream was deleted) and it was created again, empty`,
      {
        stream,
        nats: this.options.url,
        replicas: info.config.num_replicas,
        action:
          "what it held is gone; see deploy/README.md, 'NATS lost its store', for what recovers by itself and what to clean up",
      },
    );
    this.options.onLost?.();
    return true;
  }

  /** Follows the connection: unchecked from a disconnect, checked again after each reconnect. */
  private async follow(): Promise<void> {
    const log = this.options.log;
    for await (const s of this.options.nc.status()) {
      if (this.closed) return;
      if (s.type === "disconnect") {
        if (this.checked)
          log?.warn("lost the connection to NATS; reconnecting", {
            stream: this.options.stream,
            nats: this.options.url,
            action: "operations that need NATS fail until it is back; check that nats-server runs",
          });
        this.checked = false;
        this.connected = false;
        this.reconnects++;
        if (this.retryTimer) clearTimeout(this.retryTimer);
      } else if (s.type === "reconnect") {
        this.connected = true;
        log?.info("reconnected to NATS", { stream: this.options.stream, nats: this.options.url });
        this.checkAfterReconnect(this.reconnects, 0);
      }
    }
  }

  /** Checks the stream after a reconnect, again with a growing delay while that fails. */
  private checkAfterReconnect(reconnect: number, failures: number): void {
    if (this.closed || reconnect !== this.reconnects) return;
    this.ensure().then(
      () => {
        if (failures > 0)
          this.options.log?.info(`${this.options.what} checked after reconnecting`, {
            stream: this.options.stream,
          });
      },
      (err: unknown) => {
        if (this.closed || reconnect !== this.reconnects) return;
        const delay = Math.min(5000, (this.options.retryDelayMs ?? 500) * 2 ** failures);
        if (failures === 0)
          this.options.log?.warn(`cannot check ${this.options.what} after reconnecting; retrying`, {
            stream: this.options.stream,
            nats: this.options.url,
            error: (err as Error).message,
            action: "wait for JetStream to be ready on the NATS server; nothing is needed here",
          });
        this.retryTimer = setTimeout(
          () => this.checkAfterReconnect(reconnect, failures + 1),
          delay,
        );
        this.retryTimer.unref();
      },
    );
  }
}
