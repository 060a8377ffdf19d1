export {
  isTemplate,
  maxRenderedChars,
  maxTemplateBytes,
  renderedPath,
  renderTemplate,
  templateContext,
  templateSuffix,
} from "./render.js";
export {
  isYamlPath,
  relativeToPipeline,
  renderTemplates,
  repoPathOf,
  templatesUnder,
  type RenderedFile,
  type TemplateSource,
} from "./directory.js";
