// Kubernetes Event objects for notable transitions, as the scheduler, kubelet and controllers
// record them, so code that lists a task's events sees what it would see on a cluster.
import { resourceDef, apiVersionOf, type ResourceDef } from "./resources.js";
import { type Cluster, nowSeconds } from "./store.js";
import type { EventJson, KubeObject } from "./types.js";

/** Records core/v1 Events about objects. */
export class EventRecorder {
  private counter = 0;
  private readonly eventsDef = resourceDef("events");

  constructor(
    private readonly cluster: Cluster,
    private readonly enabled: boolean,
    private readonly ensureNamespace: (namespace: string) => void,
    private readonly nodeName: string,
  ) {}

  /** Records one event about `object` (of type `def`). */
  record(
    def: ResourceDef,
    object: KubeObject,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    component: string,
    fieldPath?: string,
  ): void {
    if (!this.enabled) return;
    const meta = object.metadata;
    const namespace = meta.namespace ?? "default";
    const now = nowSeconds();
    this.counter = (this.counter + 1) % 0x10000;
    const suffix = Date.now().toString(16) + this.counter.toString(16).padStart(4, "0");
    const event: EventJson = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${meta.name ?? "object"}.${suffix}`, namespace },
      involvedObject: {
        kind: def.kind,
        name: meta.name ?? "",
        uid: meta.uid ?? "",
        apiVersion: apiVersionOf(def),
        resourceVersion: meta.resourceVersion ?? "",
      },
      reason,
      message,
      type,
      source: component === "kubelet" ? { component, host: this.nodeName } : { component },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      eventTime: null,
      reportingComponent: component,
      reportingInstance: component === "kubelet" ? this.nodeName : "",
    };
    if (fieldPath !== undefined) event.involvedObject.fieldPath = fieldPath;
    if (meta.namespace !== undefined) event.involvedObject.namespace = meta.namespace;
    this.ensureNamespace(namespace);
    this.cluster.insert(this.eventsDef, event);
  }
}
