// Runs end to end in the production shape: repo-sync, pipeline-registry, two dag-schedulers, two
// k8s-launchers and the gateway as separate processes, a real nats-server, kube-sim as the
// Kubernetes API and a real git remote; the CLI talks only to the gateway.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { KubeSim } from "@odin/testing";
import { eventually, startStack, type Stack } from "@odin/test-stack";

const demo = `name: demo
tasks:
- name: prepare
  image: python:3.11
  command: python3
  args: ["-c", "print('hi')", "--out", "\${RUN_PATH}/\${TASK_NAME}", "--id", "\${TASK_ID}"]
- name: left
  image: python:3.11
  command: python3
  depends: prepare
- name: right
  image: python:3.11
  command: python3
  depends: prepare
- name: report
  image: python:3.11
  command: python3
  depends: [left, right]
`;

describe("runs through the gateway: two schedulers, two launchers, kube-sim, NATS", () => {
  let stack: Stack;
  let sim: KubeSim;

  before(async () => {
    stack = await startStack({}, { replicas: 2 });
    sim = stack.sim;
    sim.script({ image: "python:3.11", logs: ["hello from kube-sim"] });
    sim.script({ image: "slow:*", runForever: true });
    sim.script({ image: "flaky:*", exitCode: 4, logs: ["boom"] });
    // Push the pipelines through the gateway, as a user would.
    for (const [name, text] of Object.entries({
      demo,
      slow: "name: slow\ntasks:\n- {name: wait, image: 'slow:1', command: sleep, args: ['3600']}\n- {name: after, image: 'python:3.11', command: echo, depends: wait}\n",
      flaky:
        "name: flaky\ntasks:\n- {name: first, image: 'python:3.11', command: echo}\n- {name: shaky, image: 'flaky:1', command: train, depends: first}\n- {name: last, image: 'python:3.11', command: echo, depends: shaky}\n",
    })) {
      const local = join(stack.dir, "work", name);
      await mkdir(local, { recursive: true });
      await writeFile(join(local, "main.yml"), text);
      const pushed = await cli("push", local);
      assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout);
    }
  });

  after(async () => {
    await stack?.stop();
  });

  const cli = (...args: string[]) => stack.cli(...args);

  async function runState(runId: string): Promise<string> {
    const r = await cli("-o", "json", "status", runId);
    return (JSON.parse(r.stdout) as { run: { state: string } }).run.state;
  }

  async function taskState(target: string): Promise<string> {
    const r = await cli("-o", "json", "status", target);
    return (JSON.parse(r.stdout) as { state: string }).state;
  }

  test("odin run --follow runs the pipeline to success; tasks got their variables; logs and events are served", async () => {
    await eventually(
      async () => (await cli("ls")).stdout.includes("demo"),
      15_000,
      "demo in odin ls",
    );
    const r = await cli("run", "demo", "--follow");
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const runId = /^run (demo-[a-z0-9]{8}):/m.exec(r.stdout)?.[1];
    assert.ok(runId, r.stdout);
    assert.match(r.stdout, new RegExp(`^run ${runId} SUCCEEDED in .*: 4 succeeded$`, "m"));
    // Exactly one pod per task, with the processing variables substituted.
    const pods = sim.created("pods").filter((p) => p.metadata.labels?.["odin.dev/run"] === runId);
    assert.deepEqual(pods.map((p) => p.metadata.labels?.["odin.dev/task"]).sort(), [
      "left",
      "prepare",
      "report",
      "right",
    ]);
    const prepare = pods.find((p) => p.metadata.labels?.["odin.dev/task"] === "prepare")!;
    const args = (prepare as unknown as { spec: { containers: { args: string[] }[] } }).spec
      .containers[0]!.args;
    assert.ok(args.includes(`${runId}--prepare`), JSON.stringify(args));
    assert.ok(
      args.some((a) => a.endsWith(`/${runId}/prepare`)),
      JSON.stringify(args),
    );
    const logs = await cli("logs", `${runId}--prepare`);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /hello from kube-sim/);
    const events = await cli("events", `${runId}--prepare`);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /Scheduled|Started|Created|Pulled/);
    const status = await cli("status", runId);
    assert.match(status.stdout, /^report\s+SUCCEEDED\s+1\s/m);
  });

  test("odin cancel stops a running task and the run ends CANCELLED", async () => {
    const r = await cli("run", "slow");
    assert.equal(r.code, 0, r.stderr);
    const runId = r.stdout.trim();
    await eventually(
      async () => (await taskState(`${runId}--wait`)) === "RUNNING",
      15_000,
      "wait RUNNING",
    );
    const c = await cli("cancel", runId);
    assert.equal(c.code, 0, c.stderr);
    await eventually(async () => (await runState(runId)) === "CANCELLED", 15_000, "run CANCELLED");
    await eventually(
      () =>
        Promise.resolve(
          !sim.objects("pods").some((p) => p.metadata.labels?.["odin.dev/run"] === runId),
        ),
      15_000,
      "pod deleted",
    );
  });

  test("a failing task skips its dependents; odin retry re-runs it and keeps what succeeded", async () => {
    const r = await cli("run", "flaky", "--follow");
    assert.equal(r.code, 1, r.stdout);
    const runId = /^run (flaky-[a-z0-9]{8}):/m.exec(r.stdout)![1]!;
    assert.match(r.stdout, /^run flaky-[a-z0-9]{8} FAILED/m, r.stderr);
    const failed = await cli("status", runId);
    assert.match(failed.stdout, /^shaky\s+FAILED\s+1\s+\S+\s+4\s/m);
    assert.match(failed.stdout, /^last\s+SKIPPED/m);
    sim.clearScripts();
    sim.script({ image: "python:3.11", logs: ["hello from kube-sim"] });
    // --follow shows the retried run until it ends and exits with its outcome, as run --follow.
    const again = await cli("retry", runId, "--follow");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^run ${runId}: retrying as attempt 2$`, "m"));
    assert.match(again.stdout, new RegExp(`^run ${runId} SUCCEEDED`, "m"));
    assert.equal(await runState(runId), "SUCCEEDED");
    const done = await cli("status", runId);
    assert.match(done.stdout, /^first\s+SUCCEEDED\s+1\s/m);
    assert.match(done.stdout, /^shaky\s+SUCCEEDED\s+2\s/m);
    assert.match(done.stdout, /^last\s+SUCCEEDED\s+1\s/m);
  });

  test("bad input: an unknown run, an unknown pipeline, an invalid pipeline — one clear line each", async () => {
    const unknownRun = await cli("status", "nosuch-12345678");
    assert.equal(unknownRun.code, 4, "not found");
    assert.match(unknownRun.stderr, /^odin: no run nosuch-12345678/);
    assert.doesNotMatch(unknownRun.stderr, /\n\s+at /);
    const unknownPipeline = await cli("run", "nope");
    assert.equal(unknownPipeline.code, 4, "not found");
    assert.match(unknownPipeline.stderr, /^odin: no pipeline "nope"/);
    // An invalid pipeline committed straight to the remote (odin push would refuse it).
    const seed = stack.seed;
    execFileSync("git", ["-C", seed, "pull", "-q", "origin", "main"], { stdio: "pipe" });
    await mkdir(join(seed, "broken"), { recursive: true });
    await writeFile(
      join(seed, "broken", "main.yml"),
      "tasks:\n- name: a\n  image: i\n  command: c\n  depends: [zz]\n",
    );
    execFileSync("git", ["-C", seed, "-c", "user.name=x", "-c", "user.email=x@y", "add", "-A"]);
    execFileSync("git", [
      "-C",
      seed,
      "-c",
      "user.name=x",
      "-c",
      "user.email=x@y",
      "commit",
      "-qm",
      "broken",
    ]);
    execFileSync("git", ["-C", seed, "push", "-q", "origin", "HEAD:main"]);
    assert.equal((await cli("sync")).code, 0);
    await eventually(
      async () => (await cli("ls")).stdout.includes("broken"),
      15_000,
      "broken in odin ls",
    );
    const invalid = await cli("run", "broken");
    assert.equal(invalid.code, 1);
    assert.match(
      invalid.stderr,
      /^odin: pipeline broken at commit [0-9a-f]{12} cannot run: depends on "zz", which is not a task of this pipeline$/m,
    );
    assert.match(
      invalid.stderr,
      /^broken\/main\.yml:5:13: a: depends on "zz", which is not a task of this pipeline$/m,
    );
  });

  test("with two schedulers and two launchers no task attempt got two pods", () => {
    const seen = new Map<string, number>();
    for (const p of sim.created("pods")) {
      const l = p.metadata.labels ?? {};
      if (!l["odin.dev/run"]) continue;
      const key = `${l["odin.dev/run"]}/${l["odin.dev/task"]}#${l["odin.dev/attempt"]}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    assert.ok(seen.size >= 9, `pods seen: ${seen.size}`);
    assert.deepEqual(
      [...seen].filter(([, n]) => n > 1),
      [],
    );
  });
});
