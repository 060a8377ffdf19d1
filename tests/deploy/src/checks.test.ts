// The checks find what they claim to find: each test breaks one thing in the rendered dev overlay
// and expects the problem that names it.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkApps,
  checkDocuments,
  checkServiceAccounts,
  checkServices,
  checkWorkloads,
  isOdinImage,
  quantity,
} from "./checks.js";
import { type Container, Rendered, type Service, type Workload } from "./model.js";
import {
  type K8sObject,
  KubectlMissingError,
  kustomize,
  odinNamespace,
  renderOverlay,
} from "./render.js";

let devDocs: unknown[] | undefined;

/** A fresh, mutable copy of the rendered dev overlay. */
function dev(): Rendered {
  devDocs ??= renderOverlay("dev");
  const copy = structuredClone(devDocs);
  return new Rendered(checkDocuments(copy, odinNamespace).objects);
}

function workload(r: Rendered, name: string): Workload {
  const w = r.get<Workload>("Deployment", name) ?? r.get<Workload>("StatefulSet", name);
  assert.ok(w, `${name} is rendered`);
  return w;
}

function container(r: Rendered, name: string): Container {
  const c = workload(r, name).spec.template.spec.containers[0];
  assert.ok(c);
  return c;
}

function setEnv(c: Container, name: string, value: string | undefined): void {
  c.env = (c.env ?? []).filter((e) => e.name !== name);
  if (value !== undefined) c.env.push({ name, value });
}

function assertProblem(problems: readonly string[], pattern: RegExp): void {
  assert.ok(
    problems.some((p) => pattern.test(p)),
    `expected a problem matching ${pattern}, got ${JSON.stringify(problems, null, 2)}`,
  );
}

test("the unbroken dev overlay has no problems (the baseline of the tests below)", async () => {
  const r = dev();
  assert.deepEqual([...checkWorkloads(r), ...checkServices(r), ...checkServiceAccounts(r)], []);
  assert.deepEqual((await checkApps(r)).problems, []);
});

test("a document without namespace, name or apiVersion", () => {
  const { problems } = checkDocuments(
    [
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" } },
      { kind: "ConfigMap", metadata: { name: "b", namespace: "odin" } },
      { apiVersion: "v1", kind: "ConfigMap", metadata: {} },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "odin" } },
      "text",
    ],
    "odin",
  );
  assert.deepEqual(problems, [
    "ConfigMap/a: namespace is undefined, expected odin",
    "document 2 (ConfigMap/b): no apiVersion",
    "document 3 (ConfigMap): no metadata.name",
    "document 5: not a mapping",
  ]);
});

test("a secretKeyRef to a key the Secret lacks", () => {
  const r = dev();
  const secret = r.all("Secret").find((s) => s.metadata.name.startsWith("odin-service-token"));
  assert.ok(secret);
  (secret as K8sObject & { data: Record<string, string> }).data = {};
  assertProblem(checkWorkloads(r), /pipeline-registry: env ODIN_SERVICE_TOKEN reads key token/);
});

test("a volume naming a Secret or claim that is not rendered, a mount naming no volume", () => {
  const r = dev();
  const pod = workload(r, "k8s-launcher").spec.template.spec;
  const data = pod.volumes?.find((v) => v.name === "data");
  assert.ok(data?.persistentVolumeClaim);
  data.persistentVolumeClaim.claimName = "odin-date";
  container(r, "k8s-launcher").volumeMounts?.push({ name: "cache", mountPath: "/cache" });
  const problems = checkWorkloads(r);
  assertProblem(problems, /k8s-launcher volume data: PersistentVolumeClaim odin-date/);
  assertProblem(problems, /volumeMount cache names no volume/);
});

test("a probe on an undeclared port, a container without requests, a root container", () => {
  const r = dev();
  const c = container(r, "dag-scheduler");
  c.livenessProbe = { grpc: { port: 50052 } };
  delete c.resources?.requests;
  c.securityContext = { ...c.securityContext, readOnlyRootFilesystem: false };
  delete workload(r, "dag-scheduler").spec.template.spec.securityContext?.runAsNonRoot;
  const problems = checkWorkloads(r);
  assertProblem(problems, /dag-scheduler: livenessProbe port 50052 is not a declared/);
  assertProblem(problems, /dag-scheduler: resources.requests needs cpu and memory/);
  assertProblem(problems, /dag-scheduler: readOnlyRootFilesystem is not true/);
  assertProblem(problems, /dag-scheduler: runAsNonRoot is not set/);
});

test("a selector that does not match the template's labels", () => {
  const r = dev();
  const w = workload(r, "gateway");
  w.spec.selector = { matchLabels: { "app.kubernetes.io/name": "gate" } };
  assertProblem(checkWorkloads(r), /Deployment\/gateway: selector .* does not match/);
});

test("a Service targeting a port the pods do not declare, or selecting nothing", () => {
  const r = dev();
  const svc = r.get<Service>("Service", "pipeline-registry");
  const port = svc?.spec.ports?.[0];
  assert.ok(svc && port);
  port.targetPort = "http";
  const nats = r.get<Service>("Service", "nats");
  assert.ok(nats);
  nats.spec.selector = { "app.kubernetes.io/name": "nats-server" };
  const problems = checkServices(r);
  assertProblem(problems, /Service\/pipeline-registry port grpc: targetPort http/);
  assertProblem(problems, /Service\/nats: selector .* selects no workload/);
});

test("a service that is not the launcher with an API token", () => {
  const r = dev();
  workload(r, "gateway").spec.template.spec.automountServiceAccountToken = true;
  assertProblem(checkServiceAccounts(r), /Deployment\/gateway: its pods get an API token/);
});

test("env: an unknown variable, a missing required one, a bad value", async () => {
  const r = dev();
  setEnv(container(r, "gateway"), "ODIN_NATS_URL", "nats://nats:4222"); // the gateway uses no NATS
  setEnv(container(r, "repo-sync"), "ODIN_REPO_URL", undefined);
  setEnv(container(r, "dag-scheduler"), "ODIN_MAX_RUNNING_TASKS", "many");
  const { problems } = await checkApps(r);
  assertProblem(problems, /gateway: ODIN_NATS_URL is not a variable gateway reads/);
  assertProblem(
    problems,
    /repo-sync: repo-sync refuses its configuration: .*ODIN_REPO_URL: required/s,
  );
  assertProblem(problems, /dag-scheduler: .*ODIN_MAX_RUNNING_TASKS: expected a whole number/s);
});

test("env: an address reaching the wrong service, or no service", async () => {
  const r = dev();
  setEnv(container(r, "dag-scheduler"), "ODIN_REGISTRY_ADDRESS", "repo-sync:50051");
  setEnv(container(r, "gateway"), "ODIN_LAUNCHER_ADDRESS", "launcher:50051");
  setEnv(container(r, "k8s-launcher"), "ODIN_NATS_URL", "nats://nats:4223");
  const { problems } = await checkApps(r);
  assertProblem(
    problems,
    /ODIN_REGISTRY_ADDRESS=repo-sync:50051: .* selects repo-sync, not pipeline-registry/,
  );
  assertProblem(problems, /ODIN_LAUNCHER_ADDRESS=launcher:50051: no Service launcher/);
  assertProblem(problems, /ODIN_NATS_URL=nats:\/\/nats:4223: Service nats has no port 4223/);
});

test("env: a NATS node list naming a pod the StatefulSet does not have, or a port it does not declare", async () => {
  const r = dev();
  setEnv(container(r, "repo-sync"), "ODIN_NATS_URL", "nats://nats-0.nats-cluster:4222,nats://nats-1.nats-cluster:4222");
  setEnv(container(r, "k8s-launcher"), "ODIN_NATS_URL", "nats://nats-0.nats-cluster:4999");
  const { problems } = await checkApps(r);
  assertProblem(problems, /repo-sync: ODIN_NATS_URL=nats:\/\/nats-1.nats-cluster:4222: StatefulSet nats has 1 replicas: there is no pod nats-1/);
  assertProblem(problems, /k8s-launcher: ODIN_NATS_URL=nats:\/\/nats-0.nats-cluster:4999: the pods of StatefulSet\/nats declare no port 4999/);
});

test("env: auth off, a tokens file outside any Secret, a path off the data volume, a gRPC port the pod does not declare", async () => {
  const r = dev();
  setEnv(container(r, "pipeline-registry"), "ODIN_AUTH", "off");
  setEnv(container(r, "dag-scheduler"), "ODIN_TOKENS_FILE", "/etc/odin/tokens.json");
  setEnv(container(r, "repo-sync"), "ODIN_ROOT_PATH", "/var/lib/odin");
  setEnv(container(r, "k8s-launcher"), "ODIN_DATA_PATH", "/data/runs");
  setEnv(container(r, "gateway"), "ODIN_GRPC_PORT", "8080");
  const { problems } = await checkApps(r);
  assertProblem(problems, /pipeline-registry: ODIN_AUTH is not on/);
  assertProblem(
    problems,
    /dag-scheduler: ODIN_TOKENS_FILE=\/etc\/odin\/tokens.json is not in a mounted Secret/,
  );
  assertProblem(problems, /repo-sync: ODIN_ROOT_PATH=\/var\/lib\/odin is not on a writable mount/);
  assertProblem(
    problems,
    /ODIN_DATA_PATH differs: dag-scheduler gives runs \/data\/odin, k8s-launcher purges \/data\/runs/,
  );
  assertProblem(problems, /gateway: gateway listens on 8080 but the port named grpc is 50051/);
});

test("a tokens file the services would refuse", async () => {
  const r = dev();
  const secret = r.all("Secret").find((s) => s.metadata.name.startsWith("odin-tokens"));
  assert.ok(secret);
  const bad = JSON.stringify({ tokens: [{ subject: "x", role: "root", token: "sha256:12" }] });
  (secret as K8sObject & { data: Record<string, string> }).data = {
    "tokens.json": Buffer.from(bad).toString("base64"),
  };
  const { problems } = await checkApps(r);
  assertProblem(problems, /repo-sync: the services would refuse .*"root" is not a role/s);
});

test("an odin container running no app, or an app that is not built", async () => {
  const r = dev();
  container(r, "gateway").args = ["apps/nope/dist/main.js"];
  container(r, "pipeline-registry").args = ["--inspect"];
  const { problems } = await checkApps(r);
  assertProblem(problems, /gateway: apps\/nope\/dist\/main.js does not exist after the build/);
  assertProblem(problems, /pipeline-registry: runs the odin image with args \["--inspect"\]/);
  assertProblem(problems, /no workload runs gateway/);
});

test("isOdinImage and quantity", () => {
  assert.ok(isOdinImage("odin"));
  assert.ok(isOdinImage("registry.example.com:5000/team/odin:1.2@sha256:ab"));
  assert.ok(!isOdinImage("nats:2.10-alpine"));
  assert.ok(!isOdinImage("odin-tools:1"));
  assert.equal(quantity("500m"), 0.5);
  assert.equal(quantity("2"), 2);
  assert.equal(quantity("1Gi"), 2 ** 30);
  assert.ok(Number.isNaN(quantity("lots")));
});

test("without kubectl the rendering fails and says how to install it (it never skips)", () => {
  const saved = process.env.KUBECTL;
  process.env.KUBECTL = "/nonexistent/kubectl";
  try {
    assert.throws(
      () => kustomize("deploy/overlays/dev"),
      (err: unknown) =>
        err instanceof KubectlMissingError &&
        /apt-get install -y kubernetes-client/.test(err.message),
    );
  } finally {
    if (saved === undefined) delete process.env.KUBECTL;
    else process.env.KUBECTL = saved;
  }
});
