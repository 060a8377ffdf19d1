// The conformance pipelines run end to end on the production shape (through NATS, gRPC, the
// launcher and kube-sim), with the processing variables substituted in the objects created; and
// retries, timeouts and no-layer-barrier scheduling, end to end.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeObject } from "@odin/testing";
import { conformance, eventually, startStack, type Stack } from "@odin/test-stack";

const corpus: Record<string, string> = {
  "bert-ner": "sample-odin-pipelines/bert-ner",
  sst2: "sample-odin-pipelines/sst2",
  "imagenet-elastic": "sample-odin-pipelines/imagenet-elastic",
  "test-pipeline-1": "odin-tests/test_pipeline-1",
  "test-pipeline-2": "odin-tests/test_pipeline-2-cpu-secctx",
  "test-podspecs": "odin-tests/test_podspecs-ephem",
};

const containers = (
  o: KubeObject,
): { args?: string[]; resources?: { limits?: Record<string, string> } }[] => {
  const spec = (o as unknown as { spec: Record<string, unknown> }).spec;
  const replicaSpecs = (spec.replicaSpecs ?? spec.tfReplicaSpecs ?? spec.pytorchReplicaSpecs) as
    Record<string, { template: { spec: { containers: [] } } }> | undefined;
  if (replicaSpecs) return Object.values(replicaSpecs).flatMap((r) => r.template.spec.containers);
  return (spec.containers as []) ?? [];
};

describe("conformance pipelines and run semantics end to end", () => {
  let stack: Stack;
  before(async () => {
    const pipelines: Record<string, Record<string, string>> = {
      "logging.json": {},
    };
    for (const [name, path] of Object.entries(corpus)) {
      pipelines[name] = { "main.yml": readFileSync(join(conformance, path, "main.yml"), "utf8") };
    }
    pipelines.retries = {
      "main.yml":
        "tasks:\n- {name: flaky, image: 'retry:1', command: c, retries: 2, retry_backoff: 100ms}\n- {name: after, image: 'ok:1', command: c, depends: flaky}\n",
    };
    pipelines.timeout = {
      "main.yml": "tasks:\n- {name: slow, image: 'forever:1', command: c, timeout: 1s}\n",
    };
    pipelines.barrier = {
      "main.yml":
        "tasks:\n- {name: fast, image: 'ok:1', command: c}\n- {name: slow, image: 'slow:1', command: c}\n- {name: after-fast, image: 'ok:1', command: c, depends: fast}\n- {name: join, image: 'ok:1', command: c, depends: [after-fast, slow]}\n",
    };
    delete pipelines["logging.json"];
    stack = await startStack(pipelines);
    stack.sim.script({ image: "forever:*", runForever: true });
    stack.sim.script({ image: "torchelastic/*", logs: ["epoch 1"] });
    stack.sim.script({ image: "slow:*", runMs: 1500 });
    stack.sim.script({ image: "retry:*", labels: { "odin.dev/attempt": "1" }, exitCode: 5 });
  });
  after(async () => {
    await stack?.stop();
  });

  for (const name of Object.keys(corpus)) {
    test(`${name} runs to completion with its variables substituted`, async () => {
      await eventually(
        async () => (await stack.cli("ls")).stdout.includes(name),
        15_000,
        `${name} listed`,
      );
      const r = await stack.cli("run", name, "--follow");
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const runId = /^run (\S+):/m.exec(r.stdout)![1]!;
      const objects = [...stack.sim.created("pods"), ...stack.sim.created("elasticjobs")].filter(
        (o) => o.metadata.labels?.["odin.dev/run"] === runId && !o.metadata.ownerReferences?.length,
      );
      assert.ok(objects.length > 0);
      const args = objects.flatMap((o) => containers(o).flatMap((c) => c.args ?? []));
      assert.ok(
        args.every((a) => !/\$\{?[A-Z_]+\}?/.test(a)),
        `no variable left: ${JSON.stringify(args)}`,
      );
      if (name === "bert-ner") {
        assert.ok(
          args.some((a) => a.endsWith(`/${runId}/${runId}--conll-0`)),
          JSON.stringify(args),
        ); // ${RUN_PATH}/${TASK_ID}
        assert.ok(
          args.some((a) => /\/commits\/[0-9a-f]{40}\/bert-ner\/conll-bert\.yml$/.test(a)),
          JSON.stringify(args),
        ); // ${WORK_PATH}
        assert.ok(
          args.some((a) => /\/commits\/[0-9a-f]{40}\/logging\.json$/.test(a)),
          JSON.stringify(args),
        ); // ${ROOT_PATH}
      }
      if (name === "sst2") {
        assert.ok(
          args.some((a) => /\/commits\/[0-9a-f]{40}\/sst2\/sst2\.yml$/.test(a)),
          JSON.stringify(args),
        ); // ${WORK_PATH}/${TASK_NAME}.yml
      }
      if (name === "imagenet-elastic") {
        const job = stack.sim
          .created("elasticjobs")
          .find((o) => o.metadata.labels?.["odin.dev/run"] === runId)!;
        const limits = containers(job).map((c) => c.resources?.limits?.["nvidia.com/gpu"]);
        assert.deepEqual(limits, ["1"], "one GPU per worker by default");
        // Its two workers' logs, each line naming its pod.
        const logs = (await stack.cli("logs", `${runId}--imagenet`)).stdout
          .trim()
          .split("\n")
          .sort();
        assert.equal(logs.length, 2, logs.join("\n"));
        assert.ok(
          logs.every((l) => /^\[\S+-worker-\d\] epoch 1$/.test(l)),
          logs.join("\n"),
        );
        assert.notEqual(logs[0], logs[1]);
      }
    });
  }

  test("retries: a task failing its first attempt succeeds on the second, then its dependent runs", async () => {
    const r = await stack.cli("run", "retries", "--follow");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const runId = /^run (\S+):/m.exec(r.stdout)![1]!;
    const status = await stack.cli("status", runId);
    assert.match(status.stdout, /^flaky\s+SUCCEEDED\s+2\s/m);
    assert.match(status.stdout, /^after\s+SUCCEEDED\s+1\s/m);
  });

  test("timeout: a task running past its timeout is stopped and fails", async () => {
    const r = await stack.cli("run", "timeout", "--follow");
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const runId = /^run (\S+):/m.exec(r.stdout)![1]!;
    const status = await stack.cli("status", runId);
    assert.match(status.stdout, /^slow\s+FAILED\s+1\s.*DeadlineExceeded/m);
    await eventually(
      () =>
        Promise.resolve(
          !stack.sim.objects("pods").some((p) => p.metadata.labels?.["odin.dev/run"] === runId),
        ),
      10_000,
      "pod removed",
    );
  });

  test("a dependent is launched as soon as its own dependency succeeds, while a sibling still runs", async () => {
    const r = await stack.cli("run", "barrier", "--follow");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const runId = /^run (\S+):/m.exec(r.stdout)![1]!;
    const shown = JSON.parse((await stack.cli("-o", "json", "status", runId)).stdout) as {
      tasks: { task: string; launchTime?: string; endTime?: string }[];
    };
    const at = (task: string, field: "launchTime" | "endTime") =>
      Date.parse(shown.tasks.find((t) => t.task === task)![field]!);
    const created = (task: string) => at(task, "launchTime");
    const slowEnd = at("slow", "endTime");
    assert.ok(created("after-fast") < slowEnd, "after-fast started before slow finished");
    assert.ok(created("join") >= slowEnd, "join waited for slow");
  });
});
