// dag-scheduler reliability with real processes: SIGKILLed mid-run and restarted, and two replicas
// sharing 50 runs — counted by the pods kube-sim received.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { DagSchedulerServiceClient, common } from "@odin/proto";
import { createClient, unary } from "@odin/service-kit";
import {
  eventually,
  startService,
  startStack,
  type ServiceProcess,
  type Stack,
} from "@odin/test-stack";

function wide(name: string, width: number): string {
  let yaml = `name: ${name}\ntasks:\n- {name: root, image: 'work:1', command: run}\n`;
  for (let i = 0; i < width; i++)
    yaml += `- {name: w${i}, image: 'work:1', command: run, depends: root}\n`;
  for (let i = 0; i < width; i++)
    yaml += `- {name: v${i}, image: 'work:1', command: run, depends: w${i}}\n`;
  yaml += `- {name: join, image: 'work:1', command: run, depends: [${Array.from({ length: width }, (_, i) => `v${i}`).join(", ")}]}\n`;
  return yaml;
}

describe("dag-scheduler survives SIGKILL and shares work between replicas", () => {
  let stack: Stack;
  const schedulers: ServiceProcess[] = [];

  before(async () => {
    stack = await startStack(
      { wide: { "main.yml": wide("wide", 20) }, small: { "main.yml": wide("small", 2) } },
      { schedulers: 0, simOptions: { defaultRunMs: [20, 80] } },
    );
  });

  after(async () => {
    for (const s of schedulers) await s.stop("SIGKILL");
    await stack?.stop();
  });

  async function startScheduler(): Promise<ServiceProcess> {
    const s = await startService("dag-scheduler", stack.schedulerEnv);
    schedulers.push(s);
    return s;
  }

  function client(s: ServiceProcess) {
    return createClient(DagSchedulerServiceClient, {
      address: s.address,
      token: stack.tokens.operator,
      retries: 4,
    });
  }

  async function state(s: ServiceProcess, runId: string): Promise<common.RunState> {
    const c = client(s);
    try {
      return (await unary(c, "getRun", { runId, taskPageSize: 1, taskPageToken: "", tasks: [] }))
        .run!.state;
    } finally {
      c.close();
    }
  }

  /** Pods kube-sim received per run/task, across all attempts: every value must be 1. */
  function podsPerTask(runIds: readonly string[]): Map<string, number> {
    const out = new Map<string, number>();
    for (const p of stack.sim.created("pods")) {
      const l = p.metadata.labels ?? {};
      const run = l["odin.dev/run"];
      if (!run || !runIds.includes(run)) continue;
      const key = `${run}/${l["odin.dev/task"]}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
    return out;
  }

  test("killed with SIGKILL at several points of a run and restarted, the scheduler finishes it with each task launched once", async () => {
    let scheduler = await startScheduler();
    const c = client(scheduler);
    const run = (
      await unary(c, "submitRun", {
        pipeline: "wide",
        commit: "",
        labels: {},
        requestId: "kill-test",
        noCache: false,
      })
    ).run!;
    c.close();
    for (const delay of [150, 400, 250]) {
      await new Promise((r) => setTimeout(r, delay));
      await scheduler.stop("SIGKILL");
      scheduler = await startScheduler();
    }
    await eventually(
      async () => (await state(scheduler, run.id)) === common.RunState.RUN_STATE_SUCCEEDED,
      60_000,
      "the run SUCCEEDED",
    );
    const pods = podsPerTask([run.id]);
    assert.equal(pods.size, 42, "every task ran");
    assert.deepEqual(
      [...pods].filter(([, n]) => n !== 1),
      [],
      "none twice",
    );
  });

  test("two replicas running 50 runs together: every run succeeds, no task launched twice", async () => {
    const a = await startScheduler();
    const b = await startScheduler();
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const c = client(i % 2 ? a : b);
        try {
          ids.push(
            (
              await unary(c, "submitRun", {
                pipeline: "small",
                commit: "",
                labels: {},
                requestId: `many-${i}`,
                noCache: false,
              })
            ).run!.id,
          );
        } finally {
          c.close();
        }
      }),
    );
    assert.equal(new Set(ids).size, 50);
    await eventually(
      async () => {
        for (const id of ids)
          if ((await state(a, id)) !== common.RunState.RUN_STATE_SUCCEEDED) return false;
        return true;
      },
      120_000,
      "all 50 runs SUCCEEDED",
    );
    const pods = podsPerTask(ids);
    assert.equal(pods.size, 50 * 6);
    assert.deepEqual(
      [...pods].filter(([, n]) => n !== 1),
      [],
    );
  });
});
