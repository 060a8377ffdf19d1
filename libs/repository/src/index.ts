export {
  PipelineRepository,
  type FileEntry,
  type PushInput,
  type RepositoryOptions,
  type RepoStatus,
  type SyncedEvent,
} from "./repository.js";
export { authorOf, repoSyncService } from "./service.js";
