export {
  NotLeadingError,
  PipelineRepository,
  type AcquiredCheckout,
  type AcquireOptions,
  type WriteLease,
  type CommitInfo,
  type CommitRange,
  type FileEntry,
  type PushInput,
  type RepositoryOptions,
  type RepoStatus,
  type SyncedEvent,
} from "./repository.js";
export { authorOf, repoSyncService } from "./service.js";
export { Lease, NotLeaderError, type LeaseHolder, type LeaseOptions } from "./lease.js";
export { LeaderForwarder, type Leadership, type LeaderForwarderOptions } from "./forward.js";
export { maxRenderCopyBytes, maxRenderEntries } from "./render.js";
