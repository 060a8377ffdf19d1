// In-process adapters: the ports of the registry and the scheduler served by the libraries
// themselves instead of gRPC clients (embedded mode runs every service in one process).
import type { FileSource, ListedFile, PipelineCatalog } from "@odin/registry";
import type { PipelineRepository } from "@odin/repository";
import type {
  CheckoutRequest,
  CheckoutSource,
  CommitSource,
  DeclaredScheduleSource,
  DeclaredTriggerSource,
  PipelineSource,
  RunCheckout,
} from "@odin/scheduler";
import { NotFoundError } from "@odin/service-kit";

/** The registry's file source over the repository in the same process. */
export class RepositoryFiles implements FileSource {
  /** `syncOnRead`: a local directory changes under our feet, so asking for its newest commit syncs first. */
  constructor(
    private readonly repo: PipelineRepository,
    private readonly syncOnRead = false,
  ) {}
  async currentCommit(): Promise<string> {
    if (this.syncOnRead) return (await this.repo.sync()).commit;
    return this.repo.currentCommit();
  }
  async listFiles(commit?: string): Promise<{ commit: string; files: ListedFile[] }> {
    return this.repo.listFiles(commit);
  }
  async readFiles(
    commit: string,
    paths: readonly string[],
  ): Promise<{ path: string; content: Uint8Array }[]> {
    return (await this.repo.readFiles(commit, paths)).files;
  }
}

/** The scheduler's pipelines from the catalog in the same process. */
export class CatalogPipelines
  implements PipelineSource, DeclaredScheduleSource, DeclaredTriggerSource
{
  constructor(private readonly catalog: PipelineCatalog) {}

  async declaredTriggers(commit?: string): ReturnType<DeclaredTriggerSource["declaredTriggers"]> {
    const snap = await this.catalog.snapshot(commit);
    return [...snap.pipelines.values()]
      .filter((p) => p.valid)
      .map((p) => ({
        pipeline: p.path,
        pipelineName: p.name,
        triggers: p.result.pipeline?.triggers ?? [],
      }));
  }

  async declaredSchedules(
    commit?: string,
  ): ReturnType<DeclaredScheduleSource["declaredSchedules"]> {
    const snap = await this.catalog.snapshot(commit);
    return [...snap.pipelines.values()].map((p) => ({
      pipeline: p.path,
      pipelineName: p.name,
      valid: p.valid,
      schedules: p.valid ? (p.result.pipeline?.schedules ?? []) : [],
    }));
  }

  async getPipeline(
    path: string,
    commit: string | undefined,
    parameters: Readonly<Record<string, unknown>>,
  ): ReturnType<PipelineSource["getPipeline"]> {
    const got = await this.catalog.forRun(path, commit, parameters);
    if (!got.entry || !got.result)
      throw new NotFoundError(
        `no pipeline "${path}" at commit ${got.commit.slice(0, 12)} — "odin ls" lists the pipelines`,
      );
    return {
      commit: got.commit,
      pipeline: got.result.valid ? got.result.pipeline : undefined,
      problems: got.result.problems,
      parameters: got.result.parameters,
    };
  }
}

/** The scheduler's checkouts from the repository in the same process. */
export class RepositoryCheckouts implements CheckoutSource {
  constructor(private readonly repo: PipelineRepository) {}
  acquire(commit: string, holder: string, request?: CheckoutRequest): Promise<RunCheckout> {
    return this.repo.acquireCheckout(commit, holder, request ?? {});
  }
  async release(commit: string, holder: string, attempt?: number): Promise<void> {
    await this.repo.releaseCheckout(commit, holder, attempt);
  }
}

/** The commits a sync brought, from the repository in the same process. */
export class RepositoryCommits implements CommitSource {
  constructor(private readonly repo: PipelineRepository) {}
  listCommits(
    since: string,
    until: string | undefined,
    max: number,
  ): ReturnType<CommitSource["listCommits"]> {
    return this.repo.listCommits(since, until, max);
  }
}
