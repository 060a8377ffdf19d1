// @odin/kube-sim: a Kubernetes API server simulator. @kubernetes/client-node talks to it as to a
// cluster, so tests exercise the production client code; `odin kube-sim` runs it by hand.

/** Starts kube-sim, a Kubernetes API server simulator for @kubernetes/client-node. */
export { startKubeSim } from "./server.js";
/** A running kube-sim: URL, KubeConfig, scripts, faults, counters, external actions. */
export type { KubeSim } from "./server.js";
/** Options of `startKubeSim`. */
export type { KubeSimOptions } from "./server.js";
/** Counters returned by `sim.stats()`. */
export type { KubeSimStats } from "./server.js";
/** One request kube-sim answered (`sim.requests`). */
export type { RequestRecord } from "./server.js";
/** Options of `sim.failPod`. */
export type { FailPodOptions } from "./server.js";
/** What a real API server's schema validation says about a Pod, Job or training job object. */
export { apiServerSchemaProblems } from "./schemas.js";
/** Fault injection controls, the type of `sim.faults`. */
export { Faults } from "./faults.js";
/** Which requests a fault applies to. */
export type { FaultMatch } from "./faults.js";
/** Options of `sim.faults.failNext`. */
export type { FailNextOptions } from "./faults.js";
/** Options of `sim.faults.dropWatches`. */
export type { DropWatchesOptions } from "./faults.js";
/** Annotation (`kube-sim/script`) whose JSON value scripts a pod. */
export { SCRIPT_ANNOTATION } from "./scripts.js";
/** What a simulated pod does (also the JSON of the `kube-sim/script` annotation). */
export type { PodScript } from "./scripts.js";
/** A script plus the pods it applies to, for `sim.script(rule)`. */
export type { ScriptRule } from "./scripts.js";
/** A RegExp, or a string with `*` wildcards matched against a whole image or name. */
export type { TextPattern } from "./scripts.js";
/** Label with the training job's name on the pods of TFJob/PyTorchJob/MPIJob/ElasticJob. */
export { TRAINING_JOB_NAME_LABEL } from "./controllers.js";
/** Label with a training pod's replica type in lower case (`worker`, `master`, `launcher`). */
export { TRAINING_REPLICA_TYPE_LABEL } from "./controllers.js";
/** Label with a training pod's index within its replica type. */
export { TRAINING_REPLICA_INDEX_LABEL } from "./controllers.js";
/** Label naming the simulated operator that created a training pod. */
export { TRAINING_OPERATOR_LABEL } from "./controllers.js";
/** Label `master` on a training job's coordinating pod (Master, Chief or Launcher). */
export { TRAINING_JOB_ROLE_LABEL } from "./controllers.js";
/** Kind of a change passed to `sim.onChange` listeners. */
export type { ChangeType } from "./store.js";
/** JSON shape of an object kube-sim stores and returns. */
export type { KubeObject } from "./types.js";
/** JSON shape of an object's `metadata`. */
export type { ObjectMeta } from "./types.js";
/** Entry point of `odin kube-sim`: runs a simulator until SIGINT/SIGTERM. */
export { runKubeSimCli } from "./cli.js";
/** I/O hooks of `runKubeSimCli` (streams, abort signal, ready callback). */
export type { KubeSimCliIo } from "./cli.js";
