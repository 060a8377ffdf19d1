import { RepoSyncServiceService, type reposync } from "@odin/proto";
import {
  callerOf,
  service,
  unary,
  unaryHandler,
  type ServiceRegistration,
} from "@odin/service-kit";
import type { LeaderForwarder } from "./forward.js";
import type { PipelineRepository } from "./repository.js";

/**
 * The author recorded for a caller: a subject `Name <email>` (as git writes an identity) or an
 * e-mail address is used as such.
 */
export function authorOf(subject: string): { name: string; email: string } {
  const ident = /^(.+?)\s*<([^<>\s]+@[^<>\s]+)>$/.exec(subject.trim());
  if (ident) return { name: ident[1]!, email: ident[2]! };
  const at = subject.indexOf("@");
  return at > 0
    ? { name: subject.slice(0, at), email: subject }
    : { name: subject, email: `${subject}@odin.invalid` };
}

/**
 * RepoSyncService over a repository: handlers validate, call the repository, map the result. With
 * several replicas, `forwarder` sends Push and Sync to the leader; the rest is served here.
 */
export function repoSyncService(
  repo: PipelineRepository,
  forwarder?: LeaderForwarder,
): ServiceRegistration {
  return service(
    RepoSyncServiceService,
    {
      sync: unaryHandler(async (req, call): Promise<reposync.SyncResponse> =>
        forwarder
          ? forwarder.run(
              call,
              () => repo.sync(),
              (leader, metadata) => unary(leader, "sync", req, { metadata }),
            )
          : repo.sync(),
      ),
      getStatus: unaryHandler(async (): Promise<reposync.GetStatusResponse> => {
        await repo.refresh();
        const s = repo.status();
        return {
          remote: s.remote,
          branch: s.branch,
          commit: s.commit,
          lastSyncTime: s.lastSyncTime,
          lastError: s.lastError ?? "",
          lastErrorTime: s.lastErrorTime,
        };
      }),
      listFiles: unaryHandler(async (req): Promise<reposync.ListFilesResponse> => {
        const { commit, files } = await repo.listFiles(req.commit || undefined, req.pathPrefix);
        return {
          commit,
          files: files.map((f) => ({ path: f.path, size: BigInt(f.size), symlink: f.symlink })),
        };
      }),
      readFiles: unaryHandler(async (req): Promise<reposync.ReadFilesResponse> =>
        repo.readFiles(req.commit || undefined, req.paths),
      ),
      push: unaryHandler(async (req, call): Promise<reposync.PushResponse> => {
        const local = () =>
          repo.push({
            pipeline: req.pipeline,
            files: req.files,
            replace: req.replace,
            message: req.message,
            requestId: req.requestId,
            author: authorOf(callerOf(call).subject),
          });
        return forwarder
          ? forwarder.run(call, local, (leader, metadata) =>
              unary(leader, "push", req, { metadata }),
            )
          : local();
      }),
      acquireCheckout: unaryHandler(async (req): Promise<reposync.AcquireCheckoutResponse> => {
        const acquired = await repo.acquireCheckout(req.commit || undefined, req.holder, {
          pipeline: req.pipeline,
          parameters: req.context ?? {},
          attempt: req.attempt,
        });
        return {
          commit: acquired.commit,
          checkoutPath: acquired.path,
          workPath: acquired.workPath ?? "",
          workDigest: acquired.workDigest ?? "",
        };
      }),
      listCommits: unaryHandler(async (req): Promise<reposync.ListCommitsResponse> => {
        const range = await repo.listCommits(
          req.since,
          req.until || undefined,
          req.maxCommits || 1000,
        );
        return {
          until: range.until,
          commits: range.commits.map((c) => ({
            sha: c.sha,
            authorName: c.author.name,
            authorEmail: c.author.email,
            authorTime: c.authorTime,
            subject: c.subject,
            changedPaths: c.changedPaths,
          })),
          truncated: range.truncated,
          rewritten: range.rewritten,
          sinceUnknown: range.sinceUnknown,
        };
      }),
      releaseCheckout: unaryHandler(async (req): Promise<reposync.ReleaseCheckoutResponse> => ({
        released: await repo.releaseCheckout(req.commit, req.holder, req.attempt),
      })),
    },
    {
      getStatus: "viewer",
      listFiles: "viewer",
      readFiles: "viewer",
      sync: "operator",
      push: "operator",
      acquireCheckout: "operator",
      releaseCheckout: "operator",
      listCommits: "viewer",
    },
  );
}
