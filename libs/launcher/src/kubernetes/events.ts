// The Kubernetes Events of a task's objects: of the objects that exist, of the pods the backend
// remembers, and of the pods whose saved logs name them (pods already gone).
import { selectorFor, type SelectorScope } from "@odin/k8s-manifests";
import { fromKubernetesError } from "@odin/service-kit";
import type { AttemptId } from "../attempt/core.js";
import type { AttemptRef, ObjectEvent } from "../backend.js";
import { attemptIdOf, objectEventOf } from "./classify.js";
import type { KubernetesApis } from "./http.js";
import type { SavedLogs } from "./logs.js";
import type { KubernetesObjects } from "./objects.js";

/** An attempt the backend remembers: its id and the names of its objects and pods. */
export interface KnownAttempt {
  id: AttemptId;
  names: Iterable<string>;
}

/** True when an attempt is in a scope (a run, a task, an attempt). */
export function inScope(id: AttemptId, scope: SelectorScope): boolean {
  return (
    (scope.runId === undefined || scope.runId === id.runId) &&
    (scope.task === undefined || scope.task === id.task) &&
    (scope.attempt === undefined || scope.attempt === id.attempt)
  );
}

/** The scope of an attempt reference (all attempts of the task when none is given). */
export function scopeOf(ref: AttemptRef): SelectorScope {
  const scope: SelectorScope = { runId: ref.runId, task: ref.task };
  if (ref.attempt) scope.attempt = ref.attempt;
  return scope;
}

/** Platform events of a task's objects, oldest first. */
export async function taskEvents(
  ref: AttemptRef,
  apis: KubernetesApis,
  objects: KubernetesObjects,
  saved: SavedLogs,
  known: Iterable<KnownAttempt>,
): Promise<ObjectEvent[]> {
  const scope = scopeOf(ref);
  const selector = selectorFor(scope);
  const names = new Map<string, number>();
  const [mains, pods] = await Promise.all([objects.listMain(selector), objects.listPods(selector)]);
  for (const o of [...mains.map((x) => x.obj), ...pods]) {
    const id = attemptIdOf(o.metadata);
    if (id && o.metadata?.name) names.set(o.metadata.name, id.attempt);
  }
  // Pods already gone: the backend remembers them, and their saved logs name them.
  for (const a of known) {
    if (!inScope(a.id, scope)) continue;
    for (const name of a.names) names.set(name, a.id.attempt);
  }
  const attempts = ref.attempt
    ? [ref.attempt]
    : await saved.attempts(ref.runId, ref.task).catch(() => []);
  for (const n of attempts) {
    const id = { runId: ref.runId, task: ref.task, attempt: n };
    for (const s of await saved.list(id).catch(() => [])) names.set(s.pod, n);
  }
  const lists = await Promise.all(
    [...names].map(async ([name, attempt]) => {
      try {
        const list = await apis.core.listNamespacedEvent({
          namespace: objects.namespace,
          fieldSelector: `involvedObject.name=${name}`,
        });
        return list.items.map((e) => objectEventOf(e, attempt));
      } catch (err) {
        throw fromKubernetesError(err, `list events of ${name}`);
      }
    }),
  );
  return lists.flat().sort((x, y) => x.time.getTime() - y.time.getTime());
}
