// Which launcher replica watches which of Odin's objects. Every object an attempt makes carries a
// shard label: a hash of its run, task and attempt into one of `shardCount` shards. The live
// launchers split the shards by rendezvous hashing (`Membership`), and each one's informers select
// only its own shards' objects, so a replica reads and decodes only the changes it acts on. An
// attempt belongs to its shard's launcher: it reports the attempt and saves its pods' logs.
import { fnv1a } from "@odin/events";
import { labelValue, managedByLabel, managedByValue, shardLabel } from "@odin/k8s-manifests";
import type { AttemptId } from "../attempt/core.js";

/** How many shards attempts are spread over (fixed: a launcher's share is a set of them). */
export const shardCount = 32;

/**
 * The shard of an attempt, from the values its labels hold (so an attempt read back from its
 * object's labels lands in the same shard as the launch that made it).
 */
export function shardOf(id: AttemptId): number {
  return fnv1a(`${labelValue(id.runId)}/${labelValue(id.task)}/${id.attempt}`) % shardCount;
}

/** The key a shard is assigned by among the live launchers. */
export function shardKey(shard: number): string {
  return `shard-${shard}`;
}

/** The label selector of Odin's objects in the given shards (at least one). */
export function shardSelector(shards: readonly number[]): string {
  return `${managedByLabel}=${managedByValue},${shardLabel} in (${shards.join(",")})`;
}

/** The label selector of Odin's objects made before they carried a shard label. */
export const unshardedSelector = `${managedByLabel}=${managedByValue},!${shardLabel}`;
