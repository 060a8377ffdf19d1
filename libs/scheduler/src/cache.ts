// The task cache's key and records (docs/caching.md is the one description of the key). Pure: the
// scheduler computes keys from what it knows in memory, and asks the launcher for file digests,
// which are taken where the data is.
import { createHash } from "node:crypto";
import { posix } from "node:path";
import {
  parseReference,
  resolveReferences,
  substituteVariables,
  taskVariables,
  type Pipeline,
  type Task,
} from "@odin/pipeline-spec";
import type { RunRecord, TaskRecord } from "./records.js";

/** Version of the key's layout: bumping it makes every older entry a miss. */
export const cacheKeyVersion = 1;

/** How old a recorded result may be when a task sets no `cache_ttl` (30 days). */
export const defaultCacheTtlMs = 30 * 86_400_000;

/** One file or directory and its content digest (`sha256:…`, `dir-sha256:…`, `missing`). */
export interface CachedFile {
  /** The output's name, or the input as declared. */
  name: string;
  path: string;
  digest: string;
}

/** A recorded task result that later runs may reuse (`cache.<key>` in the run store). */
export interface CacheEntry {
  key: string;
  pipeline: string;
  task: string;
  runId: string;
  attempt: number;
  createTime: number;
  /** The image's digest (or `tag:<image>`, `local`): part of the key, kept to be shown. */
  image: string;
  /** The files named in `inputs`, as they were when the attempt was launched. */
  inputs: CachedFile[];
  /** The files named in `outputs`, as they were when the attempt ended. */
  outputs: CachedFile[];
  /** What the task reported (its termination message or outputs.json). */
  outputsJson?: string;
  /** The key without the upstream results (see {@link cacheKey}). */
  partial: string;
  /** Digest of the reported outputs and output files: what dependents' keys include. */
  resultDigest: string;
  /** How many times a later run reused it. */
  hits?: number;
}

/** The store key of a cache entry. */
export const cacheEntryKey = (key: string): string => `cache.${key}`;
/** The store key remembering the digest an image (tag) last ran as. */
export const imageKey = (image: string): string => `images.${sha256(image).slice(0, 40)}`;

/** What `images.<hash>` holds. */
export interface ImageRecord {
  image: string;
  digest: string;
  time: number;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** True when results of this task are looked up and recorded: caching on, and outputs declared. */
export function isCacheable(task: Task): boolean {
  return task.cache !== false && Object.keys(task.outputs).length > 0;
}

/** The digest part of an image reference pinned by digest (`repo@sha256:…`), if it is one. */
export function pinnedDigest(image: string): string | undefined {
  return /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1];
}

/**
 * What stands for the image in the key: its pinned digest, else the digest the cluster last ran
 * for it, else — only when the task opts in with `cache_image_tag` — the tag itself; undefined
 * when none (then there is no hit, and no entry).
 */
export function imageIdentity(task: Task, knownDigest: string | undefined): string | undefined {
  const pinned = pinnedDigest(task.image);
  if (pinned) return pinned;
  if (knownDigest) return knownDigest;
  return task.cacheImageTag ? `tag:${task.image}` : undefined;
}

/** Variables that name the run itself: kept as their names in the key, so runs can share results. */
const runVariables = ["PIPE_ID", "RUN_PATH", "TASK_ID", "TASK_PATH", "TASK_IDS"] as const;

function variablesOf(run: RunRecord, task: Task): Record<string, string> {
  // TASK_IDS (every task's id) is left out: it is one of the run variables kept by name in the
  // key, and computing it per task would make a run's lookups quadratic in its size.
  return taskVariables(
    {
      rootPath: run.rootPath,
      dataPath: run.dataPath,
      pipelinePath: run.pipeline,
      ...(run.workPath ? { workPath: run.workPath } : {}),
      runId: run.id,
      taskNames: [],
    },
    task.name,
  );
}

/** A declared input that is a path (not a `^task.field` reference, which the upstream part covers). */
function isPathInput(input: string): boolean {
  return parseReference(input) === undefined;
}

/**
 * The absolute paths of a task's path inputs and of its outputs in this run: variables
 * substituted; a relative path is under the pipeline's directory (`WORK_PATH`).
 */
export function taskFilePaths(
  run: RunRecord,
  pipeline: Pipeline,
  task: Task,
): { inputs: { name: string; path: string }[]; outputs: { name: string; path: string }[] } {
  const v = variablesOf(run, task);
  const abs = (p: string): string => {
    const s = substituteVariables(p, v);
    return posix.normalize(posix.isAbsolute(s) ? s : posix.join(v.WORK_PATH!, s));
  };
  return {
    inputs: task.inputs.filter(isPathInput).map((name) => ({ name, path: abs(name) })),
    outputs: Object.entries(task.outputs)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, path]) => ({ name, path: abs(path) })),
  };
}

/**
 * The result digest of a task that succeeded: what it reported and the digest of each declared
 * output. Dependents' keys include it.
 */
export function resultDigestOf(outputsJson: string | undefined, outputs: CachedFile[]): string {
  return sha256(
    JSON.stringify({
      outputsJson: outputsJson ?? "",
      outputs: outputs.map((o) => [o.name, o.digest]),
    }),
  );
}

/**
 * The result digest of an upstream task as its dependents' keys see it: recorded on its task
 * record; for a task without declared outputs, its reported outputs alone. Undefined while an
 * upstream's files have not been hashed (then a dependent cannot hit, and records no entry).
 */
export function upstreamResult(upstream: Task, record: TaskRecord | undefined): string | undefined {
  if (!record || record.state !== "SUCCEEDED") return undefined;
  if (record.resultDigest) return record.resultDigest;
  if (Object.keys(upstream.outputs).length === 0) return resultDigestOf(record.outputsJson, []);
  return undefined;
}

/**
 * The cache key of a task in a run (hex SHA-256): `partial` covers everything but the upstream
 * tasks' result digests, `key` adds them (unset while one is not hashed yet). Undefined when it
 * cannot be known at all (no image identity, a reference that does not resolve). Input file
 * contents are not in it: an entry keeps them, and a hit compares them (hashing only then).
 */
export function cacheKey(input: {
  run: RunRecord;
  pipeline: Pipeline;
  task: Task;
  image: string | undefined;
  /** Each upstream task's record in this run. */
  recordOf: (task: string) => TaskRecord | undefined;
  /** A task of the pipeline by name (default: a search of `pipeline.tasks`). */
  taskOf?: (task: string) => Task | undefined;
}): { partial: string; key?: string } | undefined {
  const { run, pipeline, task, image, recordOf } = input;
  if (image === undefined) return undefined;
  const v = variablesOf(run, task);
  for (const name of runVariables) v[name] = `\${${name}}`;
  // A rendered WORK_PATH is the run's own directory: the key names it by its content instead.
  if (run.workPath && run.workDigest) v.WORK_PATH = `\${WORK_PATH}`;
  const sub = (s: string): string => substituteVariables(s, v);
  const upstream: [string, string][] = [];
  for (const dep of task.depends) {
    const spec = input.taskOf ? input.taskOf(dep) : pipeline.tasks.find((t) => t.name === dep);
    if (!spec) return undefined;
    const result = upstreamResult(spec, recordOf(dep));
    if (result !== undefined) upstream.push([dep, result]);
  }
  let args: string[];
  try {
    args = task.args.map((a) => resolveReferences(sub(a), (t) => recordOf(t)?.outputsJson));
  } catch {
    return undefined;
  }
  const sorted = (m: Readonly<Record<string, string>>): [string, string][] =>
    Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const partialMaterial = {
    v: cacheKeyVersion,
    pipeline: run.pipeline,
    task: task.name,
    image,
    command: task.command.map(sub),
    args,
    env: sorted(task.env).map(([k, value]) => [k, sub(value)]),
    resourceType: task.resourceType,
    numWorkers: task.numWorkers,
    numGpus: task.numGpus,
    mounts: task.mounts.map((m) => [m.name, m.claim ?? "", m.path]),
    volumes: task.ephemeralVolumes.map((m) => [m.name, m.medium ?? ""]),
    secrets: task.secrets.map((s) => [s.name, s.path, s.subPath ?? ""]),
    configMaps: task.configMaps.map((c) => [c.name, c.path, c.subPath ?? ""]),
    inputs: task.inputs.map(sub),
    outputs: sorted(task.outputs).map(([k, p]) => [k, sub(p)]),
    upstream: task.depends,
    ...(run.workPath && run.workDigest ? { work: run.workDigest } : {}),
  };
  const partial = sha256(JSON.stringify(partialMaterial));
  if (upstream.length < task.depends.length) return { partial };
  const sortedUpstream = upstream.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { partial, key: sha256(JSON.stringify({ partial, upstream: sortedUpstream })) };
}
