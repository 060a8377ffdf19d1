// @odin/testing: test infrastructure shared by Odin's packages — a private NATS server per test
// suite, and kube-sim (re-exported from @odin/kube-sim, so tests need one import).

/** kube-sim, the Kubernetes API simulator (see @odin/kube-sim). */
export {
  startKubeSim,
  type KubeSim,
  type KubeSimOptions,
  type KubeSimStats,
  type RequestRecord,
  type FailPodOptions,
  apiServerSchemaProblems,
  Faults,
  type FaultMatch,
  type FailNextOptions,
  type DropWatchesOptions,
  SCRIPT_ANNOTATION,
  type PodScript,
  type ScriptRule,
  type TextPattern,
  TRAINING_JOB_NAME_LABEL,
  TRAINING_REPLICA_TYPE_LABEL,
  TRAINING_REPLICA_INDEX_LABEL,
  TRAINING_OPERATOR_LABEL,
  TRAINING_JOB_ROLE_LABEL,
  type ChangeType,
  type KubeObject,
  type ObjectMeta,
} from "@odin/kube-sim";
/** Starts a private JetStream-enabled NATS server for a test suite. */
export { startNats } from "./nats.js";
/** Thrown by `startNats` when neither a container runtime nor nats-server is available. */
export { NatsUnavailableError } from "./nats.js";
/** A running test NATS server. */
export type { NatsServer } from "./nats.js";
/** Options of `startNats`. */
export type { StartNatsOptions } from "./nats.js";
/** Starts a JetStream cluster of local nats-server processes on loopback (failure tests). */
export { freePorts, startNatsCluster } from "./nats.js";
/** A running test NATS cluster, and one of its nodes. */
export type { NatsCluster, NatsClusterNode } from "./nats.js";

/** A gRPC reflection client, as grpcurl uses. */
export { reflect, reflectedServices } from "./reflection.js";
