export {
  PipelineCatalog,
  validateFiles,
  type FileSource,
  type ListedFile,
  type PipelineEntry,
  type Snapshot,
} from "./catalog.js";
export { pipelineRegistryService } from "./service.js";
export { RepoSyncFileSource } from "./sources.js";
