// @odin/web/graph: the UI's graph layout, which needs no DOM, for benchmarks in Node. Kept apart
// from the main entry so the servers that import `webRoot` do not load dagre.
export { layoutGraph, type GraphLayout, type GraphTask } from "./ui/graph.js";
