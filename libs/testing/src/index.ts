// @odin/testing: test infrastructure shared by Odin's packages — kube-sim (a Kubernetes API
// simulator) and a private NATS server per test suite.

/** Starts kube-sim, a Kubernetes API server simulator for @kubernetes/client-node. */
export { startKubeSim } from "./kube-sim/server.js";
/** A running kube-sim: URL, KubeConfig, scripts, faults, counters, external actions. */
export type { KubeSim } from "./kube-sim/server.js";
/** Options of `startKubeSim`. */
export type { KubeSimOptions } from "./kube-sim/server.js";
/** Counters returned by `sim.stats()`. */
export type { KubeSimStats } from "./kube-sim/server.js";
/** One request kube-sim answered (`sim.requests`). */
export type { RequestRecord } from "./kube-sim/server.js";
/** Options of `sim.failPod`. */
export type { FailPodOptions } from "./kube-sim/server.js";
/** What a real API server's schema validation says about a Pod, Job or training job object. */
export { apiServerSchemaProblems } from "./kube-sim/schemas.js";
/** Fault injection controls, the type of `sim.faults`. */
export { Faults } from "./kube-sim/faults.js";
/** Which requests a fault applies to. */
export type { FaultMatch } from "./kube-sim/faults.js";
/** Options of `sim.faults.failNext`. */
export type { FailNextOptions } from "./kube-sim/faults.js";
/** Options of `sim.faults.dropWatches`. */
export type { DropWatchesOptions } from "./kube-sim/faults.js";
/** Annotation (`kube-sim/script`) whose JSON value scripts a pod. */
export { SCRIPT_ANNOTATION } from "./kube-sim/scripts.js";
/** What a simulated pod does (also the JSON of the `kube-sim/script` annotation). */
export type { PodScript } from "./kube-sim/scripts.js";
/** A script plus the pods it applies to, for `sim.script(rule)`. */
export type { ScriptRule } from "./kube-sim/scripts.js";
/** A RegExp, or a string with `*` wildcards matched against a whole image or name. */
export type { TextPattern } from "./kube-sim/scripts.js";
/** Label with the training job's name on the pods of TFJob/PyTorchJob/MPIJob/ElasticJob. */
export { TRAINING_JOB_NAME_LABEL } from "./kube-sim/controllers.js";
/** Label with a training pod's replica type in lower case (`worker`, `master`, `launcher`). */
export { TRAINING_REPLICA_TYPE_LABEL } from "./kube-sim/controllers.js";
/** Label with a training pod's index within its replica type. */
export { TRAINING_REPLICA_INDEX_LABEL } from "./kube-sim/controllers.js";
/** Label naming the simulated operator that created a training pod. */
export { TRAINING_OPERATOR_LABEL } from "./kube-sim/controllers.js";
/** Label `master` on a training job's coordinating pod (Master, Chief or Launcher). */
export { TRAINING_JOB_ROLE_LABEL } from "./kube-sim/controllers.js";
/** Kind of a change passed to `sim.onChange` listeners. */
export type { ChangeType } from "./kube-sim/store.js";
/** JSON shape of an object kube-sim stores and returns. */
export type { KubeObject } from "./kube-sim/types.js";
/** JSON shape of an object's `metadata`. */
export type { ObjectMeta } from "./kube-sim/types.js";
/** Entry point of `odin kube-sim`: runs a simulator until SIGINT/SIGTERM. */
export { runKubeSimCli } from "./kube-sim/cli.js";
/** I/O hooks of `runKubeSimCli` (streams, abort signal, ready callback). */
export type { KubeSimCliIo } from "./kube-sim/cli.js";
/** Starts a private JetStream-enabled NATS server for a test suite. */
export { startNats } from "./nats.js";
/** Thrown by `startNats` when neither a container runtime nor nats-server is available. */
export { NatsUnavailableError } from "./nats.js";
/** A running test NATS server. */
export type { NatsServer } from "./nats.js";
/** Options of `startNats`. */
export type { StartNatsOptions } from "./nats.js";
/** Starts a JetStream cluster of local nats-server processes on loopback (failure tests). */
export { startNatsCluster } from "./nats.js";
/** A running test NATS cluster, and one of its nodes. */
export type { NatsCluster, NatsClusterNode } from "./nats.js";
