// The pod-level pieces every resource type shares: volumes and mounts, the main container, the
// init container that creates TASK_PATH, and the pod spec around them.
import { posix } from "node:path";
import type {
  V1Container,
  V1EnvVar,
  V1PodSecurityContext,
  V1PodSpec,
  V1ResourceRequirements,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { nameHash, taskId, toDnsLabel, type Task } from "@odin/pipeline-spec";
import { ManifestError, type LaunchSpec, type ManifestConfig } from "./config.js";

/** Termination message policy of Odin's containers: the last log lines when no message is written. */
export const terminationMessagePolicy = "FallbackToLogsOnError";

/** Extended resource name of NVIDIA GPUs. */
export const gpuResource = "nvidia.com/gpu";

/** Resources of the init container that creates `TASK_PATH` (it only runs `mkdir`). */
export const initContainerResources: Readonly<V1ResourceRequirements> = Object.freeze({
  limits: Object.freeze({ cpu: "100m", memory: "32Mi" }),
  requests: Object.freeze({ cpu: "100m", memory: "32Mi" }),
});

const initContainerName = "odin-init";

/** The task's volumes, the main container's mounts, and the mounts `TASK_PATH` lies under. */
export interface VolumePlan {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  /** Mounts (of `task.mounts`) that hold `TASK_PATH` strictly below their path, in mount order. */
  taskPathMounts: V1VolumeMount[];
}

interface VolumeSource {
  /** Identity of the underlying storage: two mounts of one source share one volume. */
  key: string;
  /** Name the task gave it; kept unless another source already uses it. */
  preferred: string;
  /** Short word for the kind, used when the preferred name must change. */
  tag: string;
  volume: Omit<V1Volume, "name">;
}

/**
 * Chooses a volume name for every distinct source. A source keeps the name the task gave it
 * (turned into a DNS label if it is not one, e.g. a secret `tls.cert`) unless an earlier source
 * has the same name; in that order — ephemeral volumes, PVC mounts, secrets, config maps — the
 * first keeps it and each later one becomes `<kind>-<name>` (`secret-data`, `config-data`,
 * `pvc-data`, `scratch-data`), or `<name>-<hash of the source>` if that is taken too. Names kept
 * in the first pass are never taken by a renamed source, and the order is fixed, so the same task
 * always gets the same names and the user's own volume names (ephemeral and PVC) win.
 */
function nameVolumes(sources: readonly VolumeSource[]): Map<string, string> {
  const names = new Map<string, string>();
  const used = new Set<string>();
  for (const source of sources) {
    const name = toDnsLabel(source.preferred);
    if (names.has(source.key) || used.has(name)) continue;
    used.add(name);
    names.set(source.key, name);
  }
  for (const source of sources) {
    if (names.has(source.key)) continue;
    const candidates = [
      toDnsLabel(`${source.tag}-${source.preferred}`),
      toDnsLabel(`${source.preferred}-${nameHash(source.key)}`),
    ];
    let name = candidates.find((c) => !used.has(c));
    for (let i = 2; name === undefined; i++) {
      const c = toDnsLabel(`${source.tag}-${source.preferred}-${i}`);
      if (!used.has(c)) name = c;
    }
    used.add(name);
    names.set(source.key, name);
  }
  return names;
}

const emptyDirKey = (name: string) => `emptyDir\0${name}`;
const claimKey = (name: string, claim: string) => `pvc\0${name}\0${claim}`;
const secretKey = (name: string, mode: number) => `secret\0${name}\0${mode}`;
const configMapKey = (name: string) => `configMap\0${name}`;

/** Default file mode of secret volumes (0644), as in the original. */
export const defaultSecretMode = 0o644;

/** Maps the task's mounts, ephemeral volumes, secrets and config maps to volumes and mounts. */
export function planVolumes(task: Task, taskPath: string): VolumePlan {
  const sources: VolumeSource[] = [];
  for (const e of task.ephemeralVolumes) {
    const emptyDir: NonNullable<V1Volume["emptyDir"]> = {};
    if (e.medium) emptyDir.medium = e.medium;
    if (e.sizeLimit !== undefined) emptyDir.sizeLimit = e.sizeLimit;
    sources.push({
      key: emptyDirKey(e.name),
      preferred: e.name,
      tag: "scratch",
      volume: { emptyDir },
    });
  }
  for (const m of task.mounts) {
    if (m.claim === undefined) continue;
    sources.push({
      key: claimKey(m.name, m.claim),
      preferred: m.name,
      tag: "pvc",
      volume: { persistentVolumeClaim: { claimName: m.claim } },
    });
  }
  for (const s of task.secrets) {
    const mode = s.mode ?? defaultSecretMode;
    sources.push({
      key: secretKey(s.name, mode),
      preferred: s.name,
      tag: "secret",
      volume: { secret: { secretName: s.name, defaultMode: mode } },
    });
  }
  for (const c of task.configMaps) {
    sources.push({
      key: configMapKey(c.name),
      preferred: c.name,
      tag: "config",
      volume: { configMap: { name: c.name } },
    });
  }

  const names = nameVolumes(sources);
  const volumes: V1Volume[] = [];
  const seen = new Set<string>();
  for (const source of sources) {
    if (seen.has(source.key)) continue;
    seen.add(source.key);
    volumes.push({ name: names.get(source.key)!, ...source.volume });
  }

  const ephemeral = new Set(task.ephemeralVolumes.map((e) => e.name));
  const mount = (key: string, path: string, subPath?: string): V1VolumeMount => {
    const m: V1VolumeMount = { name: names.get(key)!, mountPath: path };
    if (subPath) m.subPath = subPath;
    return m;
  };
  const mounts: V1VolumeMount[] = [];
  const taskPathMounts: V1VolumeMount[] = [];
  for (const m of task.mounts) {
    if (m.claim === undefined && !ephemeral.has(m.name)) {
      throw new ManifestError(
        `task ${task.name}: mount "${m.name}" at ${m.path} has no claim and no ephemeral volume named "${m.name}"`,
      );
    }
    const vm = mount(
      m.claim === undefined ? emptyDirKey(m.name) : claimKey(m.name, m.claim),
      m.path,
    );
    mounts.push(vm);
    if (isBelow(taskPath, m.path)) taskPathMounts.push(vm);
  }
  for (const s of task.secrets)
    mounts.push(mount(secretKey(s.name, s.mode ?? defaultSecretMode), s.path, s.subPath));
  for (const c of task.configMaps) mounts.push(mount(configMapKey(c.name), c.path, c.subPath));
  return { volumes, mounts, taskPathMounts };
}

/** True when `path` lies strictly below directory `dir` (both absolute POSIX paths). */
export function isBelow(path: string, dir: string): boolean {
  if (!path.startsWith("/") || !dir.startsWith("/")) return false;
  const p = posix.normalize(path).replace(/\/+$/, "");
  const d = posix.normalize(dir).replace(/\/+$/, "");
  return p.startsWith(`${d}/`);
}

/**
 * The environment of Odin's containers: `ODIN_TASK_ID`, `ODIN_RUN_ID`, `ODIN_ATTEMPT` first (so
 * `$(ODIN_TASK_ID)` works in later values), then the configured env, then the task's `env`. A
 * task value replaces a configured one; neither may replace Odin's ids.
 */
export function containerEnv(spec: LaunchSpec, config: ManifestConfig): V1EnvVar[] {
  const env = new Map<string, string>([
    ["ODIN_TASK_ID", taskId(spec.runId, spec.task.name)],
    ["ODIN_RUN_ID", spec.runId],
    ["ODIN_ATTEMPT", String(spec.attempt)],
  ]);
  const reserved = new Set(env.keys());
  for (const layer of [config.env ?? {}, spec.task.env]) {
    for (const [name, value] of Object.entries(layer)) {
      if (!reserved.has(name)) env.set(name, value);
    }
  }
  return [...env].map(([name, value]) => ({ name, value }));
}

/** cpu and memory from the task, GPUs as given (`nvidia.com/gpu` only when more than 0). */
export function containerResources(task: Task, gpus: number): V1ResourceRequirements | undefined {
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  if (task.cpu?.limits !== undefined) limits.cpu = task.cpu.limits;
  if (task.memory?.limits !== undefined) limits.memory = task.memory.limits;
  if (gpus > 0) limits[gpuResource] = String(gpus);
  if (task.cpu?.requests !== undefined) requests.cpu = task.cpu.requests;
  if (task.memory?.requests !== undefined) requests.memory = task.memory.requests;
  const out: V1ResourceRequirements = {};
  if (Object.keys(limits).length > 0) out.limits = limits;
  if (Object.keys(requests).length > 0) out.requests = requests;
  return out.limits || out.requests ? out : undefined;
}

/** What differs between the pods of one task: the container's name, GPUs and program. */
export interface PodRole {
  containerName: string;
  gpus: number;
  /** Replaces the task's command and args (MPI workers); an empty list means the image's own. */
  command?: readonly string[];
}

/** Builds the pod specs of one task attempt; one instance per launch. */
export class TaskPods {
  private readonly plan: VolumePlan;
  private readonly env: V1EnvVar[];

  constructor(
    private readonly spec: LaunchSpec,
    private readonly config: ManifestConfig,
  ) {
    this.plan = planVolumes(spec.task, spec.paths.taskPath);
    this.env = containerEnv(spec, config);
  }

  /** The main container of a pod in the given role. */
  container(role: PodRole): V1Container {
    const { task } = this.spec;
    const c: V1Container = {
      name: role.containerName,
      image: task.image,
      imagePullPolicy: task.pullPolicy,
    };
    if (role.command === undefined) {
      c.command = [...task.command];
      c.args = [...task.args];
    } else if (role.command.length > 0) {
      c.command = [...role.command];
    }
    c.env = this.env.map((e) => ({ ...e }));
    const resources = containerResources(task, role.gpus);
    if (resources) c.resources = resources;
    if (this.plan.mounts.length > 0) c.volumeMounts = this.plan.mounts.map((m) => ({ ...m }));
    c.terminationMessagePolicy = terminationMessagePolicy;
    return c;
  }

  /**
   * The init container that creates `TASK_PATH`, or none when `TASK_PATH` is not on one of the
   * task's volumes (a path in the image's own file system is the image's business, and the
   * original created the directory on the shared volume before launching). It runs with the
   * pod's security context, so the directory belongs to the task's user when one is set.
   */
  initContainer(mainName: string): V1Container | undefined {
    if (this.plan.taskPathMounts.length === 0) return undefined;
    return {
      name: mainName === initContainerName ? `${initContainerName}-task-path` : initContainerName,
      image: this.config.initImage,
      imagePullPolicy: "IfNotPresent",
      command: ["mkdir", "-p", posix.normalize(this.spec.paths.taskPath)],
      resources: {
        limits: { ...initContainerResources.limits },
        requests: { ...initContainerResources.requests },
      },
      volumeMounts: this.plan.taskPathMounts.map((m) => ({ ...m })),
      terminationMessagePolicy,
    };
  }

  /** A full pod spec for one role, without `restartPolicy` (callers add it). */
  podSpec(role: PodRole): V1PodSpec {
    const { task } = this.spec;
    const main = this.container(role);
    const spec: V1PodSpec = { containers: [main] };
    const init = this.initContainer(main.name);
    if (init) spec.initContainers = [init];
    if (this.plan.volumes.length > 0)
      spec.volumes = this.plan.volumes.map((v) => structuredClone(v));
    const securityContext = podSecurityContext(task);
    if (securityContext) spec.securityContext = securityContext;
    if (Object.keys(task.nodeSelector).length > 0) spec.nodeSelector = { ...task.nodeSelector };
    if (task.tolerations.length > 0)
      spec.tolerations = task.tolerations.map((t): V1Toleration => ({ ...t }));
    const serviceAccount = task.serviceAccount ?? this.config.serviceAccount;
    if (serviceAccount !== undefined) spec.serviceAccountName = serviceAccount;
    if (this.config.imagePullSecrets.length > 0) {
      spec.imagePullSecrets = this.config.imagePullSecrets.map((name) => ({ name }));
    }
    return spec;
  }
}

function podSecurityContext(task: Task): V1PodSecurityContext | undefined {
  const sc = task.securityContext;
  if (sc === undefined) return undefined;
  const out: V1PodSecurityContext = {};
  if (sc.fsGroup !== undefined) out.fsGroup = sc.fsGroup;
  if (sc.runAsUser !== undefined) out.runAsUser = sc.runAsUser;
  if (sc.runAsGroup !== undefined) out.runAsGroup = sc.runAsGroup;
  return Object.keys(out).length > 0 ? out : undefined;
}
