import { type RepoSyncServiceClient } from "@odin/proto";
import { unary } from "@odin/service-kit";
import type { FileSource, ListedFile } from "./catalog.js";

/** Reads the repository from repo-sync over gRPC (the distributed deployment). */
export class RepoSyncFileSource implements FileSource {
  constructor(private readonly client: RepoSyncServiceClient) {}

  async currentCommit(): Promise<string> {
    return (await unary(this.client, "getStatus", {})).commit;
  }

  async listFiles(commit?: string): Promise<{ commit: string; files: ListedFile[] }> {
    const res = await unary(this.client, "listFiles", { commit: commit ?? "", pathPrefix: "" });
    return {
      commit: res.commit,
      files: res.files.map((f) => ({ path: f.path, size: Number(f.size), symlink: f.symlink })),
    };
  }

  async readFiles(
    commit: string,
    paths: readonly string[],
  ): Promise<{ path: string; content: Uint8Array }[]> {
    const out: { path: string; content: Uint8Array }[] = [];
    // Batches keep each response well under the message size limit.
    for (let i = 0; i < paths.length; i += 500) {
      const res = await unary(this.client, "readFiles", { commit, paths: paths.slice(i, i + 500) });
      out.push(...res.files);
    }
    return out;
  }
}
