import type { Pipeline } from "@odin/pipeline-spec";
import {
  notifyToProto,
  PipelineRegistryServiceService,
  pipelineToProto,
  problemToProto,
  type pipelineregistry,
} from "@odin/proto";
import {
  InvalidArgumentError,
  NotFoundError,
  service,
  unaryHandler,
  type ServiceRegistration,
} from "@odin/service-kit";
import { validateFiles, type PipelineCatalog, type PipelineEntry } from "./catalog.js";

function checkPath(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, "");
  if (trimmed.split("/").some((s) => s === ".." || s === ".git") || path.startsWith("/")) {
    throw new InvalidArgumentError(
      `pipeline path "${path}" must be relative to the repository and stay inside it`,
    );
  }
  return trimmed === "" ? "." : trimmed;
}

/** A full commit id (40 or 64 hex digits), or empty for the newest; anything else is refused here. */
function checkCommit(commit: string): string | undefined {
  if (commit === "") return undefined;
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) {
    throw new InvalidArgumentError(
      `"${commit.length > 80 ? `${commit.slice(0, 80)}…` : commit}" is not a full commit id (40 hex digits) — leave it empty for the newest commit`,
    );
  }
  return commit;
}

/** File paths of a ValidatePipeline request stay inside the pipeline directory. */
function checkFilePaths(files: readonly { path: string }[]): void {
  for (const f of files) {
    const parts = f.path.split("/");
    if (
      f.path === "" ||
      f.path.startsWith("/") ||
      f.path.includes("\\") ||
      f.path.includes("\0") ||
      parts.some((p) => p === ".." || p === "." || p === "" || p === ".git")
    ) {
      throw new InvalidArgumentError(
        `file path "${f.path.slice(0, 200)}" must be relative to the pipeline directory and stay inside it (e.g. main.yml, conf/model.yml)`,
      );
    }
  }
}

/** The tasks of a pipeline a GetPipeline asked for (every task when it named none). */
function tasksOf(pipeline: Pipeline, names: readonly string[]): Pipeline {
  if (names.length === 0) return pipeline;
  const wanted = new Set(names);
  return { ...pipeline, tasks: pipeline.tasks.filter((t) => wanted.has(t.name)) };
}

// Each pipeline's graph answer, built once per catalog entry (a pipeline at a commit never
// changes): the web UI asks for it every time a large run is opened.
const graphs = new WeakMap<PipelineEntry, pipelineregistry.GetPipelineGraphResponse>();

function graphOf(commit: string, entry: PipelineEntry): pipelineregistry.GetPipelineGraphResponse {
  let answer = graphs.get(entry);
  if (answer) return answer;
  const graph = entry.valid ? entry.result.graph : undefined;
  answer = {
    commit,
    tasks: graph ? [...graph.names] : [],
    dependsCounts: graph ? graph.dependencies.map((d) => d.length) : [],
    depends: graph ? graph.dependencies.flat() : [],
    problems: entry.problems.map(problemToProto),
  };
  graphs.set(entry, answer);
  return answer;
}

/** PipelineRegistryService over a catalog: handlers validate, ask the catalog, map to the wire. */
export function pipelineRegistryService(catalog: PipelineCatalog): ServiceRegistration {
  return service(
    PipelineRegistryServiceService,
    {
      listPipelines: unaryHandler(async (req): Promise<pipelineregistry.ListPipelinesResponse> => {
        const snap = await catalog.snapshot(checkCommit(req.commit));
        const prefix = req.pathPrefix ? checkPath(req.pathPrefix) : "";
        const pipelines: pipelineregistry.PipelineSummary[] = [];
        for (const p of snap.pipelines.values()) {
          if (prefix && p.path !== prefix && !p.path.startsWith(`${prefix}/`)) continue;
          pipelines.push({
            path: p.path,
            name: p.name,
            taskCount: p.taskCount,
            valid: p.valid,
            problems: p.problems.map(problemToProto),
            schedules: (p.valid ? (p.result.pipeline?.schedules ?? []) : []).map((d) => ({
              ...d,
              parameters: d.parameters,
              notify: (d.notify ?? []).map(notifyToProto),
            })),
            triggers: p.valid ? (p.result.pipeline?.triggers ?? []) : [],
          });
        }
        return { commit: snap.commit, pipelines };
      }),
      getPipeline: unaryHandler(async (req): Promise<pipelineregistry.GetPipelineResponse> => {
        const path = checkPath(req.path);
        const { commit, entry, result } =
          req.parameters !== undefined
            ? await catalog.forRun(path, checkCommit(req.commit), req.parameters)
            : { ...(await catalog.pipeline(path, checkCommit(req.commit))), result: undefined };
        if (!entry) {
          throw new NotFoundError(
            `no pipeline "${path}" at commit ${commit.slice(0, 12)}: there is no ${path === "." ? "" : `${path}/`}main.yml — run "odin ls" to see the pipelines`,
          );
        }
        const read = result ?? entry.result;
        return {
          commit,
          pipeline:
            read.valid && read.pipeline
              ? pipelineToProto(tasksOf(read.pipeline, req.tasks), commit)
              : undefined,
          problems: read.problems.map(problemToProto),
          parameters: req.parameters !== undefined ? read.parameters : undefined,
        };
      }),
      getPipelineGraph: unaryHandler(
        async (req): Promise<pipelineregistry.GetPipelineGraphResponse> => {
          const path = checkPath(req.path);
          const { commit, entry } = await catalog.pipeline(path, checkCommit(req.commit));
          if (!entry) {
            throw new NotFoundError(
              `no pipeline "${path}" at commit ${commit.slice(0, 12)}: there is no ${path === "." ? "" : `${path}/`}main.yml — run "odin ls" to see the pipelines`,
            );
          }
          return graphOf(commit, entry);
        },
      ),
      validatePipeline: unaryHandler((req): pipelineregistry.ValidatePipelineResponse => {
        const path = checkPath(req.path);
        checkFilePaths(req.files);
        const result = validateFiles(path, req.files, req.parameters);
        return {
          valid: result.valid,
          pipeline:
            result.valid && result.pipeline ? pipelineToProto(result.pipeline, "") : undefined,
          problems: result.problems.map(problemToProto),
        };
      }),
    },
    {
      listPipelines: "viewer",
      getPipeline: "viewer",
      getPipelineGraph: "viewer",
      validatePipeline: "viewer",
    },
  );
}
