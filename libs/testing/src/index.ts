// @odin/testing: test infrastructure shared by Odin's packages — kube-sim (a Kubernetes API
// simulator) and a private NATS server per test suite.

/** Starts kube-sim, a Kubernetes API server simulator for @kubernetes/client-node. */
export { startKubeSim } from "./kube-sim/server.js";
/** Options, handle, counters and external-action options of a running kube-sim. */
export type {
  FailPodOptions,
  KubeSim,
  KubeSimOptions,
  KubeSimStats,
  RequestRecord,
} from "./kube-sim/server.js";
/** Fault injection controls (`sim.faults`) and their options. */
export { Faults } from "./kube-sim/faults.js";
/** Options of the fault injection calls. */
export type { DropWatchesOptions, FailNextOptions, FaultMatch } from "./kube-sim/faults.js";
/** Annotation (`kube-sim/script`) whose JSON value scripts a pod. */
export { SCRIPT_ANNOTATION } from "./kube-sim/scripts.js";
/** What a simulated pod does, and a rule matching pods to such a script. */
export type { PodScript, ScriptRule, TextPattern } from "./kube-sim/scripts.js";
/** Labels the simulated training operators put on the pods they create. */
export {
  TRAINING_JOB_NAME_LABEL,
  TRAINING_JOB_ROLE_LABEL,
  TRAINING_OPERATOR_LABEL,
  TRAINING_REPLICA_INDEX_LABEL,
  TRAINING_REPLICA_TYPE_LABEL,
} from "./kube-sim/controllers.js";
/** JSON shape of objects kube-sim stores and returns. */
export type { KubeObject, ObjectMeta } from "./kube-sim/types.js";
/** Entry point of `odin kube-sim`: runs a simulator until SIGINT/SIGTERM. */
export { runKubeSimCli } from "./kube-sim/cli.js";
/** I/O hooks of `runKubeSimCli`. */
export type { KubeSimCliIo } from "./kube-sim/cli.js";
/** Starts a private JetStream-enabled NATS server for a test suite. */
export { NatsUnavailableError, startNats } from "./nats.js";
/** A running test NATS server and the options of `startNats`. */
export type { NatsServer, StartNatsOptions } from "./nats.js";
