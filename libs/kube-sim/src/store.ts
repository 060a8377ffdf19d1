// The object store: one map per resource type, one global resourceVersion counter, a bounded
// change history per type (what a watch can resume from), and synchronous fan-out of every change
// to open watches first and then to the simulated controllers.
import { randomUUID } from "node:crypto";
import { type ResourceDef, type ResourceName, RESOURCES } from "./resources.js";
import type { KubeObject } from "./types.js";

/** Kind of a change, as it appears in a watch event. */
export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

/** One change of one object, numbered by the resourceVersion it produced. */
export interface Change {
  readonly type: ChangeType;
  readonly object: KubeObject;
  /** The object before a MODIFIED change (to tell selector transitions apart). */
  readonly previous: KubeObject | undefined;
  readonly rv: number;
  /** Serialized `{"type","object"}` line, computed once and shared by every watch. */
  line?: string;
}

/** Something that wants every change of one type (an open watch). */
export interface ChangeSink {
  onChange(change: Change): void;
}

/** Fixed-capacity ring of the most recent changes of one type. */
class History {
  private readonly buffer: (Change | undefined)[];
  private start = 0;
  private size = 0;
  /** Changes with a resourceVersion at or below this may have been dropped. */
  compactedRv = 0;

  constructor(private readonly capacity: number) {
    this.buffer = new Array<Change | undefined>(Math.max(1, capacity));
  }

  push(change: Change): void {
    if (this.capacity <= 0) {
      this.compactedRv = change.rv;
      return;
    }
    if (this.size === this.capacity) {
      const dropped = this.buffer[this.start];
      if (dropped !== undefined) this.compactedRv = dropped.rv;
      this.buffer[this.start] = change;
      this.start = (this.start + 1) % this.capacity;
    } else {
      this.buffer[(this.start + this.size) % this.capacity] = change;
      this.size++;
    }
  }

  /** Changes after `rv` in order, or undefined when some of them are no longer retained. */
  since(rv: number): Change[] | undefined {
    if (rv < this.compactedRv) return undefined;
    const out: Change[] = [];
    for (let i = this.size - 1; i >= 0; i--) {
      const change = this.buffer[(this.start + i) % this.capacity];
      if (change === undefined || change.rv <= rv) break;
      out.push(change);
    }
    return out.reverse();
  }

  clear(upToRv: number): void {
    this.buffer.fill(undefined);
    this.start = 0;
    this.size = 0;
    this.compactedRv = upToRv;
  }
}

/** Objects and change history of one resource type. */
export class ResourceStore {
  readonly objects = new Map<string, KubeObject>();
  readonly sinks = new Set<ChangeSink>();
  readonly history: History;

  constructor(
    readonly def: ResourceDef,
    historySize: number,
  ) {
    this.history = new History(historySize);
  }
}

/** Store key of an object: `namespace/name`, or `name` for cluster-scoped types. */
export function storeKey(def: ResourceDef, namespace: string | undefined, name: string): string {
  return def.namespaced ? `${namespace ?? ""}/${name}` : name;
}

/** Where an object with a given uid lives. */
interface UidEntry {
  def: ResourceDef;
  key: string;
}

/** All objects of the simulated cluster. */
export class Cluster {
  private rv = 1;
  private readonly stores = new Map<ResourceName, ResourceStore>();
  private readonly uids = new Map<string, UidEntry>();
  /** owner uid → store keys of the pods that name it in ownerReferences. */
  private readonly ownedPods = new Map<string, Set<string>>();
  private readonly listeners = new Map<ResourceName, ((change: Change) => void)[]>();

  constructor(historySize: number) {
    for (const def of RESOURCES) this.stores.set(def.resource, new ResourceStore(def, historySize));
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Store of one type. */
  store(resource: ResourceName): ResourceStore {
    const store = this.stores.get(resource);
    if (store === undefined) throw new Error(`kube-sim: no store for ${resource}`);
    return store;
  }

  /** Calls `listener` after every change of `resource` (after open watches saw it). */
  onChange(resource: ResourceName, listener: (change: Change) => void): void {
    const list = this.listeners.get(resource) ?? [];
    list.push(listener);
    this.listeners.set(resource, list);
  }

  /** The stored object, or undefined. Treat it as read-only. */
  get(resource: ResourceName, namespace: string | undefined, name: string): KubeObject | undefined {
    const store = this.store(resource);
    return store.objects.get(storeKey(store.def, namespace, name));
  }

  /** The stored object with this uid, or undefined. */
  getByUid(uid: string): { def: ResourceDef; object: KubeObject } | undefined {
    const entry = this.uids.get(uid);
    if (entry === undefined) return undefined;
    const object = this.store(entry.def.resource).objects.get(entry.key);
    return object === undefined ? undefined : { def: entry.def, object };
  }

  /** Store keys of the pods owned by `ownerUid`. */
  podsOwnedBy(ownerUid: string): string[] {
    return [...(this.ownedPods.get(ownerUid) ?? [])];
  }

  /**
   * Stores a new object (its name already final and checked not to exist), assigning uid,
   * resourceVersion and creationTimestamp, and emits ADDED.
   */
  insert(def: ResourceDef, object: KubeObject): KubeObject {
    const meta = object.metadata;
    const name = meta.name ?? "";
    const key = storeKey(def, meta.namespace, name);
    const store = this.store(def.resource);
    meta.uid = randomUUID();
    meta.creationTimestamp = nowSeconds();
    meta.resourceVersion = String(++this.rv);
    store.objects.set(key, object);
    this.uids.set(meta.uid, { def, key });
    if (def.resource === "pods") {
      for (const ref of meta.ownerReferences ?? []) {
        const set = this.ownedPods.get(ref.uid) ?? new Set<string>();
        set.add(key);
        this.ownedPods.set(ref.uid, set);
      }
    }
    this.emit(store, { type: "ADDED", object, previous: undefined, rv: this.rv });
    return object;
  }

  /**
   * Applies `mutate` to a copy of the stored object; if it returns anything but `false`, stores
   * the copy with a new resourceVersion and emits MODIFIED. Returns the stored object.
   */
  update(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    mutate: (draft: KubeObject) => boolean | void,
  ): KubeObject | undefined {
    const store = this.store(resource);
    const key = storeKey(store.def, namespace, name);
    const previous = store.objects.get(key);
    if (previous === undefined) return undefined;
    const draft = structuredClone(previous);
    if (mutate(draft) === false) return previous;
    this.replace(store, key, previous, draft);
    return draft;
  }

  /** Replaces a stored object by `next` (same name and uid), emitting MODIFIED. */
  replace(store: ResourceStore, key: string, previous: KubeObject, next: KubeObject): void {
    next.metadata.uid = previous.metadata.uid;
    next.metadata.creationTimestamp = previous.metadata.creationTimestamp;
    next.metadata.resourceVersion = String(++this.rv);
    if (store.def.resource === "pods") this.reindexOwners(key, previous, next);
    store.objects.set(key, next);
    this.emit(store, { type: "MODIFIED", object: next, previous, rv: this.rv });
  }

  /** Removes an object, emitting DELETED with its last state (at a new resourceVersion). */
  remove(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
  ): KubeObject | undefined {
    const store = this.store(resource);
    const key = storeKey(store.def, namespace, name);
    const previous = store.objects.get(key);
    if (previous === undefined) return undefined;
    store.objects.delete(key);
    const last = structuredClone(previous);
    last.metadata.resourceVersion = String(++this.rv);
    if (previous.metadata.uid !== undefined) this.uids.delete(previous.metadata.uid);
    if (resource === "pods") this.reindexOwners(key, previous, undefined);
    this.emit(store, { type: "DELETED", object: last, previous, rv: this.rv });
    return last;
  }

  /** Forgets the change history of every type, so resuming a watch from before now gets 410. */
  compactHistory(): void {
    for (const store of this.stores.values()) store.history.clear(this.rv);
  }

  private reindexOwners(key: string, previous: KubeObject, next: KubeObject | undefined): void {
    for (const ref of previous.metadata.ownerReferences ?? []) {
      const set = this.ownedPods.get(ref.uid);
      set?.delete(key);
      if (set?.size === 0) this.ownedPods.delete(ref.uid);
    }
    for (const ref of next?.metadata.ownerReferences ?? []) {
      const set = this.ownedPods.get(ref.uid) ?? new Set<string>();
      set.add(key);
      this.ownedPods.set(ref.uid, set);
    }
  }

  private emit(store: ResourceStore, change: Change): void {
    store.history.push(change);
    for (const sink of store.sinks) sink.onChange(change);
    for (const listener of this.listeners.get(store.def.resource) ?? []) listener(change);
  }
}

/** Current time as the API server writes timestamps (RFC 3339, seconds). */
export function nowSeconds(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Current time with microseconds, as in `eventTime` and log timestamps. */
export function nowMicros(): string {
  return new Date().toISOString().replace(/Z$/, "000Z");
}
