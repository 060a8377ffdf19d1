// The classification rules on hand-written objects, shaped as a watch delivers them (times as
// RFC 3339 strings) or as the typed client returns them (Dates).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import {
  attemptIdOf,
  objectEventOf,
  outputsFromTerminationMessage,
  ownerOutcome,
  podOutcome,
  podRunning,
  podStuck,
  type ObjectLike,
} from "./classify.js";

const labels = {
  "app.kubernetes.io/managed-by": "odin",
  "odin.dev/run": "sst2-abc",
  "odin.dev/task": "train",
  "odin.dev/attempt": "2",
};

function pod(
  name: string,
  phase: string,
  main: Record<string, unknown> = {},
  extra: { labels?: Record<string, string>; reason?: string; message?: string } = {},
): V1Pod {
  return {
    metadata: { name, labels: { ...labels, ...extra.labels } },
    spec: { containers: [{ name: "train" }, { name: "sidecar" }] },
    status: {
      phase,
      ...(extra.reason ? { reason: extra.reason } : {}),
      ...(extra.message ? { message: extra.message } : {}),
      containerStatuses: [
        { name: "sidecar", state: { terminated: { exitCode: 0 } } },
        { name: "train", state: main },
      ],
    },
  } as unknown as V1Pod;
}

test("attempts are identified by Odin's labels only", () => {
  assert.deepEqual(attemptIdOf({ labels }), { runId: "sst2-abc", task: "train", attempt: 2 });
  assert.equal(
    attemptIdOf({ labels: { ...labels, "app.kubernetes.io/managed-by": "helm" } }),
    undefined,
  );
  assert.equal(attemptIdOf({ labels: { ...labels, "odin.dev/attempt": "0" } }), undefined);
  assert.equal(attemptIdOf({}), undefined);
});

test("a pod's outcome comes from its phase and its main container", () => {
  const ok = podOutcome(
    pod("p", "Succeeded", {
      terminated: {
        exitCode: 0,
        reason: "Completed",
        message: '{"acc": 0.9}',
        finishedAt: "2025-01-02T03:04:05Z",
      },
    }),
  );
  assert.deepEqual(ok, {
    state: "SUCCEEDED",
    exitCode: 0,
    reason: "Completed",
    time: new Date("2025-01-02T03:04:05Z"),
    outputsJson: '{"acc":0.9}',
  });
  const oom = podOutcome(
    pod("p", "Failed", { terminated: { exitCode: 137, reason: "OOMKilled" } }),
  );
  assert.equal(oom?.state, "FAILED");
  assert.equal(oom?.exitCode, 137, "the main container's code, not the sidecar's");
  assert.equal(oom?.reason, "OOMKilled");
  const evicted = podOutcome(
    pod("p", "Failed", {}, { reason: "Evicted", message: "The node was low on memory." }),
  );
  assert.equal(evicted?.reason, "Evicted", "a pod-level reason wins");
  assert.equal(evicted?.exitCode, undefined);
  assert.match(evicted?.message ?? "", /low on memory/);
  assert.equal(podOutcome(pod("p", "Running", { running: {} })), undefined);
  assert.equal(podOutcome(pod("p", "Pending")), undefined);
  assert.equal(podRunning(pod("p", "Running", { running: {} })), true);
});

test("outputs are a termination message that is a JSON object, and nothing else", () => {
  assert.equal(outputsFromTerminationMessage(' {"a": [1, 2]}\n'), '{"a":[1,2]}');
  assert.equal(outputsFromTerminationMessage("[1, 2]"), undefined);
  assert.equal(outputsFromTerminationMessage("{not json"), undefined);
  assert.equal(outputsFromTerminationMessage("Traceback …"), undefined);
  assert.equal(outputsFromTerminationMessage(undefined), undefined);
});

test("stuck pods: image pull failures, bad container config, unschedulable", () => {
  for (const reason of [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
  ]) {
    const stuck = podStuck(pod("p", "Pending", { waiting: { reason, message: "why" } }));
    assert.deepEqual(stuck, { reason, message: "why" });
  }
  assert.equal(
    podStuck(pod("p", "Pending", { waiting: { reason: "ContainerCreating" } })),
    undefined,
    "pulling a big image is not stuck",
  );
  const unschedulable = {
    ...pod("p", "Pending"),
    status: {
      phase: "Pending",
      conditions: [
        {
          type: "PodScheduled",
          status: "False",
          reason: "Unschedulable",
          message: "0/3 nodes are available",
          lastTransitionTime: "2025-01-02T03:04:05Z",
        },
      ],
    },
  } as unknown as V1Pod;
  assert.deepEqual(podStuck(unschedulable), {
    reason: "Unschedulable",
    message: "0/3 nodes are available",
    since: new Date("2025-01-02T03:04:05Z"),
  });
  const deleting = pod("p", "Pending", { waiting: { reason: "ImagePullBackOff" } });
  deleting.metadata!.deletionTimestamp = new Date();
  assert.equal(podStuck(deleting), undefined);
});

function owner(kind: string, conditions: Record<string, string>[]): ObjectLike {
  return { kind, metadata: { name: "obj", labels }, status: { conditions } };
}

test("Jobs end on Complete or Failed, not on intermediate conditions", () => {
  assert.equal(
    ownerOutcome("Job", owner("Job", [{ type: "SuccessCriteriaMet", status: "True" }]), []),
    undefined,
  );
  const done = ownerOutcome("Job", owner("Job", [{ type: "Complete", status: "True" }]), [
    pod("obj-x", "Succeeded", { terminated: { exitCode: 0, message: '{"k": 1}' } }),
  ]);
  assert.equal(done?.state, "SUCCEEDED");
  assert.equal(done?.outputsJson, '{"k":1}');
  assert.equal(done?.detailed, true);
  const deadline = ownerOutcome(
    "Job",
    owner("Job", [
      {
        type: "Failed",
        status: "True",
        reason: "DeadlineExceeded",
        message: "Job was active longer than specified deadline",
      },
    ]),
    [pod("obj-x", "Failed", { terminated: { exitCode: 137, reason: "Error" } })],
  );
  assert.equal(deadline?.reason, "DeadlineExceeded", "the Job's deadline is the reason");
  assert.equal(deadline?.exitCode, 137);
  const undetailed = ownerOutcome(
    "Job",
    owner("Job", [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }]),
    [],
  );
  assert.equal(undetailed?.reason, "BackoffLimitExceeded");
  assert.equal(undetailed?.detailed, false, "no pod known: the caller looks them up");
});

test("training jobs are decided by their conditions, the exit code by the failed pod", () => {
  const pods = [
    pod(
      "obj-worker-0",
      "Succeeded",
      { terminated: { exitCode: 0 } },
      { labels: { "training.kubeflow.org/replica-index": "0" } },
    ),
    pod(
      "obj-worker-1",
      "Failed",
      { terminated: { exitCode: 3, reason: "Error", message: "NaN loss" } },
      { labels: { "training.kubeflow.org/replica-index": "1" } },
    ),
  ];
  // The original reported SUCCEEDED here: it looked at the first pod only.
  const failed = ownerOutcome(
    "TFJob",
    owner("TFJob", [
      { type: "Created", status: "True" },
      { type: "Running", status: "False" },
      { type: "Failed", status: "True", reason: "TFJobFailed", message: "TFJob obj has failed" },
    ]),
    pods,
  );
  assert.equal(failed?.state, "FAILED");
  assert.equal(failed?.exitCode, 3);
  assert.equal(failed?.reason, "Error");
  assert.match(failed?.message ?? "", /TFJobFailed.*obj-worker-1.*NaN loss/);
  // All pods done but no Succeeded condition yet: not over.
  assert.equal(
    ownerOutcome("PyTorchJob", owner("PyTorchJob", [{ type: "Running", status: "True" }]), pods),
    undefined,
  );
  const master = pod(
    "obj-master-0",
    "Succeeded",
    { terminated: { exitCode: 0, message: '{"from": "master"}' } },
    { labels: { "training.kubeflow.org/job-role": "master" } },
  );
  const ok = ownerOutcome(
    "PyTorchJob",
    owner("PyTorchJob", [{ type: "Succeeded", status: "True" }]),
    [pods[0]!, master],
  );
  assert.equal(ok?.outputsJson, '{"from":"master"}', "the master's outputs");
});

test("Kubernetes events map to ObjectEvents with the best time available", () => {
  const e = objectEventOf(
    {
      metadata: { name: "x.1", creationTimestamp: new Date("2025-01-01T00:00:00Z") },
      involvedObject: { kind: "Pod", name: "p" },
      reason: "FailedScheduling",
      message: "0/1 nodes",
      type: "Warning",
      source: { component: "default-scheduler" },
      count: 4,
      lastTimestamp: "2025-01-01T00:00:09Z" as unknown as Date,
    },
    3,
  );
  assert.deepEqual(e, {
    time: new Date("2025-01-01T00:00:09Z"),
    type: "Warning",
    reason: "FailedScheduling",
    message: "0/1 nodes",
    objectKind: "Pod",
    objectName: "p",
    source: "default-scheduler",
    count: 4,
    attempt: 3,
  });
});
