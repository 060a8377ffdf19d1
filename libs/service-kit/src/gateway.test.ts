import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import {
  DagSchedulerServiceClient,
  DagSchedulerServiceService,
  K8sLauncherServiceService,
  PipelineRegistryServiceClient,
  PipelineRegistryServiceService,
  RepoSyncServiceService,
} from "@odin/proto";
import { createClient, serverStream, unary } from "./client.js";
import { problemsOf } from "./errors.js";
import {
  healthCheck,
  reflectedServices,
  registryFake,
  schedulerFake,
  stubServices,
  testTokenStore,
  TOKENS,
} from "./fixtures.js";
import { startGateway, type Gateway } from "./gateway.js";
import { silentLogger } from "./logger.js";
import { startServer, type OdinServer } from "./server.js";

describe("gateway: one address for every service", () => {
  let registry: OdinServer;
  let scheduler: OdinServer;
  let gateway: Gateway;
  before(async () => {
    registry = await startServer({
      name: "registry",
      host: "127.0.0.1",
      port: 0,
      auth: testTokenStore(),
      services: [registryFake()],
      logger: silentLogger,
    });
    scheduler = await startServer({
      name: "scheduler",
      host: "127.0.0.1",
      port: 0,
      auth: testTokenStore(),
      services: [schedulerFake()],
      logger: silentLogger,
    });
    gateway = await startGateway({
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      routes: [
        { address: registry.address, services: [PipelineRegistryServiceService] },
        { address: scheduler.address, services: [DagSchedulerServiceService] },
      ],
    });
  });
  after(async () => {
    await gateway.close(0);
    await registry.close(0);
    await scheduler.close(0);
  });

  test("unary calls reach their service with the caller's token; errors keep their status and problems", async () => {
    const client = createClient(PipelineRegistryServiceClient, {
      address: gateway.address,
      token: TOKENS.viewer,
      retries: 0,
    });
    try {
      const res = await unary(client, "listPipelines", { commit: "", pathPrefix: "" });
      assert.ok(res.commit !== undefined);
      await assert.rejects(
        unary(client, "listPipelines", { commit: "", pathPrefix: "invalid" }),
        (err: Error & { code?: number }) => {
          assert.equal(err.code, status.INVALID_ARGUMENT);
          assert.equal(problemsOf(err)[0]?.message, "image is required");
          return true;
        },
      );
      const anonymous = createClient(PipelineRegistryServiceClient, {
        address: gateway.address,
        retries: 0,
      });
      await assert.rejects(unary(anonymous, "listPipelines", { commit: "", pathPrefix: "" }), {
        code: status.UNAUTHENTICATED,
      });
      anonymous.close();
    } finally {
      client.close();
    }
  });

  test("server streams pass through, with their end and their errors", async () => {
    const client = createClient(DagSchedulerServiceClient, {
      address: gateway.address,
      token: TOKENS.viewer,
      retries: 0,
    });
    try {
      const tasks: string[] = [];
      for await (const m of serverStream(client, "watchRun", {
        runId: "count:5",
        taskStatesFirst: false,
        maxSnapshotTaskRuns: 0,
      })) {
        if (m.event?.$case === "taskRun") tasks.push(m.event.value.task);
      }
      assert.deepEqual(tasks, ["task-0", "task-1", "task-2", "task-3", "task-4"]);
      const who: string[] = [];
      for await (const m of serverStream(client, "watchRun", {
        runId: "whoami",
        taskStatesFirst: false,
        maxSnapshotTaskRuns: 0,
      })) {
        if (m.event?.$case === "taskRun") who.push(m.event.value.task);
      }
      assert.deepEqual(who, ["vera/viewer"]);
      await assert.rejects(
        (async () => {
          for await (const _ of serverStream(client, "watchRun", {
            runId: "fail",
            taskStatesFirst: false,
            maxSnapshotTaskRuns: 0,
          }))
            void _;
        })(),
        { code: status.NOT_FOUND },
      );
    } finally {
      client.close();
    }
  });

  test("a service the gateway cannot reach is UNAVAILABLE with a message naming it", async () => {
    const lonely = await startGateway({
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      routes: [{ address: "127.0.0.1:1", services: [PipelineRegistryServiceService] }],
    });
    const client = createClient(PipelineRegistryServiceClient, {
      address: lonely.address,
      token: TOKENS.viewer,
      retries: 0,
    });
    try {
      await assert.rejects(
        unary(client, "listPipelines", { commit: "", pathPrefix: "" }),
        (err: Error & { code?: number; details?: string }) => {
          assert.equal(err.code, status.UNAVAILABLE);
          assert.match(err.details ?? "", /could not reach the service at 127\.0\.0\.1:1/);
          return true;
        },
      );
    } finally {
      client.close();
      await lonely.close(0);
    }
  });

  test("reflection at the gateway lists every routed service, without proto files or a token", async () => {
    const names = await reflectedServices(gateway.address);
    assert.deepEqual(names, [
      "grpc.health.v1.Health",
      "odin.dagscheduler.v1.DagSchedulerService",
      "odin.pipelineregistry.v1.PipelineRegistryService",
    ]);
  });
});

describe("gateway health: per service, following its backend", () => {
  test("each service is SERVING while its backend answers, NOT_SERVING while it is down; the gateway itself stays SERVING", async () => {
    const registry = "odin.pipelineregistry.v1.PipelineRegistryService";
    const scheduler = "odin.dagscheduler.v1.DagSchedulerService";
    const start = (port: number) =>
      startServer({
        name: "registry",
        host: "127.0.0.1",
        port,
        auth: testTokenStore(),
        services: [registryFake()],
        logger: silentLogger,
      });
    let backend = await start(0);
    const port = backend.port;
    const gateway = await startGateway({
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      healthIntervalMs: 100,
      routes: [
        { address: backend.address, services: [PipelineRegistryServiceService] },
        // Nothing listens on port 1.
        { address: "127.0.0.1:1", services: [DagSchedulerServiceService] },
      ],
    });
    const until = async (service: string, want: string): Promise<void> => {
      let got = "";
      for (let i = 0; i < 600; i++) {
        got = await healthCheck(gateway.address, service);
        if (got === want) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`${service} stayed ${got}, expected ${want}`);
    };
    try {
      // The first round of checks is done before the gateway serves.
      assert.equal(await healthCheck(gateway.address, registry), "SERVING");
      assert.equal(await healthCheck(gateway.address, scheduler), "NOT_SERVING");
      assert.equal(await healthCheck(gateway.address, ""), "SERVING");
      await assert.rejects(healthCheck(gateway.address, "no.such.Service"), {
        code: status.NOT_FOUND,
      });
      await backend.close(0);
      await until(registry, "NOT_SERVING");
      assert.equal(await healthCheck(gateway.address, ""), "SERVING");
      backend = await start(port);
      await until(registry, "SERVING");
    } finally {
      await gateway.close(0);
      await backend.close(0);
    }
  });

  test("a gateway in front of all four services lists all four through reflection", async () => {
    const backend = await startServer({
      name: "all",
      host: "127.0.0.1",
      port: 0,
      auth: testTokenStore(),
      services: [registryFake(), schedulerFake(), ...stubServices()],
      logger: silentLogger,
    });
    const gateway = await startGateway({
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      routes: [
        {
          address: backend.address,
          services: [
            RepoSyncServiceService,
            PipelineRegistryServiceService,
            DagSchedulerServiceService,
            K8sLauncherServiceService,
          ],
        },
      ],
    });
    try {
      const names = await reflectedServices(gateway.address);
      for (const name of [
        "odin.dagscheduler.v1.DagSchedulerService",
        "odin.k8slauncher.v1.K8sLauncherService",
        "odin.pipelineregistry.v1.PipelineRegistryService",
        "odin.reposync.v1.RepoSyncService",
      ]) {
        assert.ok(names.includes(name), `${name} missing from ${names.join(", ")}`);
        assert.equal(await healthCheck(gateway.address, name), "SERVING", name);
      }
    } finally {
      await gateway.close(0);
      await backend.close(0);
    }
  });
});
