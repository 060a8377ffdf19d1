// Helpers for the *.test.ts files: where fixtures live, and how a caller turns a pipeline task
// into a LaunchSpec. Paths are computed from this module's URL, so the tests run the same from
// src/ and dist/, in any checkout where shared/ sits beside the repository.
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import {
  loadPipeline,
  substituteVariables,
  taskVariables,
  type Pipeline,
  type Task,
} from "@odin/pipeline-spec";
import type { LaunchSpec, ManifestConfig } from "./config.js";

/** The package root (`libs/k8s-manifests/`), whether this runs from src/ or dist/. */
export const packageRoot = new URL("../", import.meta.url);

/** The conformance corpus: `shared/conformance/`, a sibling of the repository checkout. */
export const conformanceRoot = new URL("../../../shared/conformance/", packageRoot);

/** Reads a file under the package's `testdata/`. */
export function readTestdata(relative: string): string {
  return readFileSync(new URL(`testdata/${relative}`, packageRoot), "utf8");
}

/** Reads a file of the conformance corpus. */
export function readConformance(relative: string): string {
  return readFileSync(new URL(relative, conformanceRoot), "utf8");
}

/** Loads a pipeline that must be valid with no problems at all. */
export function loadValid(text: string, path: string): Pipeline {
  const result = loadPipeline(text, { file: "main.yml", path });
  // The one warning a fixture may earn on purpose: setting an id Odin sets itself (to show it wins).
  const unexpected = result.problems.filter(
    (p) => !/^env\.ODIN_(TASK_ID|RUN_ID|ATTEMPT) is set by Odin/.test(p.message),
  );
  assert.deepEqual(unexpected, [], "expected no problems");
  assert.ok(result.valid && result.pipeline);
  return result.pipeline;
}

/** Where a run's paths are, as task pods see them. */
export interface RunPaths {
  rootPath: string;
  dataPath?: string;
}

/**
 * What the scheduler hands the launcher for one task: variables substituted in `command`, `args`
 * and `env` values, and the task's `TASK_PATH`. `overrides` replaces variable values (the
 * original's tests passed placeholder paths that the normal formulas cannot produce).
 */
export function launchSpec(
  pipeline: Pipeline,
  taskName: string,
  run: RunPaths & { runId: string; attempt?: number; commit?: string },
  overrides: Readonly<Record<string, string>> = {},
): LaunchSpec {
  const task = pipeline.tasks.find((t) => t.name === taskName);
  assert.ok(task, `task ${taskName} not found`);
  const values = {
    ...taskVariables(
      {
        rootPath: run.rootPath,
        dataPath: run.dataPath,
        pipelinePath: pipeline.path,
        runId: run.runId,
        taskNames: pipeline.tasks.map((t) => t.name),
      },
      taskName,
    ),
    ...overrides,
  };
  const sub = (s: string) => substituteVariables(s, values);
  const substituted: Task = {
    ...task,
    command: task.command.map(sub),
    args: task.args.map(sub),
    env: Object.fromEntries(Object.entries(task.env).map(([k, v]) => [k, sub(v)])),
  };
  return {
    runId: run.runId,
    pipeline: pipeline.path,
    commit: run.commit ?? "",
    task: substituted,
    attempt: run.attempt ?? 1,
    paths: {
      rootPath: values.ROOT_PATH,
      workPath: values.WORK_PATH,
      dataPath: values.DATA_PATH,
      runPath: values.RUN_PATH,
      taskPath: values.TASK_PATH,
    },
  };
}

/** A minimal valid task for property tests, with the given fields replaced. */
export function makeTask(fields: Partial<Task> & Pick<Task, "name">): Task {
  return {
    image: "busybox:1.36",
    command: ["true"],
    args: [],
    depends: [],
    mounts: [],
    ephemeralVolumes: [],
    secrets: [],
    configMaps: [],
    numGpus: 0,
    pullPolicy: "IfNotPresent",
    nodeSelector: {},
    resourceType: "Pod",
    numWorkers: 1,
    inputs: [],
    outputs: {},
    env: {},
    tolerations: [],
    labels: {},
    annotations: {},
    retries: 0,
    retryBackoffMs: 10_000,
    extra: {},
    ...fields,
  };
}

/** The launcher configuration of the golden files. */
export const goldenConfig: ManifestConfig = {
  namespace: "ml-jobs",
  imagePullSecrets: ["regcred"],
  serviceAccount: "odin-task",
  initImage: "busybox:1.36",
  elasticRdzvEndpoint: "etcd-service.elastic-job.svc:2379",
  extraLabels: { team: "nlp" },
  env: { ODIN_CRED: "/etc/odind/odin-cred.yml" },
};
