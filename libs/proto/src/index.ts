// Public entry of @odin/proto: the TypeScript generated from proto/ (ts-proto, grpc-js services).
// Each proto package is a namespace (message names repeat across packages); the service
// definitions, server interfaces and client constructors are also exported by name.
import { fileURLToPath } from "node:url";

/** odin.common.v1: Pipeline, Task, Problem, Run, TaskRun, File and their enums. */
export * as common from "./common.js";
/** odin.events.v1: TaskEvent, RunEvent and RepoSynced, the NATS JetStream payloads. */
export * as events from "./gen/odin/events/v1/events.js";
/** odin.reposync.v1: RepoSyncService's requests and responses. */
export * as reposync from "./gen/odin/reposync/v1/reposync.js";
/** odin.pipelineregistry.v1: PipelineRegistryService's requests and responses. */
export * as pipelineregistry from "./gen/odin/pipelineregistry/v1/pipelineregistry.js";
/** odin.dagscheduler.v1: DagSchedulerService's requests and responses. */
export * as dagscheduler from "./gen/odin/dagscheduler/v1/dagscheduler.js";
/** odin.k8slauncher.v1: K8sLauncherService's requests and responses. */
export * as k8slauncher from "./gen/odin/k8slauncher/v1/k8slauncher.js";

/** google.protobuf.Duration (task timeouts and backoffs); Timestamps are plain `Date`s. */
export { Duration } from "./gen/google/protobuf/duration.js";

/** RepoSyncService: its grpc-js definition (`server.addService`), handler interface and client. */
export {
  RepoSyncServiceService,
  type RepoSyncServiceServer,
  RepoSyncServiceClient,
} from "./gen/odin/reposync/v1/reposync.js";
/** PipelineRegistryService: its grpc-js definition, handler interface and client. */
export {
  PipelineRegistryServiceService,
  type PipelineRegistryServiceServer,
  PipelineRegistryServiceClient,
} from "./gen/odin/pipelineregistry/v1/pipelineregistry.js";
/** DagSchedulerService: its grpc-js definition, handler interface and client. */
export {
  DagSchedulerServiceService,
  type DagSchedulerServiceServer,
  DagSchedulerServiceClient,
} from "./gen/odin/dagscheduler/v1/dagscheduler.js";
/** K8sLauncherService: its grpc-js definition, handler interface and client. */
export {
  K8sLauncherServiceService,
  type K8sLauncherServiceServer,
  K8sLauncherServiceClient,
} from "./gen/odin/k8slauncher/v1/k8slauncher.js";

/**
 * Path of `descriptors.binpb`, the FileDescriptorSet of every .proto (with comments), built by
 * `npm run proto:gen` next to this package; gRPC server reflection serves it.
 */
export const descriptorSetPath: string = fileURLToPath(
  new URL("../descriptors.binpb", import.meta.url),
);

/** Conversions between the @odin/pipeline-spec domain model and the odin.common.v1 wire types. */
export {
  runStateFromProto,
  runStateToProto,
  taskStateFromProto,
  taskStateToProto,
  durationFromMs,
  durationToMs,
  notifyFromProto,
  notifyToProto,
  pipelineFromProto,
  pipelineToProto,
  problemFromProto,
  problemToProto,
  taskFromProto,
  taskToProto,
} from "./convert.js";
