// kube-sim's HTTP front: a Kubernetes API server on node:http that @kubernetes/client-node talks to
// unchanged. Routes REST paths to the simulation, streams watches and logs, applies faults and
// counts what clients did.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import type { ContainerEnd, PodFailure } from "./kubelet.js";
import { Faults } from "./faults.js";
import {
  RESOURCES,
  type ResourceDef,
  type ResourceName,
  apiVersionOf,
  groupVersions,
  resourceAt,
  resourceDef,
} from "./resources.js";
import { type ScriptRule } from "./scripts.js";
import { allOf, parseFieldSelector, parseLabelSelector } from "./selectors.js";
import { type DeleteRequest, type GpuNodeSpec, Simulation } from "./simulation.js";
import type { Change, ChangeType } from "./store.js";
import { ApiError, badRequest, failure, methodNotAllowed, noSuchPath, notFound } from "./status.js";
import type { KubeObject, PodJson } from "./types.js";
import { isRecord } from "./types.js";
import { WatchStream } from "./watch.js";

/** Options of `startKubeSim`. */
export interface KubeSimOptions {
  /** TCP port (default 0: a free port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Bearer token every request must carry; default: any token, or none, is accepted. */
  token?: string;
  /** Run time of a pod without a script, in ms: fixed, or a [min, max] range (default [0, 20]). */
  defaultRunMs?: number | readonly [number, number];
  /** Time from scheduling to Running of a pod without a script, in ms (default 0). */
  defaultStartMs?: number;
  /** Changes retained per resource type for watches resuming from a resourceVersion (default 10,000). */
  watchHistorySize?: number;
  /** Interval of BOOKMARK events on watches that allow them, in ms (default 1,000; 0 = never). */
  bookmarkIntervalMs?: number;
  /** Record core/v1 Events for transitions (default true). */
  recordEvents?: boolean;
  /** Create a namespace on first use instead of answering 404 (default true). */
  autoCreateNamespaces?: boolean;
  /** Name of the simulated node without GPUs (default `kube-sim-node`). */
  nodeName?: string;
  /**
   * Nodes with GPU capacity (`nvidia.com/gpu`), served as `v1 Node`s; a pod requesting GPUs is
   * placed on the first with enough free, or stays unschedulable when none has.
   */
  gpuNodes?: readonly GpuNodeSpec[];
  /** Most recent requests kept in `requests` (default 100,000). */
  maxRequestLog?: number;
}

/** One request kube-sim answered. */
export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly watch: boolean;
  /** HTTP status, 0 while a streaming response is still open. */
  status: number;
  readonly startedAt: number;
}

/** Counters for tests and benchmarks. */
export interface KubeSimStats {
  /** Requests answered (including refused and injected failures). */
  requests: number;
  /** Watches open right now. */
  openWatches: number;
  /** Objects stored right now, per resource. */
  objects: Record<ResourceName, number>;
  /** Objects ever created (through the API or by the simulated controllers), per resource. */
  created: Record<ResourceName, number>;
  /** Requests answered by an injected fault. */
  injectedFaults: number;
  /** Current resourceVersion. */
  resourceVersion: number;
}

/** Options of `failPod`. */
export interface FailPodOptions {
  /** Exit code of the containers still running (default 1). */
  exitCode?: number;
  /** `state.terminated.reason` (default `Error`; e.g. `OOMKilled`). */
  reason?: string;
  /** `state.terminated.message`. */
  message?: string;
  /** Pod-level `status.reason`, e.g. `Evicted`. */
  podReason?: string;
  /** Pod-level `status.message`. */
  podMessage?: string;
}

/** A running kube-sim. */
export interface KubeSim {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** A KubeConfig pointing at this simulator (context `kube-sim`, namespace `default`). */
  kubeConfig(): KubeConfig;
  /** Stops the server, ends every watch and log stream, cancels every simulated timer. */
  close(): Promise<void>;
  /** Registers a pod script; the most recent matching rule wins. Returns a function removing it. */
  script(rule: ScriptRule): () => void;
  /** Removes every registered script rule. */
  clearScripts(): void;
  /**
   * Pushes a new image under a tag: pods created from now on report `digest` (`sha256:<64 hex>`)
   * as their containers' `imageID`, as a cluster does after the tag moved in the registry.
   */
  pushImage(image: string, digest: string): void;
  /** Fault injection. */
  readonly faults: Faults;
  /** Current objects of a type (plural name or kind), optionally in one namespace. Read-only. */
  objects(resource: string, namespace?: string): KubeObject[];
  /** One current object, or undefined. Read-only. */
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Every object ever created of a type (or of all types), as created, in order. */
  created(resource?: string): KubeObject[];
  /** Create requests received for a type, or for one name in it (including refused ones). */
  createCount(resource: string, name?: string, namespace?: string): number;
  /** Most recent requests, oldest first. */
  readonly requests: readonly RequestRecord[];
  /** Counters. */
  stats(): KubeSimStats;
  /** Resolves with the first object of a type that satisfies `predicate` (now or later). */
  waitFor(
    resource: string,
    predicate: (object: KubeObject) => boolean,
    timeoutMs?: number,
  ): Promise<KubeObject>;
  /**
   * Calls `listener` synchronously at every change of a type, at the moment kube-sim makes it
   * (e.g. to time how long a client takes to notice a pod turning Succeeded). Returns an
   * unsubscribe function.
   */
  onChange(resource: string, listener: (type: ChangeType, object: KubeObject) => void): () => void;
  /** Deletes a pod as `kubectl delete` would; false if it does not exist. */
  deletePod(namespace: string, name: string): boolean;
  /** Ends a pod's containers with a failure (phase Failed); false if unknown or already ended. */
  failPod(namespace: string, name: string, options?: FailPodOptions): boolean;
  /** Ends a pod's containers with exit code 0; false if unknown or already ended. */
  succeedPod(namespace: string, name: string): boolean;
  /** Appends a line to a running container's log (default: the first); false if not running. */
  appendLog(namespace: string, name: string, line: string, container?: string): boolean;
  /** Drops all retained watch history: a watch resuming from an earlier version gets 410. */
  compactHistory(): void;
}

const PODS = resourceDef("pods");
const MAX_BODY_BYTES = 3 * 1024 * 1024;

function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ApiError(failure(413, "RequestEntityTooLarge", "request entity too large")));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", reject);
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      if (text.trim() === "") {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(badRequest(`the request body is not valid JSON: ${(error as Error).message}`));
      }
    });
  });
}

function boolParam(query: URLSearchParams, name: string): boolean {
  const v = query.get(name);
  return v === "true" || v === "1";
}

function intParam(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name);
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw badRequest(`${name}: Invalid value: "${v}": must be an integer`);
  return n;
}

/** The HTTP server around a simulation. */
class KubeSimServer implements KubeSim {
  readonly faults: Faults;
  readonly requests: RequestRecord[] = [];
  private readonly sim: Simulation;
  private readonly watches = new Set<WatchStream>();
  private readonly logStreams = new Set<ServerResponse>();
  private readonly createCounts = new Map<string, number>();
  private requestCount = 0;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  url = "";
  port = 0;

  constructor(
    private readonly server: Server,
    private readonly options: KubeSimOptions,
  ) {
    this.sim = new Simulation({
      scripts: { runMs: options.defaultRunMs ?? [0, 20], startMs: options.defaultStartMs ?? 0 },
      historySize: options.watchHistorySize ?? 10_000,
      recordEvents: options.recordEvents ?? true,
      autoCreateNamespaces: options.autoCreateNamespaces ?? true,
      nodeName: options.nodeName ?? "kube-sim-node",
      gpuNodes: options.gpuNodes ?? [],
    });
    this.faults = new Faults((graceful) => {
      const open = [...this.watches];
      for (const w of open) w.close(graceful);
      return open.length;
    });
    const interval = options.bookmarkIntervalMs ?? 1000;
    if (interval > 0) {
      this.bookmarkTimer = setInterval(() => {
        const rv = this.sim.cluster.resourceVersion;
        for (const w of this.watches) if (w.allowBookmarks) w.bookmark(rv);
      }, interval);
      this.bookmarkTimer.unref();
    }
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      void this.handle(req, res);
    });
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "kube-sim", server: this.url, skipTLSVerify: true }],
      users: [{ name: "kube-sim", token: this.options.token ?? "kube-sim" }],
      contexts: [{ name: "kube-sim", cluster: "kube-sim", user: "kube-sim", namespace: "default" }],
      currentContext: "kube-sim",
    });
    return kc;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.bookmarkTimer !== undefined) clearInterval(this.bookmarkTimer);
      this.sim.stop();
      for (const w of [...this.watches]) w.close(true);
      for (const res of [...this.logStreams]) res.end();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  script(rule: ScriptRule): () => void {
    return this.sim.scripts.add(rule);
  }

  clearScripts(): void {
    this.sim.scripts.clear();
  }

  pushImage(image: string, digest: string): void {
    if (!/^sha256:[0-9a-f]{64}$/.test(digest))
      throw new Error(`digest ${JSON.stringify(digest)} must be sha256:<64 hex digits>`);
    this.sim.kubelet.pushedImages.set(image, digest);
  }

  objects(resource: string, namespace?: string): KubeObject[] {
    const def = resourceDef(resource);
    return this.sim.list(def, namespace, undefined).items;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.sim.cluster.get(resourceDef(resource).resource, namespace, name);
  }

  created(resource?: string): KubeObject[] {
    if (resource === undefined) return [...this.sim.createdLog];
    const def = resourceDef(resource);
    return this.sim.createdLog.filter((o) => o.kind === def.kind);
  }

  createCount(resource: string, name?: string, namespace?: string): number {
    const def = resourceDef(resource);
    if (name === undefined) return this.createCounts.get(def.resource) ?? 0;
    if (namespace !== undefined)
      return this.createCounts.get(`${def.resource}/${namespace}/${name}`) ?? 0;
    let total = 0;
    for (const [key, count] of this.createCounts) {
      if (
        key.startsWith(`${def.resource}/`) &&
        key.endsWith(`/${name}`) &&
        key.split("/").length === 3
      )
        total += count;
    }
    return total;
  }

  stats(): KubeSimStats {
    const objects = {} as Record<ResourceName, number>;
    const created = {} as Record<ResourceName, number>;
    for (const def of RESOURCES) {
      objects[def.resource] = this.sim.cluster.store(def.resource).objects.size;
      created[def.resource] = 0;
    }
    for (const o of this.sim.createdLog) {
      const def = resourceDef(o.kind ?? "");
      created[def.resource]++;
    }
    return {
      requests: this.requestCount,
      openWatches: this.watches.size,
      objects,
      created,
      injectedFaults: this.faults.injected,
      resourceVersion: this.sim.cluster.resourceVersion,
    };
  }

  waitFor(
    resource: string,
    predicate: (object: KubeObject) => boolean,
    timeoutMs = 60_000,
  ): Promise<KubeObject> {
    const def = resourceDef(resource);
    for (const object of this.sim.cluster.store(def.resource).objects.values()) {
      if (predicate(object)) return Promise.resolve(object);
    }
    return new Promise((resolve, reject) => {
      let done = false;
      const sink = {
        onChange: (change: { type: string; object: KubeObject }) => {
          if (done || change.type === "DELETED" || !predicate(change.object)) return;
          done = true;
          clearTimeout(timer);
          store.sinks.delete(sink);
          resolve(change.object);
        },
      };
      const store = this.sim.cluster.store(def.resource);
      store.sinks.add(sink);
      const timer = setTimeout(() => {
        done = true;
        store.sinks.delete(sink);
        reject(new Error(`kube-sim: no ${def.resource} matched within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  onChange(resource: string, listener: (type: ChangeType, object: KubeObject) => void): () => void {
    const store = this.sim.cluster.store(resourceDef(resource).resource);
    const sink = { onChange: (change: Change) => listener(change.type, change.object) };
    store.sinks.add(sink);
    return () => {
      store.sinks.delete(sink);
    };
  }

  deletePod(namespace: string, name: string): boolean {
    return this.sim.deletePod(namespace, name, undefined) !== undefined;
  }

  failPod(namespace: string, name: string, options: FailPodOptions = {}): boolean {
    const pod = this.sim.cluster.get("pods", namespace, name);
    if (pod === undefined) return false;
    const end: ContainerEnd = { exitCode: options.exitCode ?? 1 };
    if (options.reason !== undefined) end.reason = options.reason;
    if (options.message !== undefined) end.message = options.message;
    const podFailure: PodFailure = {};
    if (options.podReason !== undefined) podFailure.reason = options.podReason;
    if (options.podMessage !== undefined) podFailure.message = options.podMessage;
    return this.sim.kubelet.endPod(pod.metadata.uid ?? "", end, podFailure);
  }

  succeedPod(namespace: string, name: string): boolean {
    const pod = this.sim.cluster.get("pods", namespace, name);
    if (pod === undefined) return false;
    return this.sim.kubelet.endPod(pod.metadata.uid ?? "", { exitCode: 0 });
  }

  appendLog(namespace: string, name: string, line: string, container?: string): boolean {
    const pod = this.sim.cluster.get("pods", namespace, name);
    if (pod === undefined) return false;
    return this.sim.kubelet.appendLog(pod.metadata.uid ?? "", line, container);
  }

  compactHistory(): void {
    this.sim.cluster.compactHistory();
  }

  // ---- HTTP --------------------------------------------------------------------------------

  private recordRequest(record: RequestRecord): void {
    this.requestCount++;
    const max = this.options.maxRequestLog ?? 100_000;
    this.requests.push(record);
    if (this.requests.length > max) this.requests.splice(0, this.requests.length - max);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://kube-sim");
    const method = (req.method ?? "GET").toUpperCase();
    const watch = boolParam(url.searchParams, "watch");
    const record: RequestRecord = {
      method,
      path: url.pathname,
      query: url.search,
      watch,
      status: 0,
      startedAt: Date.now(),
    };
    this.recordRequest(record);
    res.on("finish", () => {
      record.status = res.statusCode;
    });
    try {
      if (this.options.token !== undefined) {
        const auth = req.headers.authorization;
        if (auth !== `Bearer ${this.options.token}`) {
          throw new ApiError(failure(401, "Unauthorized", "Unauthorized"));
        }
      }
      const fault = this.faults.take(method, url.pathname, watch);
      if (fault !== undefined) {
        // Drain the body so the connection stays usable for the client's retry.
        req.resume();
        throw fault;
      }
      const delay = this.faults.delayFor(method, url.pathname, watch);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.closing !== undefined)
        throw new ApiError(failure(503, "ServiceUnavailable", "kube-sim is shutting down"));
      await this.route(req, res, method, url);
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof ApiError) {
        sendJson(res, error.status.code, error.status, error.headers);
      } else {
        const message = error instanceof Error ? error.message : String(error);
        sendJson(res, 500, failure(500, "InternalError", `Internal error occurred: ${message}`));
      }
    }
  }

  private async route(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    url: URL,
  ): Promise<void> {
    let segments: string[];
    try {
      segments = url.pathname
        .split("/")
        .filter((s) => s !== "")
        .map(decodeURIComponent);
    } catch {
      throw noSuchPath();
    }
    const [root, a, b] = segments;
    if (root === "version" && segments.length === 1) {
      sendJson(res, 200, {
        major: "1",
        minor: "31",
        gitVersion: "v1.31.0-kube-sim",
        gitCommit: "kube-sim",
        gitTreeState: "clean",
        buildDate: "2024-08-13T00:00:00Z",
        goVersion: "go1.22.5",
        compiler: "gc",
        platform: "linux/amd64",
      });
      return;
    }
    if ((root === "healthz" || root === "livez" || root === "readyz") && segments.length === 1) {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("ok");
      return;
    }
    let groupVersion: string;
    let rest: string[];
    if (root === "api") {
      if (segments.length === 1) {
        sendJson(res, 200, {
          kind: "APIVersions",
          versions: ["v1"],
          serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: url.host }],
        });
        return;
      }
      if (a !== "v1") throw noSuchPath();
      groupVersion = "v1";
      rest = segments.slice(2);
    } else if (root === "apis") {
      if (segments.length === 1) {
        sendJson(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups: this.apiGroups() });
        return;
      }
      if (segments.length === 2) {
        const group = this.apiGroups().find((g) => g.name === a);
        if (group === undefined) throw noSuchPath();
        sendJson(res, 200, { kind: "APIGroup", apiVersion: "v1", ...group });
        return;
      }
      groupVersion = `${a ?? ""}/${b ?? ""}`;
      rest = segments.slice(3);
    } else {
      throw noSuchPath();
    }
    if (rest.length === 0) {
      const resources = RESOURCES.filter((d) => apiVersionOf(d) === groupVersion);
      if (resources.length === 0) throw noSuchPath();
      sendJson(res, 200, {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion,
        resources: resources.flatMap((d) => this.apiResources(d)),
      });
      return;
    }
    await this.routeResource(req, res, method, url, groupVersion, rest);
  }

  private async routeResource(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    url: URL,
    groupVersion: string,
    rest: string[],
  ): Promise<void> {
    const query = url.searchParams;
    let def: ResourceDef | undefined;
    let namespace: string | undefined;
    let name: string | undefined;
    let sub: string | undefined;
    const [first, second, third, fourth, fifth] = rest;
    if (first === "namespaces" && rest.length >= 3 && groupVersion !== "" && third !== undefined) {
      def = resourceAt(groupVersion, third);
      namespace = second;
      name = fourth;
      sub = fifth;
      if (def !== undefined && !def.namespaced) throw noSuchPath();
      if (rest.length > 5) throw noSuchPath();
    } else if (first !== undefined && rest.length <= 2) {
      def = resourceAt(groupVersion, first);
      name = second;
      if (def !== undefined && def.namespaced && name !== undefined) throw noSuchPath();
    }
    if (def === undefined) throw noSuchPath();
    if (name === undefined) {
      await this.collection(req, res, method, query, def, namespace);
      return;
    }
    if (sub === undefined) {
      await this.item(req, res, method, query, def, namespace, name, undefined);
    } else if (sub === "status" && def.resource !== "events") {
      await this.item(req, res, method, query, def, namespace, name, "status");
    } else if (sub === "log" && def.resource === "pods") {
      if (method !== "GET") throw methodNotAllowed(method);
      this.serveLog(res, query, namespace ?? "", name);
    } else {
      throw noSuchPath();
    }
  }

  private async collection(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    query: URLSearchParams,
    def: ResourceDef,
    namespace: string | undefined,
  ): Promise<void> {
    switch (method) {
      case "GET": {
        const match = allOf(
          parseLabelSelector(query.get("labelSelector")),
          parseFieldSelector(def.resource, query.get("fieldSelector")),
        );
        if (boolParam(query, "watch")) {
          this.startWatch(res, query, def, namespace, match);
          return;
        }
        const page = this.sim.list(
          def,
          namespace,
          match,
          intParam(query, "limit"),
          query.get("continue") ?? undefined,
        );
        const metadata: Record<string, string> = { resourceVersion: page.resourceVersion };
        if (page.continueToken !== undefined) metadata["continue"] = page.continueToken;
        sendJson(res, 200, {
          kind: def.listKind,
          apiVersion: apiVersionOf(def),
          metadata,
          items: page.items,
        });
        return;
      }
      case "POST": {
        if (def.namespaced && namespace === undefined) throw methodNotAllowed(method);
        const body = await readBody(req);
        this.countCreate(def, namespace, body);
        const created = this.sim.create(def, namespace, body, query.get("dryRun") === "All");
        sendJson(res, 201, created);
        return;
      }
      case "DELETE": {
        const match = allOf(
          parseLabelSelector(query.get("labelSelector")),
          parseFieldSelector(def.resource, query.get("fieldSelector")),
        );
        const options = this.deleteOptions(query, await readBody(req));
        const page = this.sim.list(def, namespace, match);
        const items: unknown[] = [];
        for (const object of page.items) {
          items.push(
            this.sim.delete(def, object.metadata.namespace, object.metadata.name ?? "", options),
          );
        }
        sendJson(res, 200, {
          kind: def.listKind,
          apiVersion: apiVersionOf(def),
          metadata: { resourceVersion: String(this.sim.cluster.resourceVersion) },
          items,
        });
        return;
      }
      default:
        throw methodNotAllowed(method);
    }
  }

  private async item(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    query: URLSearchParams,
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    sub: "status" | undefined,
  ): Promise<void> {
    switch (method) {
      case "GET":
        sendJson(res, 200, this.sim.get(def, namespace, name));
        return;
      case "PUT":
        sendJson(res, 200, this.sim.replace(def, namespace, name, await readBody(req), sub));
        return;
      case "PATCH": {
        const contentType =
          (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
        sendJson(
          res,
          200,
          this.sim.patch(def, namespace, name, contentType, await readBody(req), sub),
        );
        return;
      }
      case "DELETE": {
        if (sub !== undefined) throw methodNotAllowed(method);
        const options = this.deleteOptions(query, await readBody(req));
        sendJson(res, 200, this.sim.delete(def, namespace, name, options));
        return;
      }
      default:
        throw methodNotAllowed(method);
    }
  }

  private deleteOptions(query: URLSearchParams, body: unknown): DeleteRequest {
    const options: DeleteRequest = {};
    const b = isRecord(body) ? body : {};
    const policy = query.get("propagationPolicy") ?? b["propagationPolicy"];
    if (typeof policy === "string" && policy !== "") options.propagationPolicy = policy;
    const grace = intParam(query, "gracePeriodSeconds") ?? b["gracePeriodSeconds"];
    if (typeof grace === "number") options.gracePeriodSeconds = grace;
    const pre = b["preconditions"];
    if (isRecord(pre)) {
      options.preconditions = {};
      if (typeof pre["uid"] === "string") options.preconditions.uid = pre["uid"];
      if (typeof pre["resourceVersion"] === "string")
        options.preconditions.resourceVersion = pre["resourceVersion"];
    }
    return options;
  }

  private countCreate(def: ResourceDef, namespace: string | undefined, body: unknown): void {
    const bump = (key: string) => this.createCounts.set(key, (this.createCounts.get(key) ?? 0) + 1);
    bump(def.resource);
    const meta = isRecord(body) ? body["metadata"] : undefined;
    const name = isRecord(meta) ? meta["name"] : undefined;
    if (typeof name === "string" && name !== "") bump(`${def.resource}/${namespace ?? ""}/${name}`);
  }

  private startWatch(
    res: ServerResponse,
    query: URLSearchParams,
    def: ResourceDef,
    namespace: string | undefined,
    match: ((o: KubeObject) => boolean) | undefined,
  ): void {
    const store = this.sim.cluster.store(def.resource);
    const rvParam = query.get("resourceVersion") ?? "";
    let backlog: ReturnType<typeof store.history.since> | "initial";
    if (rvParam === "" || rvParam === "0") {
      backlog = "initial";
    } else {
      const rv = Number(rvParam);
      if (!Number.isInteger(rv) || rv < 0) {
        throw badRequest(
          `resourceVersion: Invalid value: "${rvParam}": must be a non-negative integer`,
        );
      }
      backlog = store.history.since(rv);
    }
    const timeoutSeconds = intParam(query, "timeoutSeconds");
    const sendInitialEvents = boolParam(query, "sendInitialEvents");
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Cache-Control": "no-cache, private",
      "Transfer-Encoding": "chunked",
    });
    res.flushHeaders();
    let timer: NodeJS.Timeout | undefined;
    const stream = new WatchStream(
      res,
      def,
      namespace,
      match,
      boolParam(query, "allowWatchBookmarks"),
      (s) => {
        this.watches.delete(s);
        store.sinks.delete(s);
        if (timer !== undefined) clearTimeout(timer);
      },
    );
    if (backlog === undefined) {
      stream.error(
        failure(
          410,
          "Expired",
          `too old resource version: ${rvParam} (${store.history.compactedRv})`,
        ),
      );
      return;
    }
    if (backlog === "initial") {
      for (const object of store.objects.values()) stream.sendInitial(object);
      if (sendInitialEvents && stream.allowBookmarks)
        stream.bookmark(this.sim.cluster.resourceVersion, true);
    } else {
      for (const change of backlog) stream.onChange(change);
    }
    if (stream.isClosed) return;
    this.watches.add(stream);
    store.sinks.add(stream);
    if (timeoutSeconds !== undefined && timeoutSeconds > 0) {
      timer = setTimeout(() => stream.close(true), timeoutSeconds * 1000);
    }
  }

  private serveLog(
    res: ServerResponse,
    query: URLSearchParams,
    namespace: string,
    name: string,
  ): void {
    const pod = this.sim.get(PODS, namespace, name) as PodJson;
    const containers = pod.spec.containers.map((c) => c.name);
    let container = query.get("container") ?? "";
    if (container === "") {
      if (containers.length !== 1) {
        throw badRequest(
          `a container name must be specified for pod ${name}, choose one of: [${containers.join(" ")}]`,
        );
      }
      container = containers[0] ?? "";
    }
    if (!containers.includes(container))
      throw badRequest(`container ${container} is not valid for pod ${name}`);
    if (boolParam(query, "previous")) {
      throw badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
    }
    const uid = pod.metadata.uid ?? "";
    const view = this.sim.kubelet.containerLog(uid, container);
    if (view === undefined) throw notFound(PODS, name);
    if (pod.spec.nodeName === undefined) {
      // Like the API server: a pod without a node has no log location yet; the body is empty.
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end();
      return;
    }
    const waiting = view.state.waiting;
    if (waiting !== undefined) {
      const why =
        waiting.reason === "ErrImagePull" || waiting.reason === "ImagePullBackOff"
          ? "trying and failing to pull image"
          : waiting.reason;
      throw badRequest(`container "${container}" in pod "${name}" is waiting to start: ${why}`);
    }
    const timestamps = boolParam(query, "timestamps");
    const format = (l: { time: string; text: string }): string =>
      timestamps ? `${l.time} ${l.text}\n` : `${l.text}\n`;
    let lines = view.lines;
    const sinceSeconds = intParam(query, "sinceSeconds");
    if (sinceSeconds !== undefined && sinceSeconds > 0) {
      const cutoff = new Date(Date.now() - sinceSeconds * 1000).toISOString();
      lines = lines.filter((l) => l.time >= cutoff);
    }
    const tail = intParam(query, "tailLines");
    if (tail !== undefined && tail >= 0) lines = tail === 0 ? [] : lines.slice(-tail);
    let text = lines.map(format).join("");
    const limitBytes = intParam(query, "limitBytes");
    if (limitBytes !== undefined && limitBytes > 0)
      text = Buffer.from(text).subarray(0, limitBytes).toString("utf8");
    res.writeHead(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
    if (text !== "") res.write(text);
    if (!boolParam(query, "follow") || !view.running) {
      res.end();
      return;
    }
    res.flushHeaders();
    this.logStreams.add(res);
    const unfollow = this.sim.kubelet.follow(uid, {
      container,
      write: (l) => res.write(format(l)),
      end: () => res.end(),
    });
    res.on("close", () => {
      unfollow();
      this.logStreams.delete(res);
    });
  }

  private apiGroups(): {
    name: string;
    versions: { groupVersion: string; version: string }[];
    preferredVersion: { groupVersion: string; version: string };
  }[] {
    const groups = new Map<string, { groupVersion: string; version: string }[]>();
    for (const { group, version } of groupVersions()) {
      if (group === "") continue;
      const list = groups.get(group) ?? [];
      list.push({ groupVersion: `${group}/${version}`, version });
      groups.set(group, list);
    }
    return [...groups].map(([name, versions]) => ({
      name,
      versions,
      preferredVersion: versions[0] ?? { groupVersion: name, version: "" },
    }));
  }

  private apiResources(def: ResourceDef): Record<string, unknown>[] {
    const verbs = [
      "create",
      "delete",
      "deletecollection",
      "get",
      "list",
      "patch",
      "update",
      "watch",
    ];
    const main: Record<string, unknown> = {
      name: def.resource,
      singularName: def.kind.toLowerCase(),
      namespaced: def.namespaced,
      kind: def.kind,
      verbs,
    };
    if (def.shortNames.length > 0) main["shortNames"] = def.shortNames;
    const out = [main];
    if (def.resource !== "events") {
      out.push({
        name: `${def.resource}/status`,
        singularName: "",
        namespaced: def.namespaced,
        kind: def.kind,
        verbs: ["get", "patch", "update"],
      });
    }
    if (def.resource === "pods") {
      out.push({
        name: "pods/log",
        singularName: "",
        namespaced: true,
        kind: "Pod",
        verbs: ["get"],
      });
    }
    return out;
  }
}

/** Starts a kube-sim server; resolves once it listens. */
export async function startKubeSim(options: KubeSimOptions = {}): Promise<KubeSim> {
  const server = createServer({ keepAliveTimeout: 30_000 });
  const sim = new KubeSimServer(server, options);
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  sim.port = address.port;
  sim.url = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
  return sim;
}
