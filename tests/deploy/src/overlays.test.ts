// Every overlay of deploy/ rendered with `kubectl kustomize` (the old kustomize of Debian's
// kubectl 1.20 as well as current ones) and checked object by object.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseTokensFile } from "@odin/service-kit";
import {
  checkApps,
  containerEnv,
  checkClaims,
  checkDocuments,
  checkServiceAccounts,
  checkServices,
  checkWorkloads,
  quantity,
} from "./checks.js";
import { type PodSpec, Rendered, type Service, type Workload } from "./model.js";
import {
  type K8sObject,
  odinNamespace,
  type Overlay,
  overlays,
  renderOverlay,
} from "./render.js";

const rendered = new Map<Overlay, { docs: unknown[]; r: Rendered; problems: string[] }>();

/** Renders an overlay once per run (a failure to render fails every test that needs it). */
function render(overlay: Overlay): { docs: unknown[]; r: Rendered; problems: string[] } {
  let result = rendered.get(overlay);
  if (result === undefined) {
    const docs = renderOverlay(overlay);
    const { objects, problems } = checkDocuments(docs, odinNamespace);
    result = { docs, r: new Rendered(objects), problems };
    rendered.set(overlay, result);
  }
  return result;
}

const expectedReplicas: Record<Overlay, Record<string, number>> = {
  dev: {
    "Deployment/repo-sync": 1,
    "Deployment/pipeline-registry": 1,
    "Deployment/dag-scheduler": 1,
    "Deployment/k8s-launcher": 1,
    "Deployment/gateway": 1,
    "StatefulSet/nats": 1,
  },
  prod: {
    "Deployment/repo-sync": 2,
    "Deployment/pipeline-registry": 2,
    "Deployment/dag-scheduler": 2,
    "Deployment/k8s-launcher": 2,
    "Deployment/gateway": 2,
    "StatefulSet/nats": 3,
  },
};

for (const overlay of overlays) {
  describe(`deploy/overlays/${overlay}`, () => {
    test("renders into objects with apiVersion, kind and metadata.name, namespaced ones in odin", () => {
      const { docs, r, problems } = render(overlay);
      assert.deepEqual(problems, []);
      assert.equal(r.objects.length, docs.length);
      for (const kind of [
        "Namespace",
        "Deployment",
        "StatefulSet",
        "Service",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Secret",
        "PersistentVolumeClaim",
      ])
        assert.ok(r.all(kind).length > 0, `renders a ${kind}`);
    });

    test("workloads: selectors match, images, requests and limits, probes on declared ports, every volume and the object it names, non-root and read-only", () => {
      const { r } = render(overlay);
      assert.deepEqual(checkWorkloads(r), []);
      assert.deepEqual(checkClaims(r), []);
    });

    test("every Service selects a workload's pods and targets a port they declare", () => {
      assert.deepEqual(checkServices(render(overlay).r), []);
    });

    test("role bindings name rendered roles and service accounts; only the launcher's pods get an API token", () => {
      const { r } = render(overlay);
      assert.deepEqual(checkServiceAccounts(r), []);
      const launcher = r.get<Workload>("Deployment", "k8s-launcher");
      assert.ok(launcher);
      const sa = launcher.spec.template.spec.serviceAccountName;
      assert.ok(
        r
          .all<{ subjects?: { name: string }[] } & Workload>("RoleBinding")
          .some((b) => (b.subjects ?? []).some((s) => s.name === sa)),
        "the launcher's service account is bound to a Role",
      );
    });

    test("each Odin container runs a built app whose configuration schema accepts its env: no unknown variable, nothing missing or malformed, addresses and paths resolve", async () => {
      const { r } = render(overlay);
      const { problems, apps } = await checkApps(r);
      assert.deepEqual(problems, []);
      assert.deepEqual(apps.map((a) => a.app).sort(), [
        "dag-scheduler",
        "gateway",
        "k8s-launcher",
        "pipeline-registry",
        "repo-sync",
      ]);
    });

    test("replicas", () => {
      const { r } = render(overlay);
      const replicas = Object.fromEntries(
        r.workloads().map((w) => [`${w.kind}/${w.metadata.name}`, w.spec.replicas ?? 1]),
      );
      assert.deepEqual(replicas, expectedReplicas[overlay]);
    });

    test("repo-sync: its replicas share the volume through a lease in NATS; rollouts keep one serving", () => {
      const { r } = render(overlay);
      const repoSync = r.get<Workload>("Deployment", "repo-sync");
      assert.ok(repoSync);
      const env = containerEnv(r, repoSync, repoSync.spec.template.spec.containers[0]!);
      assert.ok(env.ODIN_NATS_URL, "the lease lives in NATS: without it two replicas would both write");
      assert.ok(env.ODIN_ADVERTISE_HOST, "followers reach the leader at its pod IP");
      assert.equal(repoSync.spec.strategy?.type, "RollingUpdate");
      assert.equal(repoSync.spec.strategy?.rollingUpdate?.maxUnavailable, 0);
    });

    test("NATS: every node routed to every other, every service listing every node and keeping enough copies", async () => {
      const { r } = render(overlay);
      const nats = r.get<Workload>("StatefulSet", "nats");
      assert.ok(nats);
      const nodes = nats.spec.replicas ?? 1;
      const headless = r.get<Service>("Service", nats.spec.serviceName ?? "");
      assert.equal(headless?.spec.clusterIP, "None", "pods are named through a headless Service");
      assert.equal(headless?.spec.publishNotReadyAddresses, true);
      assert.equal(nats.spec.podManagementPolicy, "Parallel", "members start together (quorum)");
      const c = nats.spec.template.spec.containers[0]!;
      const args = c.args ?? [];
      const arg = (flag: string) => args[args.indexOf(flag) + 1];
      const podUrls = (port: number) =>
        Array.from({ length: nodes }, (_, i) => `nats://nats-${i}.${nats.spec.serviceName}:${port}`);
      if (nodes > 1) {
        assert.deepEqual(arg("--routes")?.split(","), podUrls(6222));
        assert.equal(arg("--server_name"), "$(POD_NAME)");
        assert.ok(
          c.env?.some((e) => e.name === "POD_NAME" && e.valueFrom?.fieldRef?.fieldPath === "metadata.name"),
        );
        assert.ok(arg("--cluster_name"));
        const pdb = r.get<K8sObject & { spec: { maxUnavailable?: number } }>("PodDisruptionBudget", "nats");
        assert.equal(pdb?.spec.maxUnavailable, 1, "drains keep a quorum");
      } else {
        assert.equal(args.indexOf("--routes"), -1);
      }
      const { apps } = await checkApps(r);
      const clients = apps.filter((a) => a.env.ODIN_NATS_URL !== undefined);
      assert.deepEqual(clients.map((a) => a.app).sort(), [
        "dag-scheduler",
        "k8s-launcher",
        "pipeline-registry",
        "repo-sync",
      ]);
      for (const a of clients) {
        const copies = Number(a.env.ODIN_NATS_REPLICAS ?? "1");
        if (nodes > 1) {
          assert.deepEqual(a.env.ODIN_NATS_URL?.split(","), podUrls(4222), `${a.app} lists every node`);
          assert.equal(copies, Math.min(3, nodes), `${a.app}: ODIN_NATS_REPLICAS`);
        } else {
          assert.equal(copies, 1, `${a.app}: one server keeps one copy`);
        }
      }
    });
    test("the gateway is the one address: a ClusterIP Service on port 50051 named grpc", () => {
      const gateway = render(overlay).r.get<Service>("Service", "gateway");
      assert.ok(gateway, "a Service named gateway");
      assert.equal(gateway.spec.type ?? "ClusterIP", "ClusterIP");
      assert.ok(gateway.spec.ports?.some((p) => p.port === 50051 && p.name === "grpc"));
    });

    test("the placeholder secrets grant nothing: the shipped service token is not in the shipped tokens file", () => {
      const { r } = render(overlay);
      const tokensSecret = r
        .all("Secret")
        .find((s) => r.secretData(s.metadata.name)?.has("tokens.json"));
      const serviceSecret = r
        .all("Secret")
        .find((s) => s.metadata.name.startsWith("odin-service-token"));
      assert.ok(tokensSecret && serviceSecret);
      const store = parseTokensFile(
        r.secretData(tokensSecret.metadata.name)?.get("tokens.json") ?? "",
        "tokens.json",
      );
      const token = r.secretData(serviceSecret.metadata.name)?.get("token") ?? "";
      assert.equal(store.authenticate(token), undefined);
      assert.ok(store.size > 0);
    });

    test("the shared data volume: one claim for ROOT_PATH and DATA_PATH, mounted by repo-sync and the launcher only", () => {
      const { r } = render(overlay);
      const claimsOf = (pod: PodSpec) =>
        (pod.volumes ?? []).flatMap((v) =>
          v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : [],
        );
      const mounting = r
        .workloads()
        .filter((w) => claimsOf(w.spec.template.spec).includes("odin-data"))
        .map((w) => w.metadata.name)
        .sort();
      assert.deepEqual(mounting, ["k8s-launcher", "repo-sync"]);
      const pvc = r.get<Workload & { spec: { accessModes?: string[] } }>(
        "PersistentVolumeClaim",
        "odin-data",
      );
      // Task pods on any node mount it: prod needs ReadWriteMany (dev runs on one node).
      if (overlay === "prod") assert.deepEqual(pvc?.spec.accessModes, ["ReadWriteMany"]);
    });
  });
}

test("prod requests more CPU and memory than dev for every Odin service and NATS", () => {
  const [dev, prod] = [render("dev").r, render("prod").r];
  for (const w of prod.workloads()) {
    for (const c of w.spec.template.spec.containers) {
      const devContainer = dev
        .workloads()
        .find((d) => d.kind === w.kind && d.metadata.name === w.metadata.name)
        ?.spec.template.spec.containers.find((d) => d.name === c.name);
      assert.ok(devContainer, `${w.metadata.name}/${c.name} is in dev too`);
      for (const resource of ["cpu", "memory"]) {
        const [d, p] = [
          quantity(devContainer.resources?.requests?.[resource]),
          quantity(c.resources?.requests?.[resource]),
        ];
        assert.ok(p > d, `${w.metadata.name}/${c.name}: prod ${resource} ${p} > dev ${d}`);
      }
    }
  }
});
