// Every label and annotation key Odin puts on the objects it creates, in one place. Pipelines may
// not set keys under `odin.dev/` themselves (validation refuses them).

/** The prefix of every label and annotation key Odin owns. */
export const odinKeyPrefix = "odin.dev/";

/** Label marking every object Odin creates. */
export const managedByLabel = "app.kubernetes.io/managed-by";

/** Value of {@link managedByLabel} on Odin's objects. */
export const managedByValue = "odin";

/** Label holding the run id. */
export const runLabel = `${odinKeyPrefix}run`;

/** Label holding the task's short name. */
export const taskLabel = `${odinKeyPrefix}task`;

/** Label holding the attempt number (`"1"`, `"2"`, …). */
export const attemptLabel = `${odinKeyPrefix}attempt`;

/**
 * Label holding the attempt's shard (`"0"` … `"31"`, a hash of run, task and attempt): launcher
 * replicas split the shards, and each one's watches select only its own.
 */
export const shardLabel = `${odinKeyPrefix}shard`;

/** Annotation holding the full task id (`<run id>--<task name>`), which may exceed a label. */
export const taskIdAnnotation = `${odinKeyPrefix}task-id`;

/** Annotation holding the pipeline's path in the repository. */
export const pipelineAnnotation = `${odinKeyPrefix}pipeline`;

/** Annotation holding the commit the run is pinned to. */
export const commitAnnotation = `${odinKeyPrefix}commit`;

/** Annotation on every object and pod of an attempt whose task sets `pending_timeout`, in milliseconds. */
export const pendingTimeoutAnnotation = `${odinKeyPrefix}pending-timeout-ms`;

/**
 * The same annotation as earlier launchers wrote it: named in seconds but holding milliseconds.
 * Read (as milliseconds) from objects made before the rename, never written.
 */
export const legacyPendingTimeoutAnnotation = `${odinKeyPrefix}pending-timeout-seconds`;

/** Annotation Odin puts on an object just before deleting it (cancel, run deletion, stuck pod). */
export const cancelledAnnotation = `${odinKeyPrefix}deleted-by-odin`;
