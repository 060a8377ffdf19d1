export {
  defaultManifestConfig,
  defaultMpiWorkerCommand,
  ManifestError,
  type LaunchSpec,
  type ManifestConfig,
} from "./config.js";
export {
  attemptLabel,
  cancelledAnnotation,
  commitAnnotation,
  labelValue,
  managedByLabel,
  managedByValue,
  odinLabels,
  legacyPendingTimeoutAnnotation,
  pendingTimeoutAnnotation,
  pipelineAnnotation,
  runLabel,
  selectorFor,
  shardLabel,
  taskIdAnnotation,
  taskLabel,
  type SelectorScope,
} from "./labels.js";
export {
  buildManifest,
  elasticJobContainerName,
  manifestName,
  mpiJobContainerName,
  pyTorchJobContainerName,
  tfJobContainerName,
} from "./manifest.js";
export {
  defaultSecretMode,
  gpuResource,
  initContainerResources,
  terminationMessagePolicy,
} from "./pod.js";
export {
  apiResources,
  type ApiResource,
  type ElasticJob,
  type Manifest,
  type ManifestBodies,
  type MPIJob,
  type PyTorchJob,
  type ReplicaSpec,
  type RunPolicy,
  type TFJob,
} from "./resources.js";
