// The scheduler's ports over gRPC: pipeline-registry, repo-sync and k8s-launcher clients.
import {
  taskId,
  type CatchupPolicy,
  type ConcurrencyPolicy,
  type LaunchSpec,
  type ParameterValue,
  type TriggerPolicy,
} from "@odin/pipeline-spec";
import {
  notifyFromProto,
  pipelineFromProto,
  problemFromProto,
  taskToProto,
  type K8sLauncherServiceClient,
  type PipelineRegistryServiceClient,
  type RepoSyncServiceClient,
} from "@odin/proto";
import { unary } from "@odin/service-kit";
import type {
  CheckoutRequest,
  CheckoutSource,
  CommitSource,
  DeclaredScheduleSource,
  DeclaredTriggerSource,
  LauncherPort,
  PipelineSource,
  RunCheckout,
} from "./ports.js";

/** Pipelines from pipeline-registry, remembered per (path, commit) — a commit's pipeline never changes. */
export class RegistryPipelineSource
  implements PipelineSource, DeclaredScheduleSource, DeclaredTriggerSource
{
  private readonly cache = new Map<string, Awaited<ReturnType<PipelineSource["getPipeline"]>>>();
  constructor(private readonly client: PipelineRegistryServiceClient) {}

  async getPipeline(
    path: string,
    commit: string | undefined,
    parameters: Readonly<Record<string, unknown>>,
  ): ReturnType<PipelineSource["getPipeline"]> {
    const values = JSON.stringify(Object.entries(parameters).sort());
    const cached = commit ? this.cache.get(`${commit}:${path}:${values}`) : undefined;
    if (cached) return cached;
    const res = await unary(
      this.client,
      "getPipeline",
      { path, commit: commit ?? "", tasks: [], parameters },
      { deadlineMs: 120_000 },
    );
    const result = {
      commit: res.commit,
      pipeline: res.pipeline ? pipelineFromProto(res.pipeline) : undefined,
      problems: res.problems.map(problemFromProto),
      parameters: (res.parameters ?? {}) as Record<string, ParameterValue>,
    };
    if (result.pipeline) {
      this.cache.set(`${res.commit}:${path}:${values}`, result);
      if (this.cache.size > 64) this.cache.delete(this.cache.keys().next().value!);
    }
    return result;
  }

  async declaredSchedules(
    commit?: string,
  ): ReturnType<DeclaredScheduleSource["declaredSchedules"]> {
    const res = await unary(
      this.client,
      "listPipelines",
      { commit: commit ?? "", pathPrefix: "" },
      { deadlineMs: 120_000 },
    );
    return res.pipelines.map((p) => ({
      pipeline: p.path,
      pipelineName: p.name,
      valid: p.valid,
      schedules: p.schedules.map((d) => ({
        name: d.name,
        cron: d.cron,
        timezone: d.timezone,
        parameters: d.parameters ?? {},
        catchup: d.catchup as CatchupPolicy,
        concurrency: d.concurrency as ConcurrencyPolicy,
        ...(d.notify.length > 0 ? { notify: d.notify.map(notifyFromProto) } : {}),
      })),
    }));
  }

  async declaredTriggers(commit?: string): ReturnType<DeclaredTriggerSource["declaredTriggers"]> {
    const res = await unary(
      this.client,
      "listPipelines",
      { commit: commit ?? "", pathPrefix: "" },
      { deadlineMs: 120_000 },
    );
    return res.pipelines
      .filter((p) => p.valid)
      .map((p) => ({
        pipeline: p.path,
        pipelineName: p.name,
        triggers: p.triggers.map((t) => ({
          name: t.name,
          paths: t.paths,
          policy: t.policy as TriggerPolicy,
          parameters: t.parameters ?? {},
        })),
      }));
  }
}

/** The commits a sync brought, from repo-sync. */
export class RepoSyncCommits implements CommitSource {
  constructor(private readonly client: RepoSyncServiceClient) {}

  async listCommits(
    since: string,
    until: string | undefined,
    max: number,
  ): ReturnType<CommitSource["listCommits"]> {
    const res = await unary(
      this.client,
      "listCommits",
      { since, until: until ?? "", maxCommits: max },
      { deadlineMs: 120_000 },
    );
    return {
      until: res.until,
      commits: res.commits.map((c) => ({
        sha: c.sha,
        author: { name: c.authorName, email: c.authorEmail },
        authorTime: c.authorTime ?? new Date(0),
        subject: c.subject,
        changedPaths: c.changedPaths,
      })),
      truncated: res.truncated,
      rewritten: res.rewritten,
      sinceUnknown: res.sinceUnknown,
    };
  }
}

/** Run-pinned checkouts from repo-sync. */
export class RepoSyncCheckouts implements CheckoutSource {
  constructor(private readonly client: RepoSyncServiceClient) {}

  async acquire(commit: string, holder: string, request?: CheckoutRequest): Promise<RunCheckout> {
    const res = await unary(
      this.client,
      "acquireCheckout",
      {
        commit,
        holder,
        pipeline: request?.pipeline ?? "",
        context: request ? { ...request.parameters } : undefined,
        attempt: request?.attempt ?? 0,
      },
      { deadlineMs: 120_000 },
    );
    const checkout: RunCheckout = { commit: res.commit, path: res.checkoutPath };
    if (res.workPath) {
      checkout.workPath = res.workPath;
      checkout.workDigest = res.workDigest;
    }
    return checkout;
  }

  async release(commit: string, holder: string, attempt = 0): Promise<void> {
    await unary(this.client, "releaseCheckout", { commit, holder, attempt });
  }
}

/** k8s-launcher over gRPC. */
export class GrpcLauncher implements LauncherPort {
  constructor(private readonly client: K8sLauncherServiceClient) {}

  async launch(r: LaunchSpec): Promise<{ objectName: string }> {
    const res = await unary(this.client, "launchTask", {
      runId: r.runId,
      pipeline: r.pipeline,
      commit: r.commit,
      task: taskToProto(r.task),
      taskId: taskId(r.runId, r.task.name),
      attempt: r.attempt,
      paths: r.paths,
    });
    return { objectName: res.objectName };
  }

  async cancel(runId: string, task: string, attempt?: number): Promise<void> {
    await unary(this.client, "cancelTask", { runId, task, attempt: attempt ?? 0 });
  }

  async deleteRun(
    runId: string,
    purgeData: boolean,
  ): Promise<{ deleted: number; dataPurged: boolean }> {
    const res = await unary(this.client, "deleteRunObjects", { runId, purgeData });
    return { deleted: res.deletedObjects, dataPurged: res.dataPurged };
  }

  async hashFiles(
    paths: readonly string[],
    links: readonly { target: string; path: string }[] = [],
  ): Promise<string[]> {
    const res = await unary(
      this.client,
      "hashFiles",
      { paths: [...paths], links: links.map((l) => ({ ...l })) },
      // Hashing large inputs or outputs takes as long as reading them.
      { deadlineMs: 3_600_000 },
    );
    return res.digests;
  }
}
