import { type ConfigSchema } from "@odin/service-kit";

/** The environment variables the odin CLI reads (flags override them). */
export const cliConfigSchema = {
  server: {
    name: "ODIN_SERVER",
    type: "string",
    default: "localhost:50051",
    description: "Odin's gRPC address (`host:port`); `--server` overrides it.",
  },
  token: {
    name: "ODIN_TOKEN",
    type: "string",
    secret: true,
    description: "API token sent as `authorization: Bearer …`; `--token` overrides it.",
  },
} as const satisfies ConfigSchema;
