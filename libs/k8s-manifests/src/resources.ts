import type { V1Job, V1ObjectMeta, V1Pod, V1PodTemplateSpec } from "@kubernetes/client-node";
import type { ResourceType } from "@odin/pipeline-spec";

/** Where a kind lives in the Kubernetes API. */
export interface ApiResource {
  /** API group; `""` for the core group. */
  group: string;
  version: string;
  /** `group/version`, or just `version` for the core group. */
  apiVersion: string;
  kind: ResourceType;
  /** Lower-case plural used in URLs (`pods`, `tfjobs`). */
  plural: string;
}

function resource(group: string, version: string, kind: ResourceType, plural: string) {
  const apiVersion = group === "" ? version : `${group}/${version}`;
  return Object.freeze({ group, version, apiVersion, kind, plural });
}

/** The API resource of each task resource type (SPEC.md "Resource types and completion"). */
export const apiResources: Readonly<Record<ResourceType, ApiResource>> = Object.freeze({
  Pod: resource("", "v1", "Pod", "pods"),
  Job: resource("batch", "v1", "Job", "jobs"),
  TFJob: resource("kubeflow.org", "v1", "TFJob", "tfjobs"),
  PyTorchJob: resource("kubeflow.org", "v1", "PyTorchJob", "pytorchjobs"),
  MPIJob: resource("kubeflow.org", "v2beta1", "MPIJob", "mpijobs"),
  ElasticJob: resource("elastic.pytorch.org", "v1alpha1", "ElasticJob", "elasticjobs"),
});

/** One role of a training job: how many pods, how they restart, and their template. */
export interface ReplicaSpec {
  replicas: number;
  /** `Never` everywhere except ElasticJob workers (`ExitCode`, as in the original). */
  restartPolicy: "Never" | "ExitCode";
  template: V1PodTemplateSpec;
}

/** The part of the training operators' `runPolicy` Odin sets. */
export interface RunPolicy {
  activeDeadlineSeconds?: number;
  backoffLimit?: number;
}

/** A `kubeflow.org/v1` TFJob: `num_workers` workers. */
export interface TFJob {
  apiVersion: "kubeflow.org/v1";
  kind: "TFJob";
  metadata: V1ObjectMeta;
  spec: { runPolicy?: RunPolicy; tfReplicaSpecs: { Worker: ReplicaSpec } };
}

/** A `kubeflow.org/v1` PyTorchJob: one master and `num_workers` workers. */
export interface PyTorchJob {
  apiVersion: "kubeflow.org/v1";
  kind: "PyTorchJob";
  metadata: V1ObjectMeta;
  spec: {
    runPolicy?: RunPolicy;
    pytorchReplicaSpecs: { Master: ReplicaSpec; Worker: ReplicaSpec };
  };
}

/** A `kubeflow.org/v2beta1` MPIJob: one launcher and `num_workers` workers. */
export interface MPIJob {
  apiVersion: "kubeflow.org/v2beta1";
  kind: "MPIJob";
  metadata: V1ObjectMeta;
  spec: {
    slotsPerWorker: number;
    runPolicy: RunPolicy;
    mpiReplicaSpecs: { Launcher: ReplicaSpec; Worker: ReplicaSpec };
  };
}

/** An `elastic.pytorch.org/v1alpha1` ElasticJob: `num_workers` workers, min = max. */
export interface ElasticJob {
  apiVersion: "elastic.pytorch.org/v1alpha1";
  kind: "ElasticJob";
  metadata: V1ObjectMeta;
  spec: {
    rdzvEndpoint: string;
    minReplicas: number;
    maxReplicas: number;
    replicaSpecs: { Worker: ReplicaSpec };
  };
}

/** The object body for each resource type. */
export interface ManifestBodies {
  Pod: V1Pod;
  Job: V1Job;
  TFJob: TFJob;
  PyTorchJob: PyTorchJob;
  MPIJob: MPIJob;
  ElasticJob: ElasticJob;
}

/** One object to create: where it goes in the API, its name, and the full body. */
export type Manifest = {
  [K in ResourceType]: ApiResource & {
    kind: K;
    name: string;
    namespace: string;
    body: ManifestBodies[K];
  };
}[ResourceType];
