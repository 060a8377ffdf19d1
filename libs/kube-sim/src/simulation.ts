// The simulated cluster without HTTP: the API semantics (create, get, list, replace, patch,
// delete with propagation) over the store, plus the kubelet and controllers that act on it.
import { Controllers } from "./controllers.js";
import { EventRecorder } from "./events.js";
import { type GpuNodeSpec, Kubelet } from "./kubelet.js";

export type { GpuNodeSpec } from "./kubelet.js";
import { type FieldProblem, generatedName, validateName } from "./names.js";
import { jsonPatch, mergePatch } from "./patch.js";
import { type ResourceDef, apiVersionOf, qualifiedResource, resourceDef } from "./resources.js";
import { Scheduler } from "./scheduler.js";
import { ScriptBook, type ScriptDefaults } from "./scripts.js";
import type { Matcher } from "./selectors.js";
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  failure,
  invalid,
  notFound,
} from "./status.js";
import { Cluster, nowSeconds, storeKey } from "./store.js";
import type { KubeObject, PodJson, StatusJson } from "./types.js";
import { isRecord, show } from "./types.js";
import { schemaProblems } from "./schemas.js";
import { validateMeta, validateSpec } from "./validate.js";

/** Settings of a simulation. */
export interface SimulationSettings {
  scripts: ScriptDefaults;
  historySize: number;
  recordEvents: boolean;
  autoCreateNamespaces: boolean;
  nodeName: string;
  /** Nodes with GPUs (besides `nodeName`, which has none). */
  gpuNodes: readonly GpuNodeSpec[];
}

/** `DeleteOptions` that kube-sim honours. */
export interface DeleteRequest {
  propagationPolicy?: string;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** A page of a list. */
export interface ListPage {
  items: KubeObject[];
  resourceVersion: string;
  continueToken: string | undefined;
}

const PODS = resourceDef("pods");
const NAMESPACES = resourceDef("namespaces");
const NODES = resourceDef("nodes");

function nodeObject(name: string, gpus: number, product: string | undefined): KubeObject {
  const resources: Record<string, string> = { cpu: "64", memory: "512Gi", pods: "110" };
  if (gpus > 0) resources["nvidia.com/gpu"] = String(gpus);
  const labels: Record<string, string> = { "kubernetes.io/hostname": name };
  if (product) labels["nvidia.com/gpu.product"] = product;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels },
    spec: {},
    status: {
      capacity: resources,
      allocatable: { ...resources },
      conditions: [{ type: "Ready", status: "True", reason: "KubeletReady" }],
    },
  };
}

/** One problem per field (the schema's first): the semantic checks may see the same gap. */
function dedupe(problems: FieldProblem[]): FieldProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = p.field;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function problemsToError(def: ResourceDef, name: string, problems: FieldProblem[]): ApiError {
  return invalid(def, name, problems);
}

/** One simulated cluster with its scheduler, kubelet and controllers. */
export class Simulation {
  readonly cluster: Cluster;
  readonly scheduler = new Scheduler();
  readonly scripts: ScriptBook;
  readonly kubelet: Kubelet;
  readonly events: EventRecorder;
  /** Every object ever created, in order (as created). */
  readonly createdLog: KubeObject[] = [];

  constructor(private readonly settings: SimulationSettings) {
    this.cluster = new Cluster(settings.historySize);
    this.scripts = new ScriptBook(settings.scripts);
    this.events = new EventRecorder(
      this.cluster,
      settings.recordEvents,
      (ns) => this.ensureNamespace(ns),
      settings.nodeName,
    );
    this.kubelet = new Kubelet(
      this.cluster,
      this.scheduler,
      this.events,
      this.scripts,
      settings.nodeName,
      settings.gpuNodes,
    );
    new Controllers(
      this.cluster,
      this.scheduler,
      this.events,
      (pod) => this.create(PODS, pod.metadata.namespace, pod) as PodJson,
      (namespace, name) => {
        this.deletePod(namespace, name, undefined);
      },
    );
    for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
      this.insertNamespace(ns);
    }
    this.cluster.insert(NODES, nodeObject(settings.nodeName, 0, undefined));
    for (const n of settings.gpuNodes)
      this.cluster.insert(NODES, nodeObject(n.name, n.gpus, n.product));
  }

  /** Stops everything scheduled. */
  stop(): void {
    this.scheduler.stop();
  }

  private insertNamespace(name: string): KubeObject {
    const ns: KubeObject = {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name, labels: { "kubernetes.io/metadata.name": name } },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    };
    return this.cluster.insert(NAMESPACES, ns);
  }

  /** Creates `namespace` if it does not exist (events and auto-created namespaces). */
  ensureNamespace(namespace: string): void {
    if (this.cluster.get("namespaces", undefined, namespace) === undefined) {
      this.insertNamespace(namespace);
    }
  }

  /** Create with the API server's checks; throws ApiError. */
  create(
    def: ResourceDef,
    namespace: string | undefined,
    body: unknown,
    dryRun = false,
  ): KubeObject {
    if (!isRecord(body)) throw badRequest("the body of the request must be a JSON object");
    const apiVersion = apiVersionOf(def);
    if (def.replicaSpecsKey !== undefined) {
      // Custom resources are decoded as unstructured objects, which must name their type.
      if (body["kind"] === undefined)
        throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
      if (body["apiVersion"] === undefined) {
        throw badRequest(`Object 'apiVersion' is missing in '${JSON.stringify(body)}'`);
      }
    }
    if (body["apiVersion"] !== undefined && body["apiVersion"] !== apiVersion) {
      throw badRequest(
        `the API version in the data (${show(body["apiVersion"])}) does not match the expected API version (${apiVersion})`,
      );
    }
    if (body["kind"] !== undefined && body["kind"] !== def.kind) {
      throw badRequest(
        `the kind in the data (${show(body["kind"])}) does not match the expected kind (${def.kind})`,
      );
    }
    const rawMeta = body["metadata"] ?? {};
    if (!isRecord(rawMeta)) throw badRequest("metadata must be an object");
    const object = structuredClone(body) as KubeObject;
    object.apiVersion = apiVersion;
    object.kind = def.kind;
    const meta = (object.metadata = structuredClone(rawMeta));
    for (const field of [
      "uid",
      "resourceVersion",
      "creationTimestamp",
      "deletionTimestamp",
      "deletionGracePeriodSeconds",
      "generation",
      "managedFields",
      "selfLink",
    ]) {
      delete meta[field];
    }
    if (def.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== "" && meta.namespace !== namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      meta.namespace = namespace;
    } else {
      delete meta.namespace;
    }
    const store = this.cluster.store(def.resource);
    let name = typeof meta.name === "string" ? meta.name : "";
    if (name === "") {
      const prefix = typeof meta.generateName === "string" ? meta.generateName : "";
      if (prefix === "") {
        throw invalid(def, "", [
          {
            field: "metadata.name",
            value: "",
            message: "name or generateName is required",
            type: "FieldValueRequired",
          },
        ]);
      }
      for (let attempt = 0; attempt < 8; attempt++) {
        name = generatedName(prefix);
        if (!store.objects.has(storeKey(def, namespace, name))) break;
      }
      meta.name = name;
    }
    const problems = dedupe([
      ...schemaProblems(def, object),
      ...validateName(name, def.nameRule === "job-name" ? "dns1123-subdomain" : def.nameRule),
      ...validateMeta(meta, "metadata"),
      ...validateSpec(def, object),
    ]);
    if (def.nameRule === "job-name" && name.length > 63) {
      problems.push({
        field: "metadata.name",
        value: name,
        message: "must be no more than 63 characters",
      });
    }
    if (def.namespaced && namespace !== undefined) {
      problems.push(...validateName(namespace, "dns1123-label", "metadata.namespace"));
    }
    if (problems.length > 0) throw problemsToError(def, name, problems);
    if (store.objects.has(storeKey(def, namespace, name))) throw alreadyExists(def, name);
    if (
      def.namespaced &&
      namespace !== undefined &&
      this.cluster.get("namespaces", undefined, namespace) === undefined
    ) {
      if (!this.settings.autoCreateNamespaces) throw notFound(NAMESPACES, namespace);
      if (!dryRun) this.ensureNamespace(namespace);
    }
    this.applyDefaults(def, object);
    if (dryRun) return object;
    const created = this.cluster.insert(def, object);
    this.createdLog.push(created);
    return created;
  }

  private applyDefaults(def: ResourceDef, object: KubeObject): void {
    if (def.resource === "events") return;
    if (def.resource !== "namespaces") delete object["status"];
    if (def.resource !== "pods" && def.resource !== "namespaces") object.metadata.generation = 1;
    if (def.resource === "namespaces") {
      object["spec"] = { finalizers: ["kubernetes"] };
      object["status"] = { phase: "Active" };
      object.metadata.labels = {
        ...(object.metadata.labels ?? {}),
        "kubernetes.io/metadata.name": object.metadata.name ?? "",
      };
      return;
    }
    if (def.resource !== "pods") return;
    const pod = object as PodJson;
    const spec = pod.spec;
    spec.restartPolicy ??= "Always";
    spec["schedulerName"] ??= "default-scheduler";
    spec["terminationGracePeriodSeconds"] ??= 30;
    spec["dnsPolicy"] ??= "ClusterFirst";
    spec["serviceAccountName"] ??= "default";
    let hasResources = false;
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      c["terminationMessagePath"] ??= "/dev/termination-log";
      c.terminationMessagePolicy ??= "File";
      const image = c.image ?? "";
      const tag = image.includes("@") ? "digest" : (/:([^/:]+)$/.exec(image)?.[1] ?? "latest");
      c["imagePullPolicy"] ??= tag === "latest" ? "Always" : "IfNotPresent";
      if (isRecord(c["resources"]) && Object.keys(c["resources"]).length > 0) hasResources = true;
    }
    pod.status = { phase: "Pending", qosClass: hasResources ? "Burstable" : "BestEffort" };
  }

  /** The object or a 404. */
  get(def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
    const object = this.cluster.get(def.resource, namespace, name);
    if (object === undefined) throw notFound(def, name);
    return object;
  }

  /** A page of matching objects, sorted by namespace and name. */
  list(
    def: ResourceDef,
    namespace: string | undefined,
    match: Matcher | undefined,
    limit?: number,
    continueToken?: string,
  ): ListPage {
    const store = this.cluster.store(def.resource);
    let after = "";
    if (continueToken !== undefined && continueToken !== "") {
      try {
        const decoded: unknown = JSON.parse(
          Buffer.from(continueToken, "base64url").toString("utf8"),
        );
        if (!isRecord(decoded) || typeof decoded["after"] !== "string")
          throw new Error("bad token");
        after = decoded["after"];
      } catch {
        throw badRequest("the provided continue parameter is not valid");
      }
    }
    const keys = [...store.objects.keys()].sort();
    const items: KubeObject[] = [];
    let next: string | undefined;
    for (const key of keys) {
      if (after !== "" && key <= after) continue;
      const object = store.objects.get(key);
      if (object === undefined) continue;
      if (namespace !== undefined && object.metadata.namespace !== namespace) continue;
      if (match !== undefined && !match(object)) continue;
      if (limit !== undefined && limit > 0 && items.length >= limit) {
        const lastKey = storeKey(
          def,
          items[items.length - 1]?.metadata.namespace,
          items[items.length - 1]?.metadata.name ?? "",
        );
        next = Buffer.from(JSON.stringify({ after: lastKey })).toString("base64url");
        break;
      }
      items.push(object);
    }
    return { items, resourceVersion: String(this.cluster.resourceVersion), continueToken: next };
  }

  /** PUT: replaces the object (or only its status); 409 on a stale resourceVersion. */
  replace(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    body: unknown,
    subresource: "status" | undefined,
  ): KubeObject {
    const existing = this.get(def, namespace, name);
    if (!isRecord(body) || !isRecord(body["metadata"]))
      throw badRequest("the body of the request must be an object with metadata");
    const bodyMeta = body["metadata"];
    if (bodyMeta["name"] !== undefined && bodyMeta["name"] !== name) {
      throw badRequest(
        `the name of the object (${show(bodyMeta["name"])}) does not match the name on the URL (${name})`,
      );
    }
    return this.store(def, existing, structuredClone(body) as KubeObject, subresource);
  }

  /** PATCH with a merge, strategic-merge (treated as merge) or JSON patch. */
  patch(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    contentType: string,
    body: unknown,
    subresource: "status" | undefined,
  ): KubeObject {
    const existing = this.get(def, namespace, name);
    let next: unknown;
    if (contentType === "application/json-patch+json") next = jsonPatch(existing, body);
    else if (
      contentType === "application/merge-patch+json" ||
      contentType === "application/strategic-merge-patch+json"
    ) {
      next = mergePatch(existing, body);
    } else {
      throw new ApiError(
        failure(
          415,
          "UnsupportedMediaType",
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${contentType})`,
        ),
      );
    }
    if (!isRecord(next) || !isRecord(next["metadata"]))
      throw badRequest("the patched object must keep its metadata");
    if (next["metadata"]["name"] !== name) throw badRequest("a patch cannot change metadata.name");
    return this.store(def, existing, next as KubeObject, subresource);
  }

  private store(
    def: ResourceDef,
    existing: KubeObject,
    incoming: KubeObject,
    subresource: "status" | undefined,
  ): KubeObject {
    const rv = incoming.metadata.resourceVersion;
    if (rv !== undefined && rv !== "" && rv !== existing.metadata.resourceVersion) {
      throw conflict(def, existing.metadata.name ?? "");
    }
    let next: KubeObject;
    if (subresource === "status") {
      next = structuredClone(existing);
      next["status"] = incoming["status"];
    } else {
      next = incoming;
      next.apiVersion = apiVersionOf(def);
      next.kind = def.kind;
      next.metadata.namespace = existing.metadata.namespace;
      next.metadata.name = existing.metadata.name;
      // Fields only the server sets: keep the stored values whatever the client sent.
      const { deletionTimestamp, deletionGracePeriodSeconds, generation } = existing.metadata;
      delete next.metadata.deletionTimestamp;
      delete next.metadata.deletionGracePeriodSeconds;
      delete next.metadata.generation;
      if (deletionTimestamp !== undefined) next.metadata.deletionTimestamp = deletionTimestamp;
      if (deletionGracePeriodSeconds !== undefined) {
        next.metadata.deletionGracePeriodSeconds = deletionGracePeriodSeconds;
      }
      if (generation !== undefined) next.metadata.generation = generation;
      if (def.resource !== "events") {
        if (existing["status"] === undefined) delete next["status"];
        else next["status"] = existing["status"];
      }
      const problems = validateMeta(next.metadata, "metadata");
      if (problems.length > 0) throw invalid(def, existing.metadata.name ?? "", problems);
      if (
        typeof existing.metadata.generation === "number" &&
        JSON.stringify(existing["spec"]) !== JSON.stringify(next["spec"])
      ) {
        next.metadata.generation = existing.metadata.generation + 1;
      }
    }
    const store = this.cluster.store(def.resource);
    this.cluster.replace(
      store,
      storeKey(def, existing.metadata.namespace, existing.metadata.name ?? ""),
      existing,
      next,
    );
    return next;
  }

  /** DELETE with propagation to owned pods; returns the response body. */
  delete(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    options: DeleteRequest,
  ): KubeObject | StatusJson {
    const existing = this.get(def, namespace, name);
    const pre = options.preconditions;
    if (
      (pre?.uid !== undefined && pre.uid !== existing.metadata.uid) ||
      (pre?.resourceVersion !== undefined &&
        pre.resourceVersion !== existing.metadata.resourceVersion)
    ) {
      throw new ApiError(
        failure(
          409,
          "Conflict",
          `Operation cannot be fulfilled on ${qualifiedResource(def)} "${name}": Precondition failed`,
        ),
      );
    }
    if (def.resource === "pods")
      return this.deletePod(namespace ?? "", name, options.gracePeriodSeconds) ?? existing;
    if (def.resource === "namespaces") return this.deleteNamespace(name);
    const policy = options.propagationPolicy ?? def.defaultPropagation;
    if (!["Orphan", "Background", "Foreground"].includes(policy)) {
      throw badRequest(
        `propagationPolicy must be one of Orphan, Background, Foreground (got ${policy})`,
      );
    }
    const uid = existing.metadata.uid ?? "";
    const owned = () => this.cluster.podsOwnedBy(uid).map((key) => key.slice(key.indexOf("/") + 1));
    if (policy === "Foreground") {
      const marked = this.cluster.update(def.resource, namespace, name, (draft) => {
        draft.metadata.deletionTimestamp = nowSeconds();
        draft.metadata.deletionGracePeriodSeconds = 0;
        draft.metadata.finalizers = [...(draft.metadata.finalizers ?? []), "foregroundDeletion"];
      });
      for (const pod of owned()) this.deletePod(namespace ?? "", pod, undefined);
      this.cluster.remove(def.resource, namespace, name);
      return marked ?? existing;
    }
    if (policy === "Orphan") {
      for (const pod of owned()) {
        this.cluster.update("pods", namespace, pod, (draft) => {
          draft.metadata.ownerReferences = draft.metadata.ownerReferences?.filter(
            (r) => r.uid !== uid,
          );
          if (draft.metadata.ownerReferences?.length === 0) delete draft.metadata.ownerReferences;
        });
      }
      this.cluster.remove(def.resource, namespace, name);
    } else {
      this.cluster.remove(def.resource, namespace, name);
      // The garbage collector removes dependents after the owner is gone.
      this.scheduler.after(0, () => {
        for (const pod of owned()) this.deletePod(namespace ?? "", pod, undefined);
      });
    }
    const details: NonNullable<StatusJson["details"]> = { name, kind: def.resource, uid };
    if (def.group !== "") details.group = def.group;
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      message: "",
      reason: "",
      details,
      code: 200,
    };
  }

  /**
   * Deletes a pod as the API server and kubelet do, compressed in time: a pod on a node that is
   * still running first gets deletionTimestamp (MODIFIED, Killing events), then is removed.
   */
  deletePod(
    namespace: string,
    name: string,
    gracePeriodSeconds: number | undefined,
  ): KubeObject | undefined {
    const pod = this.cluster.get("pods", namespace, name) as PodJson | undefined;
    if (pod === undefined) return undefined;
    const phase = pod.status?.phase;
    const active = pod.spec.nodeName !== undefined && phase !== "Succeeded" && phase !== "Failed";
    let last: KubeObject | undefined = pod;
    if (active && gracePeriodSeconds !== 0 && pod.metadata.deletionTimestamp === undefined) {
      this.kubelet.killing(pod);
      last = this.cluster.update("pods", namespace, name, (draft) => {
        draft.metadata.deletionTimestamp = nowSeconds();
        const grace = draft["spec"];
        draft.metadata.deletionGracePeriodSeconds =
          gracePeriodSeconds ??
          (isRecord(grace) && typeof grace["terminationGracePeriodSeconds"] === "number"
            ? grace["terminationGracePeriodSeconds"]
            : 30);
      });
    }
    const removed = this.cluster.remove("pods", namespace, name);
    return active ? last : removed;
  }

  private deleteNamespace(name: string): KubeObject {
    const existing = this.get(NAMESPACES, undefined, name);
    const marked = this.cluster.update("namespaces", undefined, name, (draft) => {
      draft.metadata.deletionTimestamp = nowSeconds();
      draft["status"] = { phase: "Terminating" };
    });
    for (const resource of [
      "pods",
      "jobs",
      "tfjobs",
      "pytorchjobs",
      "mpijobs",
      "elasticjobs",
      "events",
    ] as const) {
      const store = this.cluster.store(resource);
      for (const object of [...store.objects.values()]) {
        if (object.metadata.namespace !== name) continue;
        if (resource === "pods") this.deletePod(name, object.metadata.name ?? "", 0);
        else this.cluster.remove(resource, name, object.metadata.name ?? "");
      }
    }
    this.cluster.remove("namespaces", undefined, name);
    return marked ?? existing;
  }
}
