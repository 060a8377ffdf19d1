// Checks of a rendered overlay. Each returns one line per problem ("Kind/name …: what is wrong"),
// so a failing test says everything that is wrong at once.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseTokensFile, readConfig, type ConfigSchema, type ConfigVar } from "@odin/service-kit";
import {
  clusterScopedKinds,
  type Container,
  type PodSpec,
  type Probe,
  refOf,
  type Rendered,
  type RoleBinding,
  type Service,
  type Volume,
  type Workload,
} from "./model.js";
import { type K8sObject, repoRoot } from "./render.js";

// ------------------------------------------------------------------ objects

/** Every document is an object with apiVersion, kind, metadata.name, in `namespace` if namespaced; no duplicates. */
export function checkDocuments(
  docs: readonly unknown[],
  namespace: string,
): { objects: K8sObject[]; problems: string[] } {
  const problems: string[] = [];
  const objects: K8sObject[] = [];
  const seen = new Set<string>();
  docs.forEach((doc, i) => {
    const where = `document ${i + 1}`;
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
      problems.push(`${where}: not a mapping`);
      return;
    }
    const o = doc as Partial<K8sObject>;
    const name = o.metadata?.name;
    if (typeof o.apiVersion !== "string" || o.apiVersion === "")
      problems.push(`${where} (${String(o.kind)}/${String(name)}): no apiVersion`);
    if (typeof o.kind !== "string" || o.kind === "") problems.push(`${where}: no kind`);
    if (typeof name !== "string" || name === "") {
      problems.push(`${where} (${String(o.kind)}): no metadata.name`);
      return;
    }
    if (typeof o.kind !== "string") return;
    const ref = `${o.kind}/${name}`;
    if (clusterScopedKinds.has(o.kind)) {
      if (o.metadata?.namespace !== undefined)
        problems.push(`${ref}: cluster-scoped but has namespace ${o.metadata.namespace}`);
    } else if (o.metadata?.namespace !== namespace) {
      problems.push(`${ref}: namespace is ${String(o.metadata?.namespace)}, expected ${namespace}`);
    }
    if (seen.has(ref)) problems.push(`${ref}: rendered twice`);
    seen.add(ref);
    objects.push(o as K8sObject);
  });
  return { objects, problems };
}

// ------------------------------------------------------------------ workloads

/** The app a container runs: `apps/<app>/dist/main.js` as its first argument. */
export function appOf(c: Container): string | undefined {
  const m = /^apps\/([a-z0-9-]+)\/dist\/main\.js$/.exec(c.args?.[0] ?? "");
  return m?.[1];
}

/** Whether a container runs the Odin image (repository name `odin`, any registry and tag). */
export function isOdinImage(image: string | undefined): boolean {
  if (image === undefined) return false;
  const withoutDigest = image.split("@")[0] ?? "";
  const lastSlash = withoutDigest.lastIndexOf("/");
  const repoAndTag = withoutDigest.slice(lastSlash + 1);
  return repoAndTag.split(":")[0] === "odin";
}

function allContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

function probePort(p: Probe): number | string | undefined {
  return p.grpc?.port ?? p.httpGet?.port ?? p.tcpSocket?.port;
}

function declaresPort(c: Container, port: number | string): boolean {
  return (c.ports ?? []).some((p) =>
    typeof port === "number" ? p.containerPort === port : p.name === port,
  );
}

function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The workloads whose pods a label selector selects. */
export function selectedWorkloads(r: Rendered, selector: Record<string, string>): Workload[] {
  return r.workloads().filter((w) => labelsMatch(selector, w.spec.template.metadata?.labels ?? {}));
}

/** Pod spec, containers, probes, volumes and the objects they reference, security. */
export function checkWorkloads(r: Rendered): string[] {
  const problems: string[] = [];
  for (const w of r.workloads()) {
    const ref = refOf(w);
    const pod = w.spec.template.spec;
    const selector = w.spec.selector?.matchLabels ?? {};
    const labels = w.spec.template.metadata?.labels ?? {};
    if (Object.keys(selector).length === 0) problems.push(`${ref}: empty selector`);
    if (w.spec.selector?.matchExpressions?.length)
      problems.push(`${ref}: selector uses matchExpressions (not checked here)`);
    if (!labelsMatch(selector, labels))
      problems.push(
        `${ref}: selector ${JSON.stringify(selector)} does not match template labels ${JSON.stringify(labels)}`,
      );
    if (!Array.isArray(pod.containers) || pod.containers.length === 0) {
      problems.push(`${ref}: no containers`);
      continue;
    }

    const volumes = new Map<string, Volume>((pod.volumes ?? []).map((v) => [v.name, v]));
    const claimTemplates = new Set((w.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name));
    problems.push(...checkVolumeSources(r, ref, pod.volumes ?? []));
    for (const t of w.spec.volumeClaimTemplates ?? []) {
      if (!t.spec?.resources?.requests?.storage)
        problems.push(`${ref}: volumeClaimTemplate ${t.metadata.name} requests no storage`);
      if (!t.spec?.accessModes?.length)
        problems.push(`${ref}: volumeClaimTemplate ${t.metadata.name} has no accessModes`);
    }

    if (pod.serviceAccountName !== undefined && !r.get("ServiceAccount", pod.serviceAccountName))
      problems.push(`${ref}: serviceAccountName ${pod.serviceAccountName} is not rendered`);

    const podNonRoot = pod.securityContext?.runAsNonRoot === true;
    if (pod.securityContext?.runAsUser === 0) problems.push(`${ref}: pod runs as root (UID 0)`);

    for (const c of allContainers(pod)) {
      const cref = `${ref} container ${c.name}`;
      const main = pod.containers.includes(c);
      if (typeof c.image !== "string" || c.image === "") problems.push(`${cref}: no image`);
      const req = c.resources?.requests ?? {};
      if (req.cpu === undefined || req.memory === undefined)
        problems.push(`${cref}: resources.requests needs cpu and memory`);
      if (c.resources?.limits?.memory === undefined) problems.push(`${cref}: no memory limit`);

      if (main) {
        if (!c.readinessProbe) problems.push(`${cref}: no readinessProbe`);
        if (!c.livenessProbe) problems.push(`${cref}: no livenessProbe`);
      }
      for (const [kind, probe] of [
        ["readinessProbe", c.readinessProbe],
        ["livenessProbe", c.livenessProbe],
        ["startupProbe", c.startupProbe],
      ] as const) {
        if (probe === undefined) continue;
        const port = probePort(probe);
        if (port === undefined) {
          if (!probe.exec) problems.push(`${cref}: ${kind} has no handler`);
        } else if (!declaresPort(c, port)) {
          problems.push(`${cref}: ${kind} port ${port} is not a declared containerPort`);
        }
      }

      for (const m of c.volumeMounts ?? []) {
        if (!volumes.has(m.name) && !claimTemplates.has(m.name))
          problems.push(`${cref}: volumeMount ${m.name} names no volume of the pod`);
      }

      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef;
        if (s && !s.optional) {
          const data = r.secretData(s.name);
          if (data === undefined)
            problems.push(`${cref}: env ${e.name} reads Secret ${s.name}, which is not rendered`);
          else if (!data.has(s.key))
            problems.push(`${cref}: env ${e.name} reads key ${s.key} Secret ${s.name} lacks`);
        }
        const cm = e.valueFrom?.configMapKeyRef;
        if (cm && !cm.optional) {
          const data = r.configMapData(cm.name);
          if (data === undefined)
            problems.push(
              `${cref}: env ${e.name} reads ConfigMap ${cm.name}, which is not rendered`,
            );
          else if (!data.has(cm.key))
            problems.push(`${cref}: env ${e.name} reads key ${cm.key} ConfigMap ${cm.name} lacks`);
        }
      }
      if (c.envFrom?.length)
        problems.push(`${cref}: envFrom hides which variables are set; list them in env`);

      const sc = c.securityContext ?? {};
      if (!podNonRoot && sc.runAsNonRoot !== true)
        problems.push(`${cref}: runAsNonRoot is not set (pod or container)`);
      if (sc.runAsUser === 0) problems.push(`${cref}: runs as root (UID 0)`);
      if (sc.privileged) problems.push(`${cref}: privileged`);
      if (sc.allowPrivilegeEscalation !== false)
        problems.push(`${cref}: allowPrivilegeEscalation is not false`);
      if (sc.readOnlyRootFilesystem !== true)
        problems.push(`${cref}: readOnlyRootFilesystem is not true`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL"))
        problems.push(`${cref}: capabilities are not dropped (drop: [ALL])`);
    }
  }
  return problems;
}

function checkVolumeSources(r: Rendered, ref: string, volumes: readonly Volume[]): string[] {
  const problems: string[] = [];
  for (const v of volumes) {
    const where = `${ref} volume ${v.name}`;
    const claim = v.persistentVolumeClaim?.claimName;
    if (claim !== undefined && !r.get("PersistentVolumeClaim", claim))
      problems.push(`${where}: PersistentVolumeClaim ${claim} is not rendered`);
    const secret = v.secret;
    if (secret && !secret.optional) {
      const data = r.secretData(secret.secretName);
      if (data === undefined)
        problems.push(`${where}: Secret ${secret.secretName} is not rendered`);
      else
        for (const item of secret.items ?? [])
          if (!data.has(item.key))
            problems.push(`${where}: Secret ${secret.secretName} has no key ${item.key}`);
    }
    const cm = v.configMap;
    if (cm && !cm.optional) {
      const data = r.configMapData(cm.name);
      if (data === undefined) problems.push(`${where}: ConfigMap ${cm.name} is not rendered`);
      else
        for (const item of cm.items ?? [])
          if (!data.has(item.key))
            problems.push(`${where}: ConfigMap ${cm.name} has no key ${item.key}`);
    }
  }
  return problems;
}

/** Claims rendered on their own (not StatefulSet templates) request storage and an access mode. */
export function checkClaims(r: Rendered): string[] {
  const problems: string[] = [];
  for (const pvc of r.all<K8sObject & { spec?: Record<string, unknown> }>(
    "PersistentVolumeClaim",
  )) {
    const spec = (pvc.spec ?? {}) as {
      accessModes?: string[];
      resources?: { requests?: { storage?: string } };
    };
    if (!spec.resources?.requests?.storage) problems.push(`${refOf(pvc)}: requests no storage`);
    if (!spec.accessModes?.length) problems.push(`${refOf(pvc)}: no accessModes`);
  }
  return problems;
}

// ------------------------------------------------------------------ services

/** Every Service selects the pods of some workload, and targets a port they declare. */
export function checkServices(r: Rendered): string[] {
  const problems: string[] = [];
  for (const s of r.all<Service>("Service")) {
    const ref = refOf(s);
    const selector = s.spec.selector ?? {};
    if (Object.keys(selector).length === 0) {
      problems.push(`${ref}: no selector`);
      continue;
    }
    const targets = selectedWorkloads(r, selector);
    if (targets.length === 0) {
      problems.push(`${ref}: selector ${JSON.stringify(selector)} selects no workload's pods`);
      continue;
    }
    if (!s.spec.ports?.length) problems.push(`${ref}: no ports`);
    for (const p of s.spec.ports ?? []) {
      const target = p.targetPort ?? p.port;
      for (const w of targets) {
        if (!w.spec.template.spec.containers.some((c) => declaresPort(c, target)))
          problems.push(
            `${ref} port ${p.name ?? p.port}: targetPort ${target} is not a containerPort of ${refOf(w)}`,
          );
      }
    }
  }
  return problems;
}

// ------------------------------------------------------------------ RBAC and service accounts

/** Bindings name rendered roles and service accounts; only pods that use the API get a token. */
export function checkServiceAccounts(r: Rendered): string[] {
  const problems: string[] = [];
  const bound = new Set<string>();
  for (const b of [
    ...r.all<RoleBinding>("RoleBinding"),
    ...r.all<RoleBinding>("ClusterRoleBinding"),
  ]) {
    const ref = refOf(b);
    if (!r.get(b.roleRef.kind, b.roleRef.name))
      problems.push(`${ref}: roleRef ${b.roleRef.kind}/${b.roleRef.name} is not rendered`);
    if (!b.subjects?.length) problems.push(`${ref}: no subjects`);
    for (const s of b.subjects ?? []) {
      if (s.kind !== "ServiceAccount") continue;
      if (!r.get("ServiceAccount", s.name))
        problems.push(`${ref}: subject ServiceAccount ${s.name} is not rendered`);
      if (s.namespace !== b.metadata.namespace && b.kind === "RoleBinding")
        problems.push(
          `${ref}: subject ${s.name} is in namespace ${String(s.namespace)}, the binding in ${String(b.metadata.namespace)}`,
        );
      bound.add(s.name);
    }
  }
  for (const w of r.workloads()) {
    const pod = w.spec.template.spec;
    const saName = pod.serviceAccountName ?? "default";
    const sa = r.get<K8sObject & { automountServiceAccountToken?: boolean }>(
      "ServiceAccount",
      saName,
    );
    const mounted = pod.automountServiceAccountToken ?? sa?.automountServiceAccountToken ?? true;
    if (mounted && !bound.has(saName))
      problems.push(
        `${refOf(w)}: its pods get an API token (service account ${saName}) but no role is bound to it; set automountServiceAccountToken: false`,
      );
  }
  return problems;
}

// ------------------------------------------------------------------ apps and their configuration

/** Loads `apps/<app>/dist/config.js`, which exports one configuration schema. */
export async function loadAppSchema(app: string): Promise<ConfigSchema> {
  const file = join(repoRoot, "apps", app, "dist", "config.js");
  if (!existsSync(file))
    throw new Error(`${file} does not exist: build the app first (npx nx run-many -t build)`);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const schemas = Object.values(mod).filter(isSchema);
  if (schemas.length !== 1 || schemas[0] === undefined)
    throw new Error(`apps/${app}/dist/config.js exports ${schemas.length} schemas, expected one`);
  return schemas[0];
}

function isSchema(value: unknown): value is ConfigSchema {
  if (typeof value !== "object" || value === null) return false;
  const vars = Object.values(value as Record<string, unknown>);
  return (
    vars.length > 0 &&
    vars.every(
      (v) =>
        typeof v === "object" &&
        v !== null &&
        typeof (v as ConfigVar).name === "string" &&
        typeof (v as ConfigVar).type === "string",
    )
  );
}

/** What an env var resolves to in the pod: literal, or read from the rendered Secret/ConfigMap. */
export function containerEnv(r: Rendered, w: Workload, c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const from = e.valueFrom;
    if (from?.secretKeyRef) {
      env[e.name] = r.secretData(from.secretKeyRef.name)?.get(from.secretKeyRef.key) ?? "";
    } else if (from?.configMapKeyRef) {
      env[e.name] = r.configMapData(from.configMapKeyRef.name)?.get(from.configMapKeyRef.key) ?? "";
    } else if (from?.fieldRef) {
      // The downward API's value in a pod of this workload.
      const field = from.fieldRef.fieldPath;
      env[e.name] =
        field === "metadata.namespace"
          ? (w.metadata.namespace ?? "")
          : field === "metadata.name"
            ? `${w.metadata.name}-0`
            : "placeholder";
    } else if (from?.resourceFieldRef) {
      env[e.name] = "1";
    } else {
      env[e.name] = e.value ?? "";
    }
  }
  return env;
}

/** A variable's value as the app reads it (its default when unset), by variable name. */
function valueOf(schema: ConfigSchema, config: Record<string, unknown>, name: string): unknown {
  const key = Object.entries(schema).find(([, v]) => v.name === name)?.[0];
  return key === undefined ? undefined : config[key];
}

/** Which app each address variable must reach (`nats` is the NATS server). */
export const addressTargets: Readonly<Record<string, string>> = {
  ODIN_REPO_SYNC_ADDRESS: "repo-sync",
  ODIN_REGISTRY_ADDRESS: "pipeline-registry",
  ODIN_SCHEDULER_ADDRESS: "dag-scheduler",
  ODIN_LAUNCHER_ADDRESS: "k8s-launcher",
  ODIN_NATS_URL: "nats",
};

/**
 * Paths an app writes (by variable): with a read-only root filesystem they must lie on a
 * writable volume — the shared data volume, which task pods mount too.
 */
export const writtenPaths: Readonly<Record<string, readonly string[]>> = {
  "repo-sync": ["ODIN_ROOT_PATH"],
  "k8s-launcher": ["ODIN_DATA_PATH", "ODIN_LOG_DIR"],
};

function workloadApp(w: Workload): string | undefined {
  for (const c of w.spec.template.spec.containers) {
    const app = appOf(c);
    if (app) return app;
    if ((c.image ?? "").split("/").pop()?.startsWith("nats:")) return "nats";
  }
  return undefined;
}

/**
 * When `host` is a StatefulSet pod's stable name (`nats-1.nats-cluster`, optionally followed by
 * the namespace), the StatefulSet — or what is wrong with the name; undefined for other hosts.
 */
export function statefulPod(r: Rendered, host: string): Workload | string | undefined {
  const [podName = "", serviceName = ""] = host.split(".");
  const m = /^(.+)-(\d+)$/.exec(podName);
  const service = r.get<Service>("Service", serviceName);
  if (!m || service?.spec.clusterIP !== "None") return undefined;
  const set = r.get<Workload>("StatefulSet", m[1] ?? "");
  if (!set) return `no StatefulSet ${String(m[1])} for pod ${podName}`;
  if (set.spec.serviceName !== serviceName)
    return `StatefulSet ${set.metadata.name}'s pods are named through ${String(set.spec.serviceName)}, not ${serviceName}`;
  if (Number(m[2]) >= (set.spec.replicas ?? 1))
    return `StatefulSet ${set.metadata.name} has ${set.spec.replicas ?? 1} replicas: there is no pod ${podName}`;
  return set;
}

function checkAddress(
  r: Rendered,
  where: string,
  name: string,
  value: string,
  namespace: string | undefined,
): string | undefined {
  // A NATS cluster is reached at every node's URL, comma-separated: each must resolve.
  if (value.includes(",")) {
    for (const one of value.split(",")) {
      const p = checkAddress(r, where, name, one.trim(), namespace);
      if (p) return p;
    }
    return undefined;
  }
  let host: string;
  let port: number;
  if (/^[a-z]+:\/\//.test(value)) {
    const url = new URL(value);
    host = url.hostname;
    port = Number(url.port || (url.protocol === "nats:" ? 4222 : 0));
  } else {
    const m = /^([^:]+):(\d+)$/.exec(value);
    if (!m) return `${where}: ${name}=${value} is not host:port`;
    host = m[1] ?? "";
    port = Number(m[2]);
  }
  const pod = statefulPod(r, host);
  if (pod !== undefined) {
    // `<statefulset>-<ordinal>.<headless service>`: that pod, which must exist and declare the port.
    if (typeof pod === "string") return `${where}: ${name}=${value}: ${pod}`;
    const declares = pod.spec.template.spec.containers.some((c) =>
      (c.ports ?? []).some((p) => p.containerPort === port),
    );
    if (!declares) return `${where}: ${name}=${value}: the pods of ${refOf(pod)} declare no port ${port}`;
    const expected = addressTargets[name];
    if (expected !== undefined && workloadApp(pod) !== expected)
      return `${where}: ${name}=${value}: ${refOf(pod)} runs ${String(workloadApp(pod))}, not ${expected}`;
    return undefined;
  }
  const [serviceName = "", ns] = host.split(".");
  if (ns !== undefined && ns !== namespace && ns !== "svc")
    return `${where}: ${name}=${value} points into namespace ${ns}, not ${String(namespace)}`;
  const svc = r.get<Service>("Service", serviceName);
  if (!svc) return `${where}: ${name}=${value}: no Service ${serviceName} is rendered`;
  if (!(svc.spec.ports ?? []).some((p) => p.port === port))
    return `${where}: ${name}=${value}: Service ${serviceName} has no port ${port}`;
  const expected = addressTargets[name];
  if (expected !== undefined) {
    const apps = selectedWorkloads(r, svc.spec.selector ?? {}).map(workloadApp);
    if (!apps.includes(expected))
      return `${where}: ${name}=${value}: Service ${serviceName} selects ${apps.join(", ") || "nothing"}, not ${expected}`;
  }
  return undefined;
}

function underMount(c: Container, path: string) {
  return (c.volumeMounts ?? [])
    .filter((m) => path === m.mountPath || path.startsWith(m.mountPath.replace(/\/?$/, "/")))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

/** The configuration each Odin container's env gives its app, after `readConfig`. */
export interface AppConfig {
  workload: Workload;
  container: Container;
  app: string;
  schema: ConfigSchema;
  env: Record<string, string>;
  /** undefined when readConfig threw (a problem says why). */
  config?: Record<string, unknown>;
}

/**
 * Every Odin container runs an app that is built, with an environment its configuration schema
 * accepts (no unknown variable, nothing missing or malformed), reachable addresses, auth on with
 * a tokens file from a mounted Secret that the services accept, and the paths it writes on the
 * shared data volume.
 */
export async function checkApps(r: Rendered): Promise<{ problems: string[]; apps: AppConfig[] }> {
  const problems: string[] = [];
  const apps: AppConfig[] = [];
  for (const w of r.workloads()) {
    const pod = w.spec.template.spec;
    for (const c of pod.containers) {
      const cref = `${refOf(w)} container ${c.name}`;
      const app = appOf(c);
      if (!isOdinImage(c.image) && app === undefined) continue;
      if (app === undefined) {
        problems.push(
          `${cref}: runs the odin image with args ${JSON.stringify(c.args ?? [])}, not apps/<app>/dist/main.js`,
        );
        continue;
      }
      if (!existsSync(join(repoRoot, "apps", app, "dist", "main.js"))) {
        problems.push(`${cref}: apps/${app}/dist/main.js does not exist after the build`);
        continue;
      }
      if (c.command !== undefined)
        problems.push(`${cref}: sets command; the image's entrypoint (node) must run the app`);
      if (c.workingDir !== undefined && c.workingDir !== "/app")
        problems.push(`${cref}: workingDir ${c.workingDir}; the app paths are relative to /app`);

      const schema = await loadAppSchema(app);
      const env = containerEnv(r, w, c);
      const known = new Set(Object.values(schema).map((v) => v.name));
      for (const name of Object.keys(env))
        if (!known.has(name)) problems.push(`${cref}: ${name} is not a variable ${app} reads`);
      let config: Record<string, unknown> | undefined;
      try {
        config = readConfig(env, schema);
      } catch (err) {
        problems.push(`${cref}: ${app} refuses its configuration: ${(err as Error).message}`);
      }
      apps.push({ workload: w, container: c, app, schema, env, ...(config ? { config } : {}) });
      if (config === undefined) continue;

      for (const name of Object.keys(env)) {
        if (!name.endsWith("_ADDRESS") && name !== "ODIN_NATS_URL") continue;
        const p = checkAddress(r, cref, name, env[name] ?? "", w.metadata.namespace);
        if (p) problems.push(p);
      }

      // The ports the app listens on are the ones the pod declares (and probes and Services use).
      const grpcPort = valueOf(schema, config, "ODIN_GRPC_PORT");
      const grpcDecl = c.ports?.find((p) => p.name === "grpc");
      if (grpcDecl?.containerPort !== grpcPort)
        problems.push(
          `${cref}: ${app} listens on ${String(grpcPort)} but the port named grpc is ${String(grpcDecl?.containerPort)}`,
        );
      for (const [kind, probe] of [
        ["readinessProbe", c.readinessProbe],
        ["livenessProbe", c.livenessProbe],
      ] as const) {
        if (probe && probe.grpc?.port !== grpcPort)
          problems.push(
            `${cref}: ${kind} is not a grpc probe on the gRPC port ${String(grpcPort)}`,
          );
      }
      const metricsPort = valueOf(schema, config, "ODIN_METRICS_PORT");
      const metricsDecl = c.ports?.find((p) => p.name === "metrics");
      if (typeof metricsPort === "number" && metricsPort !== 0) {
        if (metricsDecl?.containerPort !== metricsPort)
          problems.push(
            `${cref}: ${app} serves metrics on ${metricsPort} but the port named metrics is ${String(metricsDecl?.containerPort)}`,
          );
      } else if (metricsDecl) {
        problems.push(`${cref}: declares a metrics port but ${app} serves no metrics`);
      }

      if (known.has("ODIN_AUTH")) {
        if (valueOf(schema, config, "ODIN_AUTH") !== "on")
          problems.push(`${cref}: ODIN_AUTH is not on: every caller would be an admin`);
        problems.push(...checkTokensFile(r, cref, pod, c, env.ODIN_TOKENS_FILE));
      }

      for (const name of writtenPaths[app] ?? []) {
        const path = valueOf(schema, config, name);
        if (typeof path !== "string") continue;
        const mount = underMount(c, path);
        const volume = pod.volumes?.find((v) => v.name === mount?.name);
        if (!mount || mount.readOnly || !volume?.persistentVolumeClaim)
          problems.push(
            `${cref}: ${name}=${path} is not on a writable mount of the shared data volume`,
          );
      }
    }
  }
  problems.push(...checkAcrossApps(apps));
  return { problems, apps };
}

function checkTokensFile(
  r: Rendered,
  cref: string,
  pod: PodSpec,
  c: Container,
  path: string | undefined,
): string[] {
  if (!path) return [`${cref}: ODIN_TOKENS_FILE is not set (required with ODIN_AUTH=on)`];
  const mount = underMount(c, path);
  const volume = pod.volumes?.find((v) => v.name === mount?.name);
  if (!mount || !volume?.secret)
    return [`${cref}: ODIN_TOKENS_FILE=${path} is not in a mounted Secret`];
  const relative = path.slice(mount.mountPath.replace(/\/?$/, "/").length);
  const item = volume.secret.items?.find((i) => i.path === relative);
  const key = volume.secret.items ? item?.key : relative;
  const data = r.secretData(volume.secret.secretName);
  const text = key === undefined ? undefined : data?.get(key);
  if (text === undefined)
    return [
      `${cref}: ODIN_TOKENS_FILE=${path}: Secret ${volume.secret.secretName} has no such file`,
    ];
  try {
    parseTokensFile(text, path);
  } catch (err) {
    return [`${cref}: the services would refuse ${path}: ${(err as Error).message}`];
  }
  return [];
}

/** Settings several apps must agree on. */
function checkAcrossApps(apps: readonly AppConfig[]): string[] {
  const problems: string[] = [];
  const dataPaths = new Map<string, string>();
  for (const a of apps) {
    if (a.config === undefined) continue;
    if (a.app === "dag-scheduler" || a.app === "k8s-launcher") {
      const v = valueOf(a.schema, a.config, "ODIN_DATA_PATH");
      if (typeof v === "string") dataPaths.set(a.app, v);
    }
  }
  const [scheduler, launcher] = [dataPaths.get("dag-scheduler"), dataPaths.get("k8s-launcher")];
  if (scheduler !== undefined && launcher !== undefined && scheduler !== launcher)
    problems.push(
      `ODIN_DATA_PATH differs: dag-scheduler gives runs ${scheduler}, k8s-launcher purges ${launcher}`,
    );
  // repo-sync's checkouts and the launcher's run data: one volume, the one task pods mount.
  const claims = new Set<string>();
  for (const a of apps) {
    if (!writtenPaths[a.app]) continue;
    for (const m of a.container.volumeMounts ?? []) {
      const claim = a.workload.spec.template.spec.volumes?.find((v) => v.name === m.name)
        ?.persistentVolumeClaim?.claimName;
      if (claim) claims.add(claim);
    }
  }
  if (claims.size > 1)
    problems.push(`ROOT_PATH and DATA_PATH are on different claims: ${[...claims].join(", ")}`);
  const kinds = new Set(apps.map((a) => a.app));
  for (const app of ["repo-sync", "pipeline-registry", "dag-scheduler", "k8s-launcher", "gateway"])
    if (!kinds.has(app)) problems.push(`no workload runs ${app}`);
  return problems;
}

// ------------------------------------------------------------------ sizes

/** A CPU or memory quantity in base units (cores, bytes). */
export function quantity(q: string | number | undefined): number {
  if (q === undefined) return NaN;
  if (typeof q === "number") return q;
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q.trim());
  if (!m) return NaN;
  const factor: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(m[1]) * (m[2] ? (factor[m[2]] ?? NaN) : 1);
}
