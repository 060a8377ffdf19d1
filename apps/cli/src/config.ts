import type { ConfigSchema } from "@odin/service-kit";

/** The environment variables the odin CLI reads (flags override them). */
export const cliConfigSchema = {
  server: {
    name: "ODIN_SERVER",
    type: "string",
    default: "",
    description:
      "Odin's gRPC address (`host:port`); `--server` overrides it. Unset: `ODIN_URL:ODIN_PORT`, else `localhost:50051`.",
  },
  url: {
    name: "ODIN_URL",
    type: "string",
    default: "",
    description:
      "The original Odin's server host (a scheme, if any, is dropped); used with `ODIN_PORT` when `ODIN_SERVER` is unset.",
  },
  port: {
    name: "ODIN_PORT",
    type: "string",
    default: "",
    description:
      "The original Odin's server port; used with `ODIN_URL` when `ODIN_SERVER` is unset.",
  },
  token: {
    name: "ODIN_TOKEN",
    type: "string",
    secret: true,
    description: "API token sent as `authorization: Bearer …`; `--token` overrides it.",
  },
  webhooksFile: {
    name: "ODIN_WEBHOOKS_FILE",
    type: "string",
    default: "",
    description:
      "`odin server`: a YAML/JSON file mapping webhook secret names to URLs (`slack-ml: https://hooks.slack.com/…`) for pipelines' `notify:`; `--webhooks` overrides it.",
  },
  publicUrl: {
    name: "ODIN_PUBLIC_URL",
    type: "string",
    default: "",
    description:
      "`odin server`: the web UI's address as people reach it, for the run links of notifications; `--public-url` overrides it. Empty: the address the server's web UI listens on.",
  },
} as const satisfies ConfigSchema;
