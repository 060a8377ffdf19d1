// Mapping between the domain model of @odin/pipeline-spec and the wire types of odin.common.v1,
// kept beside the generated code so every service converts the same way.
import {
  notifyStates,
  runStates,
  taskStates,
  type NotifyState,
  type NotifyTarget as SpecNotifyTarget,
  type ParameterSpec as SpecParameter,
  type Pipeline as SpecPipeline,
  type Problem as SpecProblem,
  type ResourceType as SpecResourceType,
  type RunState as SpecRunState,
  type Task as SpecTask,
  type TaskState as SpecTaskState,
  type Toleration as SpecToleration,
} from "@odin/pipeline-spec";
import * as common from "./common.js";
import type { Duration } from "./gen/google/protobuf/duration.js";

const resourceTypes: [SpecResourceType, common.ResourceType][] = [
  ["Pod", common.ResourceType.RESOURCE_TYPE_POD],
  ["Job", common.ResourceType.RESOURCE_TYPE_JOB],
  ["TFJob", common.ResourceType.RESOURCE_TYPE_TF_JOB],
  ["PyTorchJob", common.ResourceType.RESOURCE_TYPE_PYTORCH_JOB],
  ["MPIJob", common.ResourceType.RESOURCE_TYPE_MPI_JOB],
  ["ElasticJob", common.ResourceType.RESOURCE_TYPE_ELASTIC_JOB],
];
const pullPolicies: [SpecTask["pullPolicy"], common.PullPolicy][] = [
  ["IfNotPresent", common.PullPolicy.PULL_POLICY_IF_NOT_PRESENT],
  ["Always", common.PullPolicy.PULL_POLICY_ALWAYS],
  ["Never", common.PullPolicy.PULL_POLICY_NEVER],
];
const operators: [NonNullable<SpecToleration["operator"]>, common.TolerationOperator][] = [
  ["Equal", common.TolerationOperator.TOLERATION_OPERATOR_EQUAL],
  ["Exists", common.TolerationOperator.TOLERATION_OPERATOR_EXISTS],
];
const effects: [NonNullable<SpecToleration["effect"]>, common.TolerationEffect][] = [
  ["NoSchedule", common.TolerationEffect.TOLERATION_EFFECT_NO_SCHEDULE],
  ["PreferNoSchedule", common.TolerationEffect.TOLERATION_EFFECT_PREFER_NO_SCHEDULE],
  ["NoExecute", common.TolerationEffect.TOLERATION_EFFECT_NO_EXECUTE],
];

function forward<A, B>(table: [A, B][], a: A): B {
  return table.find(([x]) => x === a)![1];
}

function backward<A, B>(table: [A, B][], b: B, fallback: A): A {
  return table.find(([, y]) => y === b)?.[0] ?? fallback;
}

// States convert by name: `TASK_STATE_<state>` and `RUN_STATE_<state>` on the wire, the bare
// state (pipeline-spec's one table) everywhere else — the CLI and JSON output show the bare name.

/** A task state on the wire. */
export function taskStateToProto(state: SpecTaskState): common.TaskState {
  return common.taskStateFromJSON(`TASK_STATE_${state}`);
}

/** A task state from the wire; undefined for UNSPECIFIED or a value this build does not know. */
export function taskStateFromProto(state: common.TaskState): SpecTaskState | undefined {
  const name = common.taskStateToJSON(state).slice("TASK_STATE_".length);
  return (taskStates as readonly string[]).includes(name) ? (name as SpecTaskState) : undefined;
}

/** A run state on the wire. */
export function runStateToProto(state: SpecRunState): common.RunState {
  return common.runStateFromJSON(`RUN_STATE_${state}`);
}

/** A run state from the wire; undefined for UNSPECIFIED or a value this build does not know. */
export function runStateFromProto(state: common.RunState): SpecRunState | undefined {
  const name = common.runStateToJSON(state).slice("RUN_STATE_".length);
  return (runStates as readonly string[]).includes(name) ? (name as SpecRunState) : undefined;
}

/** Milliseconds as a protobuf Duration. */
export function durationFromMs(ms: number): Duration {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

/** A protobuf Duration in milliseconds. */
export function durationToMs(d: Duration): number {
  return Number(d.seconds) * 1000 + Math.round(d.nanos / 1_000_000);
}

const optionalBigint = (n: number | undefined): bigint | undefined =>
  n === undefined ? undefined : BigInt(n);
const optionalNumber = (n: bigint | undefined): number | undefined =>
  n === undefined ? undefined : Number(n);

/** A normalized task on the wire. */
export function taskToProto(t: SpecTask): common.Task {
  return {
    name: t.name,
    image: t.image,
    command: [...t.command],
    args: [...t.args],
    depends: [...t.depends],
    mounts: t.mounts.map((m) => ({ name: m.name, path: m.path, claim: m.claim ?? "" })),
    ephemeralVolumes: t.ephemeralVolumes.map((v) => ({
      name: v.name,
      type: v.type,
      medium: v.medium ?? "",
      sizeLimit: v.sizeLimit ?? "",
    })),
    secrets: t.secrets.map((s) => ({
      name: s.name,
      path: s.path,
      subPath: s.subPath ?? "",
      mode: s.mode ?? 0,
    })),
    configMaps: t.configMaps.map((c) => ({ name: c.name, path: c.path, subPath: c.subPath ?? "" })),
    numGpus: t.numGpus,
    cpu: t.cpu ? { limits: t.cpu.limits ?? "", requests: t.cpu.requests ?? "" } : undefined,
    memory: t.memory
      ? { limits: t.memory.limits ?? "", requests: t.memory.requests ?? "" }
      : undefined,
    securityContext: t.securityContext
      ? {
          fsGroup: optionalBigint(t.securityContext.fsGroup),
          runAsUser: optionalBigint(t.securityContext.runAsUser),
          runAsGroup: optionalBigint(t.securityContext.runAsGroup),
        }
      : undefined,
    pullPolicy: forward(pullPolicies, t.pullPolicy),
    nodeSelector: { ...t.nodeSelector },
    resourceType: forward(resourceTypes, t.resourceType),
    numWorkers: t.numWorkers,
    inputs: [...t.inputs],
    outputs: { ...t.outputs },
    env: { ...t.env },
    tolerations: t.tolerations.map((x) => ({
      key: x.key ?? "",
      operator: x.operator
        ? forward(operators, x.operator)
        : common.TolerationOperator.TOLERATION_OPERATOR_UNSPECIFIED,
      value: x.value ?? "",
      effect: x.effect
        ? forward(effects, x.effect)
        : common.TolerationEffect.TOLERATION_EFFECT_UNSPECIFIED,
      tolerationSeconds: optionalBigint(x.tolerationSeconds),
    })),
    labels: { ...t.labels },
    annotations: { ...t.annotations },
    serviceAccount: t.serviceAccount ?? "",
    retries: t.retries,
    retryBackoff: durationFromMs(t.retryBackoffMs),
    timeout: t.timeoutMs === undefined ? undefined : durationFromMs(t.timeoutMs),
    pendingTimeout:
      t.pendingTimeoutMs === undefined ? undefined : durationFromMs(t.pendingTimeoutMs),
    extraJson: Object.keys(t.extra).length === 0 ? "" : JSON.stringify(t.extra),
    cacheDisabled: t.cache === false,
    cacheTtl: t.cacheTtlMs === undefined ? undefined : durationFromMs(t.cacheTtlMs),
    cacheImageTag: t.cacheImageTag === true,
  };
}

/** A task from the wire, as the domain model. */
export function taskFromProto(t: common.Task): SpecTask {
  const task: SpecTask = {
    name: t.name,
    image: t.image,
    command: t.command,
    args: t.args,
    depends: t.depends,
    mounts: t.mounts.map((m) =>
      m.claim ? { name: m.name, path: m.path, claim: m.claim } : { name: m.name, path: m.path },
    ),
    ephemeralVolumes: t.ephemeralVolumes.map((v) => ({
      name: v.name,
      type: "emptyDir",
      ...(v.medium ? { medium: v.medium } : {}),
      ...(v.sizeLimit ? { sizeLimit: v.sizeLimit } : {}),
    })),
    secrets: t.secrets.map((s) => ({
      name: s.name,
      path: s.path,
      ...(s.subPath ? { subPath: s.subPath } : {}),
      ...(s.mode ? { mode: s.mode } : {}),
    })),
    configMaps: t.configMaps.map((c) => ({
      name: c.name,
      path: c.path,
      ...(c.subPath ? { subPath: c.subPath } : {}),
    })),
    numGpus: t.numGpus,
    pullPolicy: backward(pullPolicies, t.pullPolicy, "IfNotPresent"),
    nodeSelector: t.nodeSelector,
    resourceType: backward(resourceTypes, t.resourceType, "Pod"),
    numWorkers: t.numWorkers || 1,
    inputs: t.inputs,
    outputs: t.outputs,
    env: t.env,
    tolerations: t.tolerations.map((x) => {
      const tol: SpecToleration = {};
      if (x.key) tol.key = x.key;
      if (x.operator) tol.operator = backward(operators, x.operator, "Equal");
      if (x.value) tol.value = x.value;
      if (x.effect) tol.effect = backward(effects, x.effect, "NoSchedule");
      const seconds = optionalNumber(x.tolerationSeconds);
      if (seconds !== undefined) tol.tolerationSeconds = seconds;
      return tol;
    }),
    labels: t.labels,
    annotations: t.annotations,
    retries: t.retries,
    retryBackoffMs: t.retryBackoff ? durationToMs(t.retryBackoff) : 0,
    extra: t.extraJson ? (JSON.parse(t.extraJson) as Record<string, unknown>) : {},
  };
  const amounts = (r: common.ResourceRequirements) => ({
    ...(r.limits ? { limits: r.limits } : {}),
    ...(r.requests ? { requests: r.requests } : {}),
  });
  if (t.cpu) task.cpu = amounts(t.cpu);
  if (t.memory) task.memory = amounts(t.memory);
  if (t.securityContext) {
    const sc = t.securityContext;
    task.securityContext = {
      ...(sc.fsGroup !== undefined ? { fsGroup: Number(sc.fsGroup) } : {}),
      ...(sc.runAsUser !== undefined ? { runAsUser: Number(sc.runAsUser) } : {}),
      ...(sc.runAsGroup !== undefined ? { runAsGroup: Number(sc.runAsGroup) } : {}),
    };
  }
  if (t.serviceAccount) task.serviceAccount = t.serviceAccount;
  if (t.timeout) task.timeoutMs = durationToMs(t.timeout);
  if (t.pendingTimeout) task.pendingTimeoutMs = durationToMs(t.pendingTimeout);
  if (t.cacheDisabled) task.cache = false;
  if (t.cacheTtl) task.cacheTtlMs = durationToMs(t.cacheTtl);
  if (t.cacheImageTag) task.cacheImageTag = true;
  return task;
}

/** A normalized pipeline on the wire, at a commit. */
export function pipelineToProto(p: SpecPipeline, commit: string): common.Pipeline {
  return {
    path: p.path,
    name: p.name,
    commit,
    failFast: p.failFast,
    parallelism: p.parallelism ?? 0,
    tasks: p.tasks.map(taskToProto),
    parameters: (p.parameters ?? []).map((d) => ({
      name: d.name,
      type: d.type,
      defaultValue: d.default,
      description: d.description ?? "",
    })),
    notify: (p.notify ?? []).map(notifyToProto),
  };
}

/** A notification target on the wire: its states lower case. */
export function notifyToProto(n: SpecNotifyTarget): common.Notify {
  return { webhookSecret: n.webhookSecret, on: n.on.map((state) => state.toLowerCase()) };
}

/** A notification target from the wire (already checked); states it does not know are left out. */
export function notifyFromProto(n: common.Notify): SpecNotifyTarget {
  return {
    webhookSecret: n.webhookSecret,
    on: n.on
      .map((state) => state.toUpperCase())
      .filter((state): state is NotifyState => (notifyStates as readonly string[]).includes(state)),
  };
}

/** A pipeline from the wire, as the domain model. */
export function pipelineFromProto(p: common.Pipeline): SpecPipeline {
  const pipeline: SpecPipeline = {
    path: p.path,
    name: p.name,
    failFast: p.failFast,
    tasks: p.tasks.map(taskFromProto),
  };
  if (p.parallelism > 0) pipeline.parallelism = p.parallelism;
  if (p.parameters.length > 0)
    pipeline.parameters = p.parameters.map((d) => {
      const spec: SpecParameter = { name: d.name, type: d.type as SpecParameter["type"] };
      const value = d.defaultValue as SpecParameter["default"] | null | undefined;
      if (value !== undefined && value !== null) spec.default = value;
      if (d.description) spec.description = d.description;
      return spec;
    });
  if (p.notify.length > 0) pipeline.notify = p.notify.map(notifyFromProto);
  return pipeline;
}

/** A validation problem on the wire. */
export function problemToProto(p: SpecProblem): common.Problem {
  return {
    file: p.file,
    line: p.line,
    column: p.column,
    task: p.task ?? "",
    field: p.field ?? "",
    message: p.message,
    severity:
      p.severity === "warning" ? common.Severity.SEVERITY_WARNING : common.Severity.SEVERITY_ERROR,
  };
}

/** A validation problem from the wire. */
export function problemFromProto(p: common.Problem): SpecProblem {
  const problem: SpecProblem = {
    severity: p.severity === common.Severity.SEVERITY_WARNING ? "warning" : "error",
    file: p.file,
    line: p.line,
    column: p.column,
    message: p.message,
  };
  if (p.task) problem.task = p.task;
  if (p.field) problem.field = p.field;
  return problem;
}
