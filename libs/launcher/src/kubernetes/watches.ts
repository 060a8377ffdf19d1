// The informers on Odin's objects: pods and each owner type, label-selected on Odin's
// managed-by label (and, with several launchers, on the shards this one watches), each restarted with backoff whenever its watch or list fails. What they see
// goes to the backend's handlers; a missing CRD is retried in the background, a failing pod or
// Job list stops the start.
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
  type Informer,
  type ObjectCache,
  type V1Node,
  type V1Pod,
} from "@kubernetes/client-node";
import { apiResources, managedByLabel, managedByValue } from "@odin/k8s-manifests";
import type { ResourceType } from "@odin/pipeline-spec";
import { fromKubernetesError, type Logger } from "@odin/service-kit";
import type { ObjectLike } from "./classify.js";
import { backoffDelay, type KubernetesApis, type RetryPolicy } from "./http.js";
import { httpCode, type OwnerKind } from "./objects.js";

/** One informer, restarted with backoff whenever its watch or list fails. */
class ResourceWatch {
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError: unknown;

  constructor(
    readonly kind: ResourceType | "Node",
    readonly informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>,
    private readonly logger: Logger,
    private readonly policy: RetryPolicy,
  ) {
    informer.on("error", (err: unknown) => this.failed(err));
    informer.on("connect", () => {
      this.lastError = undefined;
    });
  }

  /** Lists and starts watching; resolves with the error when the first list failed. */
  async start(): Promise<unknown> {
    this.lastError = undefined;
    await this.informer.start();
    return this.lastError;
  }

  /** A watch event arrived: the connection works. */
  healthy(): void {
    this.failures = 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.informer.stop();
  }

  private failed(err: unknown): void {
    this.lastError = err;
    if (this.stopped) return;
    const code = httpCode(err) ?? (err as { statusCode?: unknown } | null)?.statusCode;
    const delay = backoffDelay(this.failures, {
      baseDelayMs: this.policy.baseDelayMs,
      maxDelayMs: code === 404 ? 60_000 : Math.max(this.policy.maxDelayMs, 1000),
    });
    const fields = { kind: this.kind, err, retryInMs: Math.round(delay) };
    if (code === 404) {
      if (this.failures === 0)
        this.logger.warn(
          `the ${this.kind} API is not installed; ${this.kind} tasks cannot run`,
          fields,
        );
    } else if (this.failures === 0) this.logger.info("watch ended with an error; resuming", fields);
    else this.logger.warn("watch keeps failing; resuming", fields);
    this.failures++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) void this.informer.start();
    }, delay);
  }
}

/** Where the watches send what they see. */
export interface WatchHandlers {
  pod(pod: V1Pod, deleted: boolean): void;
  owner(kind: OwnerKind, obj: ObjectLike, deleted: boolean): void;
}

/** What the watches need. */
export interface WatchSetup {
  kubeConfig: KubeConfig;
  apis: KubernetesApis;
  namespace: string;
  types: readonly ResourceType[];
  logger: Logger;
  retry: RetryPolicy;
  /** Which of Odin's objects to watch (default: every one, `managed-by=odin`). */
  selector?: string;
  /** Whether to watch nodes too, for the GPU inventory (default true). */
  nodes?: boolean;
}

/** The informers of one backend. */
export class Watches {
  private readonly watches = new Map<ResourceType | "pods" | "nodes", ResourceWatch>();

  constructor(private readonly setup: WatchSetup) {}

  /** Lists and watches pods first (so owners re-listed next find their pods' exit codes), then owners. */
  async start(handlers: WatchHandlers): Promise<void> {
    const { kubeConfig: kc, namespace: ns, apis, logger, retry } = this.setup;
    const selector = this.setup.selector ?? `${managedByLabel}=${managedByValue}`;
    const pods = makeInformer<KubernetesObject>(
      kc,
      `/api/v1/namespaces/${ns}/pods`,
      () => apis.core.listNamespacedPod({ namespace: ns, labelSelector: selector }),
      selector,
    );
    const podWatch = new ResourceWatch("Pod", pods, logger, retry);
    this.watches.set("pods", podWatch);
    const onPod = (deleted: boolean) => (o: KubernetesObject) => {
      podWatch.healthy();
      handlers.pod(o, deleted);
    };
    pods.on("add", onPod(false));
    pods.on("update", onPod(false));
    pods.on("delete", onPod(true));
    const podError = await podWatch.start();
    if (podError !== undefined) throw fromKubernetesError(podError, `list pods in namespace ${ns}`);

    const owners = this.setup.types.filter((k): k is OwnerKind => k !== "Pod");
    const failures = await Promise.all(
      owners.map(async (kind) => {
        const r = apiResources[kind];
        const path = `/apis/${r.group}/${r.version}/namespaces/${ns}/${r.plural}`;
        const list =
          kind === "Job"
            ? () => apis.batch.listNamespacedJob({ namespace: ns, labelSelector: selector })
            : () =>
                apis.custom.listNamespacedCustomObject({
                  group: r.group,
                  version: r.version,
                  namespace: ns,
                  plural: r.plural,
                  labelSelector: selector,
                });
        const informer = makeInformer<KubernetesObject>(
          kc,
          path,
          list as () => Promise<KubernetesListObject<KubernetesObject>>,
          selector,
        );
        const watch = new ResourceWatch(kind, informer, logger, retry);
        this.watches.set(kind, watch);
        const onOwner = (deleted: boolean) => (o: KubernetesObject) => {
          watch.healthy();
          handlers.owner(kind, o, deleted);
        };
        informer.on("add", onOwner(false));
        informer.on("update", onOwner(false));
        informer.on("delete", onOwner(true));
        const err = await watch.start();
        return err === undefined ? undefined : { kind, err };
      }),
    );
    // The informer retries by itself; only a failure of the core Job API stops the launcher.
    const jobFailure = failures.find((f) => f?.kind === "Job");
    if (jobFailure) throw fromKubernetesError(jobFailure.err, `list jobs in namespace ${ns}`);
    if (this.setup.nodes === false) return;

    // Nodes, for the GPU inventory (odin gpus). Not needed to run tasks: a failure (no RBAC for
    // nodes) is logged and retried by the informer, never fatal.
    const nodes = makeInformer<KubernetesObject>(kc, "/api/v1/nodes", () => apis.core.listNode());
    const nodeWatch = new ResourceWatch("Node", nodes, logger, retry);
    this.watches.set("nodes", nodeWatch);
    for (const e of ["add", "update", "delete"] as const) nodes.on(e, () => nodeWatch.healthy());
    const nodeError = await nodeWatch.start();
    if (nodeError !== undefined)
      logger.warn("cannot list nodes: odin gpus will say so (grant get/list/watch on nodes)", {
        err: nodeError,
      });
    this.nodeError = nodeError;
    nodes.on("connect", () => (this.nodeError = undefined));
  }

  /** Why nodes could not be listed, if they could not. */
  nodeError: unknown;

  /** The nodes the node informer holds. */
  nodes(): V1Node[] {
    return (this.watches.get("nodes")?.informer.list() ?? []) as V1Node[];
  }

  /** Odin's pods the pod informer holds. */
  pods(): V1Pod[] {
    return (this.watches.get("pods")?.informer.list() ?? []) as V1Pod[];
  }

  /** Whether the pod informer still has the pod (it has not reported it deleted). */
  hasPod(namespace: string, name: string): boolean {
    return this.watches.get("pods")?.informer.get(name, namespace) !== undefined;
  }

  /** Stops every informer. */
  async stop(): Promise<void> {
    await Promise.all([...this.watches.values()].map((w) => w.stop().catch(() => undefined)));
  }
}
