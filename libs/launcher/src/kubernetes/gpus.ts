// The cluster's GPUs as the launcher's informers hold them: each node's nvidia.com/gpu capacity,
// and what the Odin pods not yet ended request on it (pods of the launcher's namespace only).
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { attemptLabel, runLabel, taskLabel } from "@odin/k8s-manifests";
import type { GpuNode } from "../backend.js";

/** Nodes with GPUs (every node with `allNodes`), sorted by name, with the Odin tasks using them. */
export function gpuInventory(
  nodes: readonly V1Node[],
  pods: readonly V1Pod[],
  options: { allNodes: boolean },
): GpuNode[] {
  const gpus = (v: unknown): number => Number(v ?? 0) || 0;
  const podGpus = (p: V1Pod): number =>
    (p.spec?.containers ?? []).reduce(
      (n, c) =>
        n +
        gpus(c.resources?.limits?.["nvidia.com/gpu"] ?? c.resources?.requests?.["nvidia.com/gpu"]),
      0,
    );
  const byNode = new Map<string, GpuNode["tasks"]>();
  const allocated = new Map<string, number>();
  for (const p of pods) {
    const node = p.spec?.nodeName;
    const phase = p.status?.phase;
    if (!node || phase === "Succeeded" || phase === "Failed") continue;
    const n = podGpus(p);
    if (n === 0) continue;
    allocated.set(node, (allocated.get(node) ?? 0) + n);
    const labels = p.metadata?.labels ?? {};
    const uses = byNode.get(node) ?? [];
    uses.push({
      runId: labels[runLabel] ?? "",
      task: labels[taskLabel] ?? "",
      attempt: Number(labels[attemptLabel] ?? 0),
      pod: p.metadata?.name ?? "",
      gpus: n,
    });
    byNode.set(node, uses);
  }
  const out: GpuNode[] = [];
  for (const node of nodes) {
    const name = node.metadata?.name ?? "";
    const capacity = gpus(node.status?.capacity?.["nvidia.com/gpu"]);
    if (capacity === 0 && !options.allNodes) continue;
    const allocatable = gpus(node.status?.allocatable?.["nvidia.com/gpu"] ?? capacity);
    const used = allocated.get(name) ?? 0;
    out.push({
      name,
      capacity,
      allocatable,
      allocated: used,
      free: Math.max(0, allocatable - used),
      gpuType: node.metadata?.labels?.["nvidia.com/gpu.product"] ?? "",
      ready: (node.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
      unschedulable: node.spec?.unschedulable === true,
      tasks: (byNode.get(name) ?? []).sort((a, b) => a.pod.localeCompare(b.pod)),
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
