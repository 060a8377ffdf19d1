export { CatalogPipelines, RepositoryCheckouts, RepositoryFiles } from "./adapters.js";
export { startEmbedded, type Embedded, type EmbeddedOptions } from "./embedded.js";
export { gitCheckoutAt, LocalDirectoryRemote, type GitCheckout } from "./local-remote.js";
