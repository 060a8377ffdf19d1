// What operators rely on, against the services as processes: every service and `odin server`
// serve the metrics to alert on, and they move when runs happen; the gateway answers reflection
// and health per service at its one address.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startNats, type NatsServer } from "@odin/testing";
import {
  eventually,
  grpcHealth,
  metricSum,
  odin,
  reflectedServices,
  scrape,
  startOdinServer,
  startStack,
  tempDir,
  type OdinServer,
  type Scrape,
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
  // Two tasks that run until cancelled, one at a time: one runs, the other waits for capacity.
  hold: {
    "main.yml": `name: hold
parallelism: 1
tasks:
- {name: a, image: "hold:1", command: wait}
- {name: b, image: "hold:1", command: wait}
`,
  },
};

/** The scheduler's and every service's families, and which service serves which. */
const schedulerFamilies = [
  "odin_runs",
  "odin_tasks",
  "odin_tasks_queued",
  "odin_task_launch_duration_seconds",
  "odin_runs_finished_total",
];
const grpcFamilies = [
  "odin_grpc_server_requests_total",
  "odin_grpc_server_request_duration_seconds",
];

function assertFamilies(got: Scrape, want: string[], who: string): void {
  for (const family of want)
    assert.ok(
      got.families.has(family),
      `${who} serves no ${family}: ${[...got.families].join(", ")}`,
    );
}

describe("operations: metrics of every service, the gateway's reflection and health", () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack(pipelines);
    stack.sim.script({ image: "hold:*", runForever: true });
  });

  after(async () => {
    await stack?.stop();
  });

  test("every service serves its metric families; runs move the gauges, counters and histograms", async () => {
    const scheduler = stack.schedulers[0]!;
    const launcher = stack.launchers[0]!;
    const all = {
      "repo-sync": await scrape(stack.repoSync.metricsUrl),
      "pipeline-registry": await scrape(stack.registry.metricsUrl),
      "dag-scheduler": await scrape(scheduler.metricsUrl),
      "k8s-launcher": await scrape(launcher.metricsUrl),
      gateway: await scrape(stack.gateway.metricsUrl),
    };
    for (const [who, got] of Object.entries(all)) {
      assertFamilies(got, [...grpcFamilies, "process_cpu_seconds_total"], who);
    }
    assertFamilies(all["repo-sync"], ["odin_nats_errors_total"], "repo-sync");
    assertFamilies(all["pipeline-registry"], ["odin_nats_errors_total"], "pipeline-registry");
    assertFamilies(
      all["dag-scheduler"],
      [...schedulerFamilies, "odin_nats_errors_total"],
      "dag-scheduler",
    );
    assertFamilies(
      all["k8s-launcher"],
      [
        "odin_kubernetes_requests_total",
        "odin_kubernetes_request_duration_seconds",
        "odin_kubernetes_rate_limit_wait_seconds",
        "odin_nats_errors_total",
      ],
      "k8s-launcher",
    );
    assertFamilies(all.gateway, ["odin_gateway_backend_serving"], "gateway");
    for (const name of services)
      assert.equal(
        metricSum(all.gateway, "odin_gateway_backend_serving", { service: name }),
        1,
        name,
      );
    const before = all;

    // A run that holds: one task runs, the other is queued behind the pipeline's parallelism.
    const held = await stack.cli("-o", "json", "run", "hold");
    assert.equal(held.code, 0, held.stderr);
    const heldId = (JSON.parse(held.stdout) as { id: string }).id;
    await eventually(
      async () => {
        const now = await scrape(scheduler.metricsUrl);
        return (
          metricSum(now, "odin_runs", { state: "RUNNING" }) === 1 &&
          metricSum(now, "odin_tasks", { state: "RUNNING" }) === 1 &&
          metricSum(now, "odin_tasks", { state: "PENDING" }) === 1 &&
          metricSum(now, "odin_tasks_queued") === 1
        );
      },
      60_000,
      "a RUNNING run with one task running and one queued in the scheduler's gauges",
    );
    const cancelled = await stack.cli("cancel", heldId);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    await eventually(
      async () => {
        const now = await scrape(scheduler.metricsUrl);
        return (
          metricSum(now, "odin_runs", { state: "RUNNING" }) === 0 &&
          metricSum(now, "odin_tasks_queued") === 0 &&
          metricSum(now, "odin_runs_finished_total", { state: "CANCELLED" }) === 1
        );
      },
      60_000,
      "the cancelled run to leave the gauges and count as CANCELLED",
    );

    const run = await stack.cli("run", "demo", "--follow");
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const after = {
      "repo-sync": await scrape(stack.repoSync.metricsUrl),
      "pipeline-registry": await scrape(stack.registry.metricsUrl),
      "dag-scheduler": await scrape(scheduler.metricsUrl),
      "k8s-launcher": await scrape(launcher.metricsUrl),
      gateway: await scrape(stack.gateway.metricsUrl),
    };
    const grew = (who: keyof typeof after, name: string, labels: Record<string, string> = {}) =>
      metricSum(after[who], name, labels) - metricSum(before[who], name, labels);

    const s = "dag-scheduler";
    assert.equal(grew(s, "odin_runs_finished_total", { state: "SUCCEEDED" }), 1);
    // hold's first task and demo's two: each measured from ready to created.
    assert.equal(grew(s, "odin_task_launch_duration_seconds_count"), 3);
    assert.equal(
      grew(s, "odin_grpc_server_requests_total", { method: "SubmitRun", code: "OK" }),
      2,
    );
    const l = "k8s-launcher";
    assert.ok(grew(l, "odin_kubernetes_requests_total", { verb: "POST", code: "201" }) >= 3);
    assert.ok(grew(l, "odin_kubernetes_request_duration_seconds_count") >= 3);
    assert.ok(grew(l, "odin_kubernetes_rate_limit_wait_seconds_count") >= 3);
    assert.ok(
      grew(l, "odin_grpc_server_requests_total", { method: "LaunchTask", code: "OK" }) >= 3,
    );
    assert.equal(
      grew("gateway", "odin_grpc_server_requests_total", { method: "SubmitRun", code: "OK" }),
      2,
    );
    assert.ok(grew("pipeline-registry", "odin_grpc_server_requests_total") >= 2);
    assert.ok(grew("repo-sync", "odin_grpc_server_requests_total") >= 2);
    for (const who of ["repo-sync", "pipeline-registry", "dag-scheduler", "k8s-launcher"] as const)
      assert.equal(metricSum(after[who], "odin_nats_errors_total"), 0, who);
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
    assert.equal(
      metricSum(await scrape(stack.gateway.metricsUrl), "odin_gateway_backend_serving", {
        service: registry,
      }),
      0,
    );
    await stack.registry.restart();
    await eventually(
      async () => (await grpcHealth(gateway, registry)) === "SERVING",
      60_000,
      "the registry SERVING again at the gateway",
    );
  });
});

describe("operations: odin server's metrics", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let nats: NatsServer;
  let server: OdinServer;

  before(async () => {
    dir = await tempDir("odin-e2e-ops-server-");
    nats = await startNats({ runtime: "binary" });
    server = await startOdinServer(
      ["--data", join(dir.path, "data"), "--nats", nats.url, "--metrics-port", "0"],
      { HOME: dir.path },
    );
  });

  after(async () => {
    await server?.stop();
    await nats?.stop();
    await dir?.cleanup();
  });

  test("the same families in one process; a run and a NATS outage move them", async () => {
    assert.ok(server.metricsPort, server.output());
    const url = `http://127.0.0.1:${server.metricsPort}/metrics`;
    const before = await scrape(url);
    assertFamilies(
      before,
      [...schedulerFamilies, ...grpcFamilies, "odin_nats_errors_total"],
      "odin server",
    );
    const run = await odin(["--server", server.address, "run", "diamond", "--follow"]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const after = await scrape(url);
    const grew = (name: string, labels: Record<string, string> = {}) =>
      metricSum(after, name, labels) - metricSum(before, name, labels);
    assert.equal(grew("odin_runs_finished_total", { state: "SUCCEEDED" }), 1);
    assert.equal(grew("odin_task_launch_duration_seconds_count"), 4);
    assert.equal(grew("odin_grpc_server_requests_total", { method: "SubmitRun", code: "OK" }), 1);
    assert.equal(metricSum(after, "odin_nats_errors_total"), 0);

    // NATS stops answering: the list of runs still answers (every scheduler keeps it in memory),
    // reading a run's record fails, and the run store's errors are counted.
    const runId = /diamond-[a-z0-9]{8}/.exec(run.stdout)?.[0];
    assert.ok(runId, run.stdout);
    await nats.pause();
    try {
      const list = await odin(["--server", server.address, "status"]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(runId));
      const status = await odin(["--server", server.address, "status", runId]);
      assert.notEqual(status.code, 0, status.stdout);
    } finally {
      await nats.resume();
    }
    const outage = await scrape(url);
    assert.ok(
      metricSum(outage, "odin_nats_errors_total", { component: "run_store" }) > 0,
      "run-store errors counted",
    );
  });
});
