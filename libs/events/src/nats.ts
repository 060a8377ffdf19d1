import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { headers, nanos, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
// Requests (every KV operation, every JetStream publish) end without building a needless error.
import "./answered-requests.js";
import {
  EventBusUnavailableError,
  subjects,
  type BusMessage,
  type ConsumeOptions,
  type EventBus,
  type EventHandler,
  type PublishAck,
  type PublishOptions,
  type Subscription,
} from "./bus.js";
import {
  isConsumerNotFound,
  isStreamNotFound,
  StreamKeeper,
  withoutCredentials,
  type NatsLog,
} from "./keeper.js";

/** Where the JetStream event log lives and how long it keeps events. */
export interface NatsEventBusOptions {
  /** NATS server URL(s): a list, or one string with the URLs separated by commas. */
  servers: string | string[];
  /**
   * Copies of the stream a NATS cluster keeps (default 1). An existing stream with fewer is refused
   * (`EventBusConfigError`): scale it up first.
   */
  replicas?: number;
  /** Connection name shown by the server (e.g. the service name). */
  name?: string;
  /** Stream holding every Odin event (default `ODIN_EVENTS`). */
  stream?: string;
  /** How long events are kept (default 7 days). */
  maxAgeMs?: number;
  /** Window in which a repeated msg id is dropped (default 2 minutes). */
  duplicateWindowMs?: number;
  /** How long to wait for the first connection (default 10 s). */
  connectTimeoutMs?: number;
  /** Where connection trouble and a lost stream are reported (the service's logger). */
  log?: NatsLog;
  /** Told of each operation that failed (`publish`, `consume`), e.g. to count it in a metric. */
  onError?: (operation: string) => void;
}

/** The stream exists with fewer replicas than asked, or the cluster cannot hold as many. */
export class EventBusConfigError extends Error {
  override name = "EventBusConfigError";
}

/** `servers` as nats.js takes it: a comma-separated string becomes a list. */
export function natsServers(servers: string | readonly string[]): string[] {
  const list = typeof servers === "string" ? servers.split(",") : [...servers];
  return list.map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * Checks an existing stream's replica count against the configured one. Fewer is refused with
 * what to do: a stream made before the cluster was scaled keeps one copy, and losing its node
 * would lose everything in it.
 */
export function replicaProblem(
  what: string,
  stream: string,
  actual: number | undefined,
  wanted: number,
): string | undefined {
  const has = Math.max(1, actual ?? 1);
  if (has >= wanted) return undefined;
  return (
    `${what} (JetStream stream ${stream}) has ${has} replica${has === 1 ? "" : "s"} but ${wanted} are configured (ODIN_NATS_REPLICAS): ` +
    `losing the NATS node that holds it would lose its data. Scale it up once, keeping its data, with the NATS CLI: ` +
    `\`nats stream edit ${stream} --replicas ${wanted}\` (the cluster needs at least ${wanted} nodes), then start the service again; ` +
    `or set ODIN_NATS_REPLICAS=${has} to keep using it as it is`
  );
}

/** The server's refusal of a replica count it cannot place, in words that say what to do. */
export function placementProblem(err: unknown, stream: string, wanted: number): string | undefined {
  const text = err instanceof Error ? err.message : String(err);
  if (
    !/replicas|insufficient resources|no suitable peers|not supported in non-clustered/i.test(text)
  )
    return undefined;
  return (
    `NATS cannot keep ${wanted} replicas of stream ${stream} (${text}): ` +
    `ODIN_NATS_REPLICAS must not exceed the number of JetStream servers in the cluster — ` +
    `set ODIN_NATS_REPLICAS=1 for a single server, or run a cluster of at least ${wanted} nodes`
  );
}

/** The production event bus: a JetStream stream with durable pull consumers. */
export class NatsEventBus implements EventBus {
  private readonly stops = new Set<() => Promise<void>>();
  /** Restarts of every running consumer, for when the stream was lost under them. */
  private readonly restarts = new Set<() => void>();
  private keeper!: StreamKeeper;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly url: string,
    private readonly log: NatsLog | undefined,
    private readonly onError: (operation: string) => void = () => {},
  ) {}

  /**
   * Connects and makes sure the stream exists. Fails with a clear message when NATS is
   * unreachable. Later, when NATS comes back without the stream (its store was lost), the stream
   * is created again with the same settings and every consumer resumes on it.
   */
  static async connect(options: NatsEventBusOptions): Promise<NatsEventBus> {
    const url = withoutCredentials(
      Array.isArray(options.servers) ? options.servers.join(",") : options.servers,
    );
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: natsServers(options.servers),
        name: options.name,
        timeout: options.connectTimeoutMs ?? 10_000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        // No stack trace captured up front for every request (a tenth of a busy scheduler's CPU):
        // a failed request is translated into an error of ours that says what was being done.
        noAsyncTraces: true,
      });
    } catch (err) {
      throw new EventBusUnavailableError(
        `cannot connect to NATS at ${url}: ${(err as Error).message} — is nats-server running with JetStream (-js)?`,
        { cause: err },
      );
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: 10_000 });
      const stream = options.stream ?? "ODIN_EVENTS";
      const replicas = options.replicas ?? 1;
      const config = {
        name: stream,
        subjects: [subjects.all],
        max_age: nanos(options.maxAgeMs ?? 7 * 24 * 3600_000),
        duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
      };
      const create = async (): Promise<void> => {
        try {
          await jsm.streams.add({ ...config, num_replicas: replicas });
        } catch (err) {
          const problem = placementProblem(err, stream, replicas);
          if (problem !== undefined) throw new EventBusConfigError(problem, { cause: err });
          throw err;
        }
      };
      let existing: StreamConfig | undefined;
      try {
        existing = (await jsm.streams.info(stream)).config;
      } catch (err) {
        if (!isStreamNotFound(err)) throw err;
      }
      if (existing === undefined) {
        await create();
      } else {
        const problem = replicaProblem("the event stream", stream, existing.num_replicas, replicas);
        if (problem !== undefined) throw new EventBusConfigError(problem);
        // Keep the replica count (and the rest) as it is; an update without it would scale down.
        await jsm.streams.update(stream, { ...existing, ...config });
      }
      const bus = new NatsEventBus(
        nc,
        jetstream(nc, { timeout: 10_000 }),
        jsm,
        stream,
        url,
        options.log,
        options.onError,
      );
      bus.keeper = await StreamKeeper.start({
        nc,
        jsm,
        stream,
        what: `the event stream ${stream}`,
        url,
        create,
        // Its consumers went with it: every running one creates its consumer again.
        onLost: () => {
          for (const restart of bus.restarts) restart();
        },
        ...(options.log ? { log: options.log } : {}),
      });
      return bus;
    } catch (err) {
      await nc.close().catch(() => undefined);
      if (err instanceof EventBusConfigError) throw err;
      throw new EventBusUnavailableError(
        `NATS at ${url} has no usable JetStream: ${(err as Error).message} — start nats-server with -js`,
        { cause: err },
      );
    }
  }

  async publish(
    subject: string,
    data: Uint8Array,
    options: PublishOptions = {},
  ): Promise<PublishAck> {
    try {
      if (options.noAck) {
        // Nothing answers, so a lost stream goes unnoticed here; the keeper recreates it after
        // the reconnect, and acknowledged publishes notice it too.
        const h = headers();
        if (options.msgId !== undefined) h.set("Nats-Msg-Id", options.msgId);
        this.nc.publish(subject, data, { headers: h });
        return { sequence: 0, duplicate: false };
      }
      const ack = await this.keeper.run(() =>
        this.js.publish(subject, data, options.msgId !== undefined ? { msgID: options.msgId } : {}),
      );
      return { sequence: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      this.onError("publish");
      throw new EventBusUnavailableError(
        `cannot publish ${subject} to NATS at ${this.url}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async consume(options: ConsumeOptions, handler: EventHandler): Promise<Subscription> {
    const config = {
      durable_name: options.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: options.filter,
      ack_wait: nanos(options.ackWaitMs ?? 30_000),
      max_deliver: -1,
    };
    let consumer: Consumer;
    try {
      consumer = await this.durable(config);
    } catch (err) {
      this.onError("consume");
      throw new EventBusUnavailableError(
        `cannot set up consumer ${options.durable}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    let messages: ConsumerMessages | undefined;
    let stopped = false;
    const stopping = new AbortController();
    const retryDelay = options.retryDelayMs ?? 1000;
    const concurrency = Math.max(1, options.concurrency ?? 1);
    const restart = (): void => void messages?.close();
    this.restarts.add(restart);
    const loop = async (): Promise<void> => {
      // `consume()` re-pulls across reconnects. It ends when the consumer or its stream is gone
      // (`abort_on_missing_resource`): then both are made again, with a growing delay while that
      // fails, and the trouble is logged once, not on every try.
      let failures = 0;
      while (!stopped) {
        const inflight = new Set<Promise<void>>();
        let problem: string;
        try {
          if (failures > 0) consumer = await this.durable(config);
          messages = await consumer.consume({
            max_messages: Math.max(256, concurrency * 2),
            abort_on_missing_resource: true,
          });
          if (failures > 0) {
            this.log?.info(`consumer ${options.durable} resumed`, { stream: this.stream });
            failures = 0;
          }
          for await (const m of messages) {
            const message: BusMessage = {
              subject: m.subject,
              data: m.data,
              sequence: m.seq,
              deliveryCount: m.info.deliveryCount,
            };
            const work = handler(message).then(
              () => m.ack(),
              () => m.nak(retryDelay),
            );
            inflight.add(work);
            void work.finally(() => inflight.delete(work));
            if (inflight.size >= concurrency) await Promise.race(inflight);
          }
          problem = "its message stream ended";
        } catch (err) {
          problem = (err as Error).message;
        } finally {
          await Promise.all(inflight);
        }
        if (stopped) break;
        this.onError("consume");
        if (failures === 0)
          this.log?.warn(`consumer ${options.durable} stopped; creating it again`, {
            stream: this.stream,
            nats: this.url,
            reason: problem,
            action:
              "nothing while NATS restarts; if this lasts, check that nats-server runs with JetStream",
          });
        await sleep(Math.min(5000, 500 * 2 ** Math.min(failures, 4)), stopping.signal);
        failures++;
      }
    };
    const running = loop();
    const stop = async (): Promise<void> => {
      stopped = true;
      stopping.abort();
      this.restarts.delete(restart);
      await messages?.close();
      await running;
      this.stops.delete(stop);
    };
    this.stops.add(stop);
    return { stop };
  }

  /** Creates the durable consumer, or brings an existing one's settings in line; the stream too when missing. */
  private async durable(
    config: Partial<ConsumerConfig> & { durable_name: string },
  ): Promise<Consumer> {
    const name = config.durable_name;
    try {
      await this.keeper.run(() => this.jsm.consumers.info(this.stream, name));
      await this.jsm.consumers.update(this.stream, name, {
        ack_wait: config.ack_wait,
        filter_subject: config.filter_subject,
      });
    } catch (err) {
      if (!isConsumerNotFound(err)) throw err;
      await this.jsm.consumers.add(this.stream, config);
    }
    return this.js.consumers.get(this.stream, name);
  }

  subscribe(filter: string, handler: (message: BusMessage) => void): Promise<Subscription> {
    const sub = this.nc.subscribe(filter, {
      callback: (err, m) => {
        if (err) return;
        const seq = Number(m.headers?.get("Nats-Sequence") ?? 0);
        handler({ subject: m.subject, data: m.data, sequence: seq, deliveryCount: 1 });
      },
    });
    const stop = async (): Promise<void> => {
      sub.unsubscribe();
      this.stops.delete(stop);
      return Promise.resolve();
    };
    this.stops.add(stop);
    return Promise.resolve({ stop });
  }

  async close(): Promise<void> {
    this.keeper.close();
    for (const stop of [...this.stops]) await stop();
    await this.nc.drain().catch(() => undefined);
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
