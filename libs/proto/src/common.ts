// odin.common.v1 is spread over several .proto files; this gathers them into one namespace.
export * from "./gen/odin/common/v1/file.js";
export * from "./gen/odin/common/v1/pipeline.js";
export * from "./gen/odin/common/v1/problem.js";
export * from "./gen/odin/common/v1/run.js";
