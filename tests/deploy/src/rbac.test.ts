// The launcher's Role grants exactly what its code uses. The real KubernetesBackend runs against
// kube-sim — launch (and launch again), follow and read logs, events, cancel, delete a run — for
// every resource type the deployed launcher watches; every request kube-sim saw becomes a
// (verb, API group, resource) permission, and that set must equal what the Role grants.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  KubernetesBackend,
  type KubernetesBackendOptions,
  type LaunchSpec,
  type TaskStateEvent,
} from "@odin/launcher";
import { taskWithDefaults } from "@odin/launcher/testing";
import { SCRIPT_ANNOTATION, startKubeSim, type KubeSim } from "@odin/testing";
import { checkApps, checkDocuments } from "./checks.js";
import { type PolicyRule, Rendered, type RoleBinding, type Workload } from "./model.js";
import { grantedBy, permissionOf } from "./rbac.js";
import { odinNamespace, overlays, renderOverlay } from "./render.js";

/** The rules of the Role bound to the service account the launcher's pods run as. */
function launcherRules(r: Rendered): { role: string; rules: PolicyRule[]; problems: string[] } {
  const problems: string[] = [];
  const launcher = r
    .workloads()
    .find((w) =>
      w.spec.template.spec.containers.some((c) => c.args?.[0] === "apps/k8s-launcher/dist/main.js"),
    );
  assert.ok(launcher, "a workload runs the launcher");
  const sa = launcher.spec.template.spec.serviceAccountName ?? "default";
  const bindings = [
    ...r.all<RoleBinding>("RoleBinding"),
    ...r.all<RoleBinding>("ClusterRoleBinding"),
  ].filter((b) => (b.subjects ?? []).some((s) => s.kind === "ServiceAccount" && s.name === sa));
  const rules: PolicyRule[] = [];
  for (const b of bindings) {
    const role = r.get<Workload & { rules?: PolicyRule[] }>(b.roleRef.kind, b.roleRef.name);
    // The one cluster-wide grant: reading nodes for the GPU inventory (odin gpus).
    const nodesOnly = (role?.rules ?? []).every(
      (rule) =>
        rule.apiGroups?.join() === "" &&
        rule.resources?.join() === "nodes" &&
        rule.verbs.every((v) => v === "list" || v === "watch"),
    );
    if ((b.kind !== "RoleBinding" || b.roleRef.kind !== "Role") && !nodesOnly)
      problems.push(
        `${b.kind}/${b.metadata.name} grants ${b.roleRef.kind}/${b.roleRef.name}: the launcher needs a namespaced Role, and a ClusterRole only to list and watch nodes`,
      );
    for (const rule of role?.rules ?? []) {
      if (rule.resourceNames?.length || rule.nonResourceURLs?.length)
        problems.push(`${b.roleRef.name}: a rule with resourceNames or nonResourceURLs`);
      rules.push(rule);
    }
  }
  return { role: bindings.map((b) => b.roleRef.name).join(", "), rules, problems };
}

function runId(prefix: string): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return `${prefix}-${[...randomBytes(8)].map((b) => alphabet[b % alphabet.length]).join("")}`;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the launcher's RBAC covers exactly what its code calls", () => {
  let sim: KubeSim;
  let dataRoot: string;
  let resourceTypes: NonNullable<KubernetesBackendOptions["resourceTypes"]>;
  let namespace: string;
  const used = new Set<string>();
  const outsideNamespace: string[] = [];

  before(async () => {
    // The launcher as deployed: the namespace and resource types its configuration resolves to.
    const dev = new Rendered(checkDocuments(renderOverlay("dev"), odinNamespace).objects);
    const launcher = (await checkApps(dev)).apps.find((a) => a.app === "k8s-launcher");
    assert.ok(launcher?.config, "the dev overlay's launcher configuration is valid");
    namespace = String(launcher.config.namespace);
    resourceTypes = String(launcher.config.resourceTypes)
      .split(",")
      .map((s) => s.trim()) as typeof resourceTypes;

    sim = await startKubeSim();
    dataRoot = mkdtempSync(join(tmpdir(), "odin-deploy-rbac-"));
    const events: TaskStateEvent[] = [];
    const backend = new KubernetesBackend({
      kubeConfig: sim.kubeConfig(),
      manifest: { namespace },
      dataRoot,
      qps: 1000,
      burst: 1000,
      retry: { baseDelayMs: 20, maxDelayMs: 200 },
      resourceTypes,
    });
    const reported = (id: string, task: string, state: string) =>
      events.some((e) => e.runId === id && e.task === task && e.state === state);
    try {
      await backend.start((e) => {
        events.push(e);
        return Promise.resolve();
      });
      await Promise.all(
        resourceTypes.map(async (kind) => {
          const id = runId(`rbac-${kind.toLowerCase()}`);
          const spec = (name: string, script: object): LaunchSpec => ({
            runId: id,
            pipeline: "tests/rbac",
            commit: "0123456789abcdef0123456789abcdef01234567",
            task: taskWithDefaults({
              name,
              image: "registry.example/odin-rbac:1",
              command: ["train"],
              resourceType: kind,
              numWorkers: 2,
              annotations: { [SCRIPT_ANNOTATION]: JSON.stringify(script) },
            }),
            attempt: 1,
            paths: {
              rootPath: "/data/pipelines",
              workPath: "/data/pipelines/tests/rbac",
              dataPath: dataRoot,
              runPath: join(dataRoot, id),
              taskPath: join(dataRoot, id, name),
            },
          });
          const ok = spec("ok", {
            runMs: 400,
            startMs: 50,
            logs: ["step 1", "step 2"],
            spreadLogs: true,
          });
          const ref = { runId: id, task: "ok", attempt: 1 };
          // Launch, and follow the logs while it runs.
          assert.equal((await backend.launch(ok)).alreadyExisted, false);
          await waitFor(() => reported(id, "ok", "RUNNING"), `${kind} ok RUNNING`);
          const followed: string[] = [];
          for await (const line of backend.logs(ref, { follow: true })) followed.push(line.line);
          await waitFor(() => reported(id, "ok", "SUCCEEDED"), `${kind} ok SUCCEEDED`);
          assert.ok(followed.length > 0, `${kind}: logs followed`);
          // A repeated launch finds the object there (create → 409 → get).
          assert.equal((await backend.launch(ok)).alreadyExisted, true);
          const lines: string[] = [];
          for await (const line of backend.logs(ref, { follow: false })) lines.push(line.line);
          assert.ok(
            lines.some((l) => l.includes("step 2")),
            `${kind}: logs read`,
          );
          assert.ok((await backend.events(ref)).length > 0, `${kind}: events listed`);
          // Cancel a running task, then delete the run with its data.
          await backend.launch(spec("forever", { runForever: true }));
          await waitFor(() => reported(id, "forever", "RUNNING"), `${kind} forever RUNNING`);
          assert.ok(
            (await backend.cancel({ runId: id, task: "forever" })) > 0,
            `${kind}: cancelled`,
          );
          const deleted = await backend.deleteRun(id, { purgeData: true });
          assert.ok(deleted.deleted > 0, `${kind}: run objects deleted`);
        }),
      );
    } finally {
      await backend.close();
    }
    for (const rec of sim.requests) {
      const p = permissionOf(rec);
      if (p === undefined) continue;
      used.add(p.permission);
      // Nodes are cluster-scoped: the GPU inventory's informer lists and watches them.
      if (p.namespace !== namespace && !/^\/api\/v1\/nodes$/.test(rec.path))
        outsideNamespace.push(`${rec.method} ${rec.path}${rec.query ? `?${rec.query}` : ""}`);
    }
  });

  after(async () => {
    await sim?.close();
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  });

  test("every request stays in the launcher's namespace (its Role is namespaced), but reading nodes", () => {
    assert.deepEqual(outsideNamespace, []);
  });

  for (const overlay of overlays) {
    test(`deploy/overlays/${overlay}: the Role bound to the launcher's service account grants exactly the permissions used`, () => {
      const r = new Rendered(checkDocuments(renderOverlay(overlay), odinNamespace).objects);
      const { role, rules, problems } = launcherRules(r);
      assert.deepEqual(problems, []);
      const granted = grantedBy(rules);
      const usedList = [...used].sort();
      assert.deepEqual(
        {
          missing: usedList.filter((p) => !granted.includes(p)),
          unused: granted.filter((p) => !used.has(p)),
        },
        { missing: [], unused: [] },
        `Role ${role} against the launcher's requests`,
      );
    });
  }
});

test("permissionOf maps requests the way the API server's authorizer does", () => {
  const cases: [string, string, boolean, string | undefined][] = [
    ["GET", "/api/v1/namespaces/odin/pods", false, "list /pods"],
    ["GET", "/api/v1/namespaces/odin/pods", true, "watch /pods"],
    ["GET", "/api/v1/namespaces/odin/pods/p1", false, "get /pods"],
    ["GET", "/api/v1/namespaces/odin/pods/p1/log", false, "get /pods/log"],
    ["POST", "/apis/batch/v1/namespaces/odin/jobs", false, "create batch/jobs"],
    ["PATCH", "/apis/kubeflow.org/v1/namespaces/odin/tfjobs/j", false, "patch kubeflow.org/tfjobs"],
    ["PUT", "/apis/batch/v1/namespaces/odin/jobs/j/status", false, "update batch/jobs/status"],
    ["DELETE", "/api/v1/namespaces/odin/pods/p1", false, "delete /pods"],
    ["DELETE", "/api/v1/namespaces/odin/pods", false, "deletecollection /pods"],
    ["GET", "/api/v1/pods", true, "watch /pods"],
    ["GET", "/api/v1/namespaces/odin", false, "get /namespaces"],
    ["GET", "/apis/batch/v1", false, undefined],
  ];
  for (const [method, path, watch, expected] of cases)
    assert.equal(permissionOf({ method, path, watch })?.permission, expected, `${method} ${path}`);
  assert.equal(
    permissionOf({ method: "GET", path: "/api/v1/pods", watch: false })?.namespace,
    undefined,
  );
  assert.deepEqual(
    grantedBy([{ apiGroups: ["", "batch"], resources: ["pods"], verbs: ["get", "list"] }]),
    ["get /pods", "get batch/pods", "list /pods", "list batch/pods"],
  );
});
