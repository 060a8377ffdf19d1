// The Kubernetes API operations on Odin's objects: create, read, mark-and-delete, list — one
// place that knows which typed client serves which resource type.
import { PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { apiResources, type Manifest } from "@odin/k8s-manifests";
import { resourceTypes, type ResourceType } from "@odin/pipeline-spec";
import { fromKubernetesError } from "@odin/service-kit";
import { cancelledAnnotation, type ObjectLike } from "./classify.js";
import type { KubernetesApis } from "./http.js";

/** A resource type that owns pods (all but the bare Pod). */
export type OwnerKind = Exclude<ResourceType, "Pod">;

/** Resource type by Kubernetes kind (`Job` → "Job", …). */
export const kindByName: ReadonlyMap<string, ResourceType> = new Map(
  resourceTypes.map((k) => [apiResources[k].kind, k]),
);

/** The HTTP status of a failed API call, if it has one. */
export function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** The controller (else first owner) of a pod. */
export function controllerOf(pod: V1Pod): { kind: string; name: string } | undefined {
  const ref =
    pod.metadata?.ownerReferences?.find((r) => r.controller) ?? pod.metadata?.ownerReferences?.[0];
  return ref ? { kind: ref.kind, name: ref.name } : undefined;
}

/** A top-level object of an attempt and its type. */
export interface MainObject {
  kind: ResourceType;
  obj: ObjectLike;
}

/** Odin's objects in one namespace, through the rate-limited, retrying clients. */
export class KubernetesObjects {
  constructor(
    private readonly apis: KubernetesApis,
    readonly namespace: string,
    private readonly types: readonly ResourceType[],
  ) {}

  /** Creates the object of a manifest (the raw API error on failure: 409 means it exists). */
  async create(m: Manifest): Promise<void> {
    const { core, batch, custom } = this.apis;
    const namespace = m.namespace;
    switch (m.kind) {
      case "Pod":
        await core.createNamespacedPod({ namespace, body: m.body });
        return;
      case "Job":
        await batch.createNamespacedJob({ namespace, body: m.body });
        return;
      default:
        await custom.createNamespacedCustomObject({
          group: m.group,
          version: m.version,
          namespace,
          plural: m.plural,
          body: m.body,
        });
    }
  }

  /** Reads one object (the raw API error on failure). */
  async read(kind: ResourceType, name: string): Promise<ObjectLike> {
    const { core, batch, custom } = this.apis;
    const namespace = this.namespace;
    if (kind === "Pod") return core.readNamespacedPod({ name, namespace });
    if (kind === "Job") return batch.readNamespacedJob({ name, namespace });
    const r = apiResources[kind];
    return (await custom.getNamespacedCustomObject({
      group: r.group,
      version: r.version,
      namespace,
      plural: r.plural,
      name,
    })) as ObjectLike;
  }

  /**
   * Deletes one object with background propagation; false when it was already gone. The object
   * is first annotated with why, so every launcher watching it (a replica, or this one after a
   * restart) knows the deletion is Odin's and does not report it as an ERROR.
   */
  async delete(kind: ResourceType, name: string, why: string): Promise<boolean> {
    const { core, batch, custom } = this.apis;
    const namespace = this.namespace;
    const propagationPolicy = "Background";
    const body = { metadata: { annotations: { [cancelledAnnotation]: why } } };
    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    try {
      if (kind === "Pod") await core.patchNamespacedPod({ name, namespace, body }, merge);
      else if (kind === "Job") await batch.patchNamespacedJob({ name, namespace, body }, merge);
      else {
        const r = apiResources[kind];
        await custom.patchNamespacedCustomObject(
          { group: r.group, version: r.version, namespace, plural: r.plural, name, body },
          merge,
        );
      }
    } catch (err) {
      if (httpCode(err) === 404) return false;
      throw fromKubernetesError(err, `mark ${kind} ${name} in namespace ${namespace} for deletion`);
    }
    try {
      if (kind === "Pod") await core.deleteNamespacedPod({ name, namespace, propagationPolicy });
      else if (kind === "Job")
        await batch.deleteNamespacedJob({ name, namespace, propagationPolicy });
      else {
        const r = apiResources[kind];
        await custom.deleteNamespacedCustomObject({
          group: r.group,
          version: r.version,
          namespace,
          plural: r.plural,
          name,
          propagationPolicy,
        });
      }
      return true;
    } catch (err) {
      if (httpCode(err) === 404) return false;
      throw fromKubernetesError(err, `delete ${kind} ${name} in namespace ${namespace}`);
    }
  }

  /** Top-level objects (Pods without an owner, Jobs, training jobs) matching a selector. */
  async listMain(selector: string): Promise<MainObject[]> {
    const { batch, custom } = this.apis;
    const namespace = this.namespace;
    const lists = await Promise.all(
      this.types.map(async (kind): Promise<MainObject[]> => {
        try {
          if (kind === "Pod") {
            const pods = await this.listPods(selector);
            return pods.filter((p) => controllerOf(p) === undefined).map((obj) => ({ kind, obj }));
          }
          if (kind === "Job") {
            const list = await batch.listNamespacedJob({ namespace, labelSelector: selector });
            return list.items.map((obj) => ({ kind, obj }));
          }
          const r = apiResources[kind];
          const list = (await custom.listNamespacedCustomObject({
            group: r.group,
            version: r.version,
            namespace,
            plural: r.plural,
            labelSelector: selector,
          })) as { items?: ObjectLike[] };
          return (list.items ?? []).map((obj) => ({ kind, obj }));
        } catch (err) {
          if (httpCode(err) === 404) return []; // CRD not installed
          throw fromKubernetesError(err, `list ${kind} objects in namespace ${namespace}`);
        }
      }),
    );
    return lists.flat();
  }

  /** Pods matching a selector, in `namespace` (default: the backend's). */
  async listPods(selector: string, namespace = this.namespace): Promise<V1Pod[]> {
    try {
      const list = await this.apis.core.listNamespacedPod({ namespace, labelSelector: selector });
      return list.items;
    } catch (err) {
      throw fromKubernetesError(err, `list pods in namespace ${namespace}`);
    }
  }
}
