export {
  PipelineCatalog,
  validateFiles,
  type FileSource,
  type ListedFile,
  type PipelineEntry,
  type Snapshot,
} from "./catalog.js";
