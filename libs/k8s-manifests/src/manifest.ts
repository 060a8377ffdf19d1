import type { V1ObjectMeta, V1PodSpec, V1PodTemplateSpec } from "@kubernetes/client-node";
import {
  isDnsLabel,
  maxNameLength,
  multiWorkerTypes,
  objectName,
  taskId,
  toDnsLabel,
  type Task,
} from "@odin/pipeline-spec";
import {
  defaultMpiWorkerCommand,
  ManifestError,
  type LaunchSpec,
  type ManifestConfig,
} from "./config.js";
import { commitAnnotation, odinLabels, pipelineAnnotation, taskIdAnnotation } from "./labels.js";
import { TaskPods } from "./pod.js";
import { apiResources, type Manifest, type ReplicaSpec } from "./resources.js";

/** Container name the training operator requires in TFJob pods. */
export const tfJobContainerName = "tensorflow";
/** Container name the training operator requires in PyTorchJob pods. */
export const pyTorchJobContainerName = "pytorch";
/** Container name of MPIJob pods (the original's). */
export const mpiJobContainerName = "mpi";
/** Container name of ElasticJob pods (the original's). */
export const elasticJobContainerName = "pytorch-elasticjob";

/**
 * Longest suffix a training operator appends to the job name for the pods and services it
 * creates: `-launcher`, `-master-0`, or `-worker-<num_workers - 1>`.
 */
function operatorSuffixLength(numWorkers: number): number {
  return Math.max(
    "-launcher".length,
    "-worker-".length + String(Math.max(0, numWorkers - 1)).length,
  );
}

/**
 * The name of a task attempt's object. Pods and Jobs use `objectName` of pipeline-spec as is (the
 * task id when it fits). Training jobs need more: the operators reject names that are not
 * DNS-1035 labels (a leading digit is refused) and name their pods and services
 * `<job>-worker-<i>`, which must still be a 63-character label. So for those, a name starting
 * with a digit gets the prefix `odin-`, and a name too long to leave room for the suffix is
 * shortened the same deterministic way (readable prefix + hash). The same run, task and attempt
 * always give the same name.
 */
export function manifestName(
  runId: string,
  task: Pick<Task, "name" | "resourceType" | "numWorkers">,
  attempt: number,
): string {
  const name = objectName(runId, task.name, attempt);
  if (!multiWorkerTypes.has(task.resourceType)) return name;
  const max = maxNameLength - operatorSuffixLength(task.numWorkers);
  return toDnsLabel(/^[a-z]/.test(name) ? name : `odin-${name}`, max);
}

function checkLaunch(spec: LaunchSpec, config: ManifestConfig): void {
  if (!Number.isInteger(spec.attempt) || spec.attempt < 1) {
    throw new ManifestError(`attempt must be a whole number from 1, not ${spec.attempt}`);
  }
  if (!isDnsLabel(config.namespace)) {
    throw new ManifestError(
      `namespace "${config.namespace}" is not a valid Kubernetes namespace name`,
    );
  }
  const { task } = spec;
  if (
    multiWorkerTypes.has(task.resourceType) &&
    (!Number.isInteger(task.numWorkers) || task.numWorkers < 1)
  ) {
    throw new ManifestError(
      `task ${task.name}: num_workers must be at least 1 for ${task.resourceType}, not ${task.numWorkers}`,
    );
  }
  if (task.resourceType === "ElasticJob" && !config.elasticRdzvEndpoint) {
    throw new ManifestError(
      `task ${task.name} is an ElasticJob, but no rendezvous endpoint is configured — set elasticRdzvEndpoint (host:port of the etcd server)`,
    );
  }
}

/**
 * Builds the Kubernetes object for one attempt of one task: a Pod, a Job, or a training job,
 * with every task field mapped (see the package README for the mapping and what differs from
 * the original Odin). Pure: the same launch and configuration always give the same object.
 * Throws `ManifestError` when the launch cannot make a valid object.
 */
export function buildManifest(spec: LaunchSpec, config: ManifestConfig): Manifest {
  checkLaunch(spec, config);
  const { task, runId, attempt } = spec;
  const name = manifestName(runId, task, attempt);
  const { namespace } = config;
  const labels: Record<string, string> = {
    ...config.extraLabels,
    ...task.labels,
    ...odinLabels({ runId, task: task.name, attempt }),
  };
  const annotations: Record<string, string> = {
    ...task.annotations,
    [taskIdAnnotation]: taskId(runId, task.name),
    [pipelineAnnotation]: spec.pipeline,
  };
  if (spec.commit) annotations[commitAnnotation] = spec.commit;
  const metadata = (): V1ObjectMeta => ({
    name,
    namespace,
    labels: { ...labels },
    annotations: { ...annotations },
  });
  const template = (podSpec: V1PodSpec): V1PodTemplateSpec => ({
    metadata: { labels: { ...labels }, annotations: { ...annotations } },
    spec: podSpec,
  });
  const replica = (
    replicas: number,
    restartPolicy: ReplicaSpec["restartPolicy"],
    podSpec: V1PodSpec,
  ): ReplicaSpec => ({
    replicas,
    restartPolicy,
    template: template(podSpec),
  });

  const pods = new TaskPods(spec, config);
  const workers = task.numWorkers;
  const gpus = task.numGpus;

  switch (task.resourceType) {
    case "Pod": {
      const podSpec = pods.podSpec({ containerName: toDnsLabel(task.name), gpus });
      podSpec.restartPolicy = "Never";
      return {
        ...apiResources.Pod,
        kind: "Pod",
        name,
        namespace,
        body: { apiVersion: "v1", kind: "Pod", metadata: metadata(), spec: podSpec },
      };
    }
    case "Job": {
      // The scheduler does retries, so the Job must not: backoffLimit 0, one pod. (Timeouts are
      // the scheduler's too: it stops the attempt and records FAILED/DeadlineExceeded.)
      const podSpec = pods.podSpec({ containerName: toDnsLabel(task.name), gpus });
      podSpec.restartPolicy = "Never";
      const jobSpec: NonNullable<Extract<Manifest, { kind: "Job" }>["body"]["spec"]> = {
        backoffLimit: 0,
        template: template(podSpec),
      };
      return {
        ...apiResources.Job,
        kind: "Job",
        name,
        namespace,
        body: { apiVersion: "batch/v1", kind: "Job", metadata: metadata(), spec: jobSpec },
      };
    }
    case "TFJob": {
      const worker = pods.podSpec({ containerName: tfJobContainerName, gpus });
      return {
        ...apiResources.TFJob,
        kind: "TFJob",
        name,
        namespace,
        body: {
          apiVersion: "kubeflow.org/v1",
          kind: "TFJob",
          metadata: metadata(),
          spec: {
            tfReplicaSpecs: { Worker: replica(workers, "Never", worker) },
          },
        },
      };
    }
    case "PyTorchJob": {
      // The master is rank 0 of the training, so it gets the same GPUs as each worker.
      const role = { containerName: pyTorchJobContainerName, gpus };
      return {
        ...apiResources.PyTorchJob,
        kind: "PyTorchJob",
        name,
        namespace,
        body: {
          apiVersion: "kubeflow.org/v1",
          kind: "PyTorchJob",
          metadata: metadata(),
          spec: {
            pytorchReplicaSpecs: {
              Master: replica(1, "Never", pods.podSpec(role)),
              Worker: replica(workers, "Never", pods.podSpec(role)),
            },
          },
        },
      };
    }
    case "MPIJob": {
      // The launcher runs the task's command (mpirun …) and computes nothing itself, so it gets
      // no GPUs; each worker offers one MPI slot per GPU. The launcher is a batch Job in
      // mpi-operator v2, which would retry it 6 times unless backoffLimit says otherwise.
      const launcher = pods.podSpec({ containerName: mpiJobContainerName, gpus: 0 });
      const worker = pods.podSpec({
        containerName: mpiJobContainerName,
        gpus,
        command: config.mpiWorkerCommand ?? defaultMpiWorkerCommand,
      });
      return {
        ...apiResources.MPIJob,
        kind: "MPIJob",
        name,
        namespace,
        body: {
          apiVersion: "kubeflow.org/v2beta1",
          kind: "MPIJob",
          metadata: metadata(),
          spec: {
            slotsPerWorker: Math.max(1, gpus),
            runPolicy: { backoffLimit: 0 },
            mpiReplicaSpecs: {
              Launcher: replica(1, "Never", launcher),
              Worker: replica(workers, "Never", worker),
            },
          },
        },
      };
    }
    case "ElasticJob": {
      const worker = pods.podSpec({ containerName: elasticJobContainerName, gpus });
      return {
        ...apiResources.ElasticJob,
        kind: "ElasticJob",
        name,
        namespace,
        body: {
          apiVersion: "elastic.pytorch.org/v1alpha1",
          kind: "ElasticJob",
          metadata: metadata(),
          spec: {
            rdzvEndpoint: config.elasticRdzvEndpoint!,
            minReplicas: workers,
            maxReplicas: workers,
            replicaSpecs: { Worker: replica(workers, "ExitCode", worker) },
          },
        },
      };
    }
  }
}
