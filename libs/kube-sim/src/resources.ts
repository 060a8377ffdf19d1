// The resource types kube-sim serves, with everything needed to route, name and describe them.

/** Plural resource name of every type kube-sim serves. */
export type ResourceName =
  | "namespaces"
  | "nodes"
  | "pods"
  | "events"
  | "jobs"
  | "tfjobs"
  | "pytorchjobs"
  | "mpijobs"
  | "elasticjobs";

/** How the API server validates `metadata.name` of a type. */
export type NameRule = "dns1123-subdomain" | "dns1123-label" | "dns1035-label" | "job-name";

/** Static description of one resource type. */
export interface ResourceDef {
  readonly resource: ResourceName;
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly listKind: string;
  readonly namespaced: boolean;
  readonly nameRule: NameRule;
  readonly shortNames: readonly string[];
  /** Key under `spec` holding the replica specs, for training jobs. */
  readonly replicaSpecsKey?: string;
  /** Default `propagationPolicy` of a DELETE without one. */
  readonly defaultPropagation: "Orphan" | "Background";
}

/** `apiVersion` of a resource type, e.g. `v1`, `batch/v1`. */
export function apiVersionOf(def: ResourceDef): string {
  return def.group === "" ? def.version : `${def.group}/${def.version}`;
}

/** `pods`, `jobs.batch`, `tfjobs.kubeflow.org`: how error messages name a type. */
export function qualifiedResource(def: ResourceDef): string {
  return def.group === "" ? def.resource : `${def.resource}.${def.group}`;
}

const core = (
  resource: ResourceName,
  kind: string,
  namespaced: boolean,
  nameRule: NameRule,
  shortNames: string[],
): ResourceDef => ({
  resource,
  group: "",
  version: "v1",
  kind,
  listKind: `${kind}List`,
  namespaced,
  nameRule,
  shortNames,
  defaultPropagation: "Background",
});

const training = (
  resource: ResourceName,
  group: string,
  version: string,
  kind: string,
  replicaSpecsKey: string,
): ResourceDef => ({
  resource,
  group,
  version,
  kind,
  listKind: `${kind}List`,
  namespaced: true,
  // The Kubeflow operators' admission webhooks require DNS-1035 labels for job names.
  nameRule: "dns1035-label",
  shortNames: [],
  replicaSpecsKey,
  defaultPropagation: "Background",
});

/** Every resource type kube-sim serves. */
export const RESOURCES: readonly ResourceDef[] = [
  core("namespaces", "Namespace", false, "dns1123-label", ["ns"]),
  // Read-only here: kube-sim makes its nodes from its options (`gpuNodes`).
  core("nodes", "Node", false, "dns1123-subdomain", ["no"]),
  core("pods", "Pod", true, "dns1123-subdomain", ["po"]),
  core("events", "Event", true, "dns1123-subdomain", ["ev"]),
  {
    resource: "jobs",
    group: "batch",
    version: "v1",
    kind: "Job",
    listKind: "JobList",
    namespaced: true,
    nameRule: "job-name",
    shortNames: [],
    // batch/v1 keeps the legacy default: deleting a Job without a policy orphans its pods.
    defaultPropagation: "Orphan",
  },
  training("tfjobs", "kubeflow.org", "v1", "TFJob", "tfReplicaSpecs"),
  training("pytorchjobs", "kubeflow.org", "v1", "PyTorchJob", "pytorchReplicaSpecs"),
  training("mpijobs", "kubeflow.org", "v2beta1", "MPIJob", "mpiReplicaSpecs"),
  training("elasticjobs", "elastic.pytorch.org", "v1alpha1", "ElasticJob", "replicaSpecs"),
];

const byName = new Map<string, ResourceDef>();
const byPath = new Map<string, ResourceDef>();
for (const def of RESOURCES) {
  byName.set(def.resource, def);
  byName.set(def.kind.toLowerCase(), def);
  byPath.set(`${apiVersionOf(def)}/${def.resource}`, def);
}

/** Resource definition for a plural name or a kind (case-insensitive), or undefined. */
export function findResource(nameOrKind: string): ResourceDef | undefined {
  return byName.get(nameOrKind.toLowerCase());
}

/** Resource definition for a plural name or kind; throws for a type kube-sim does not serve. */
export function resourceDef(nameOrKind: string): ResourceDef {
  const def = findResource(nameOrKind);
  if (def === undefined) {
    throw new Error(
      `kube-sim does not serve "${nameOrKind}"; known: ${RESOURCES.map((r) => r.resource).join(", ")}`,
    );
  }
  return def;
}

/** Resource definition served at `<groupVersion>/<plural>`, e.g. `batch/v1/jobs`. */
export function resourceAt(groupVersion: string, plural: string): ResourceDef | undefined {
  return byPath.get(`${groupVersion}/${plural}`);
}

/** Distinct group versions, in a stable order, for discovery. */
export function groupVersions(): { group: string; version: string }[] {
  const seen = new Set<string>();
  const out: { group: string; version: string }[] = [];
  for (const def of RESOURCES) {
    const key = apiVersionOf(def);
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ group: def.group, version: def.version });
    }
  }
  return out;
}
