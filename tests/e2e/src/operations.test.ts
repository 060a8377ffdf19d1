// What operators rely on, against the services as processes: the gateway answers reflection and
// health per service at its one address.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  eventually,
  grpcHealth,
  reflectedServices,
  startStack,
  type Stack,
} from "@odin/test-stack";

const services = [
  "odin.dagscheduler.v1.DagSchedulerService",
  "odin.k8slauncher.v1.K8sLauncherService",
  "odin.pipelineregistry.v1.PipelineRegistryService",
  "odin.reposync.v1.RepoSyncService",
];

const pipelines = {
  demo: {
    "main.yml": `name: demo
tasks:
- {name: first, image: "busybox:1.36", command: echo}
- {name: second, image: "busybox:1.36", command: echo, depends: first}
`,
  },
};

describe("operations: the gateway's reflection and health", () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack(pipelines);
  });

  after(async () => {
    await stack?.stop();
  });

  test("reflection at the gateway lists the four services, as grpcurl list would", async () => {
    const names = await reflectedServices(stack.gateway.address);
    for (const name of services)
      assert.ok(names.includes(name), `${name} not in ${names.join(", ")}`);
  });

  test("health at the gateway answers per service and follows its backend", async () => {
    const gateway = stack.gateway.address;
    assert.equal(await grpcHealth(gateway, ""), "SERVING");
    for (const name of services) assert.equal(await grpcHealth(gateway, name), "SERVING", name);
    const registry = "odin.pipelineregistry.v1.PipelineRegistryService";
    await stack.registry.stop();
    await eventually(
      async () => (await grpcHealth(gateway, registry)) === "NOT_SERVING",
      60_000,
      "the registry NOT_SERVING at the gateway",
    );
    // The gateway itself and the other services are unaffected.
    assert.equal(await grpcHealth(gateway, ""), "SERVING");
    assert.equal(await grpcHealth(gateway, "odin.reposync.v1.RepoSyncService"), "SERVING");
    await stack.registry.restart();
    await eventually(
      async () => (await grpcHealth(gateway, registry)) === "SERVING",
      60_000,
      "the registry SERVING again at the gateway",
    );
  });
});
