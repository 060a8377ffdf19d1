export { CatalogPipelines, RepositoryCheckouts, RepositoryFiles } from "./adapters.js";
export { startEmbedded, type Embedded, type EmbeddedOptions } from "./embedded.js";
export { LocalDirectoryRemote } from "./local-remote.js";
