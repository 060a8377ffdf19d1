// The commands people type every day, against `odin server` (embedded mode, local processes):
// output formats, exit codes, the corners of logs/events/rm/cancel, and the original's names.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  eventually,
  odin,
  odinBin,
  startOdinServer,
  tempDir,
  type OdinServer,
} from "@odin/test-stack";

const pipelines: Record<string, string> = {
  // Runs until stopped; a second run of it waits for the global cap (--max-running-tasks 1).
  slow: `name: slow
tasks:
- name: waits
  image: busybox
  command: sh
  args: [-c, 'echo started; sleep 300']
- name: later
  image: busybox
  command: echo
  args: [never]
  depends: waits
`,
  // "second" starts only after "first" has slept: logs -f on it waits.
  later: `name: later
tasks:
- name: first
  image: busybox
  command: sh
  args: [-c, 'while [ ! -e "\${RUN_PATH}/go" ]; do sleep 0.1; done']
- name: second
  image: busybox
  command: sh
  args: [-c, 'echo hello from second']
  depends: first
`,
  // "b" refers to an output "a" never reports: it fails before launch (MissingOutput).
  missing: `name: missing
tasks:
- name: a
  image: busybox
  command: echo
  args: [a ran]
- name: b
  image: busybox
  command: echo
  args: ["^a.outputs.nope"]
`,
  // "retrier" fails and waits a long backoff; "boom" then fails and fail-fast stops the run.
  backoff: `name: backoff
tasks:
- name: retrier
  image: busybox
  command: sh
  args: [-c, 'echo retrier failing; exit 1']
  retries: 3
  retry_backoff: 10m
- name: boom
  image: busybox
  command: sh
  args: [-c, 'while [ ! -e "\${RUN_PATH}/go" ]; do sleep 0.1; done; exit 4']
`,
  // Many lines, for a reader that closes early.
  chatty: `name: chatty
tasks:
- name: talk
  image: busybox
  command: sh
  args: [-c, 'i=0; while [ $$i -lt 20000 ]; do echo "line $$i of a long log"; i=$$((i+1)); done']
`,
  outputs: `name: outputs
tasks:
- name: report
  image: busybox
  command: sh
  args: [-c, 'echo "{\\"accuracy\\": 0.93, \\"model\\": \\"m1\\"}" > "\${TASK_PATH}/outputs.json"']
`,
};

let dir: { path: string; cleanup(): Promise<void> };
let server: OdinServer;
let capped: OdinServer;
const cli = (args: string[], env: Record<string, string> = {}) =>
  odin(["--server", server.address, ...args], { env });

/** Submits a run and returns its id. */
async function submit(pipeline: string, on = server): Promise<string> {
  const r = await odin(["--server", on.address, "run", pipeline]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function taskState(runId: string, task: string, on = server): Promise<string> {
  const r = await odin(["--server", on.address, "-o", "json", "status", `${runId}--${task}`]);
  return (JSON.parse(r.stdout) as { state: string }).state;
}

before(async () => {
  dir = await tempDir("odin-e2e-cli-");
  const repo = join(dir.path, "pipelines");
  for (const [name, text] of Object.entries(pipelines)) {
    await mkdir(join(repo, name), { recursive: true });
    await writeFile(join(repo, name, "main.yml"), text);
  }
  server = await startOdinServer(["--repo", repo, "--data", join(dir.path, "data")]);
  capped = await startOdinServer([
    "--repo",
    repo,
    "--data",
    join(dir.path, "capped"),
    "--max-running-tasks",
    "1",
  ]);
});

after(async () => {
  await server?.stop();
  await capped?.stop();
  await dir?.cleanup();
});

describe("exit codes and machine-readable output", () => {
  test("a followed run: 0 succeeded, 1 failed, 3 cancelled; -o json prints one object per event", async () => {
    const ok = await cli(["run", "outputs", "--follow", "-o", "json"]);
    assert.equal(ok.code, 0, ok.stderr);
    const events = ok.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; run?: { state: string } });
    assert.ok(events.every((e) => e.kind === "run" || e.kind === "task"));
    assert.equal(events.filter((e) => e.kind === "run").at(-1)!.run!.state, "SUCCEEDED");

    const failed = await cli(["run", "missing", "--follow"]);
    assert.equal(failed.code, 1, failed.stdout);
    assert.match(failed.stdout, /run missing-\w+ FAILED/);

    const following = cli(["run", "slow", "--follow"]);
    let runId = "";
    await eventually(
      async () => {
        const r = await cli(["-o", "json", "status", "--pipeline", "slow"]);
        runId = (JSON.parse(r.stdout) as { id: string }[])[0]?.id ?? "";
        return runId !== "";
      },
      30_000,
      "the followed run",
    );
    assert.equal((await cli(["cancel", runId])).code, 0);
    const cancelled = await following;
    assert.equal(cancelled.code, 3, cancelled.stdout + cancelled.stderr);
    assert.match(cancelled.stdout, /CANCELLED/);
  });

  test("not found exits 4, a usage error 2, an unreachable server 5", async () => {
    assert.equal((await cli(["status", "nosuchrun-00000000"])).code, 4);
    assert.equal((await cli(["logs", "nosuchrun-00000000--x"])).code, 4);
    assert.equal((await cli(["status", "--no-such-flag"])).code, 2);
    const down = await odin(["--server", "127.0.0.1:1", "status"]);
    assert.equal(down.code, 5);
    assert.match(down.stderr, /cannot reach odin at 127\.0\.0\.1:1: connection refused/);
  });

  test("states read the same in text and JSON; status RUN--TASK shows the task's outputs", async () => {
    const runId = await submit("outputs");
    await eventually(async () => (await taskState(runId, "report")) === "SUCCEEDED", 30_000);
    const json = JSON.parse((await cli(["-o", "json", "status", runId])).stdout) as {
      run: { state: string };
      tasks: { state: string; outputs: Record<string, unknown> }[];
    };
    assert.equal(json.run.state, "SUCCEEDED");
    assert.deepEqual(json.tasks[0]!.outputs, { accuracy: 0.93, model: "m1" });
    const yaml = await cli(["-o", "yaml", "status", runId]);
    assert.match(yaml.stdout, /state: SUCCEEDED/);
    const text = await cli(["status", `${runId}--report`]);
    assert.match(text.stdout, /state +SUCCEEDED/);
    assert.match(text.stdout, /outputs:\n {2}accuracy: 0\.93\n {2}model: m1/);
  });

  test("status -l selects runs by label as kubectl does; a bad selector says how to write one", async () => {
    const labelled = async (...labels: string[]) => {
      const r = await cli(["run", "outputs", ...labels.flatMap((l) => ["-l", l])]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const nlp = await labelled("team=nlp", "gpu=a100");
    const cv = await labelled("team=cv");
    const selected = async (selector: string) => {
      const r = await cli(["-o", "json", "status", "--all", "-l", selector]);
      assert.equal(r.code, 0, r.stderr);
      const ids = (JSON.parse(r.stdout) as { id: string }[]).map((x) => x.id);
      return [nlp, cv].filter((id) => ids.includes(id));
    };
    assert.deepEqual(await selected("team=nlp"), [nlp]);
    assert.deepEqual(await selected("team!=nlp,team"), [cv]);
    assert.deepEqual(await selected("team in (nlp,cv)"), [nlp, cv]);
    assert.deepEqual(await selected("!gpu,team"), [cv]);
    // The table's TASKS reads finished of all.
    await eventually(
      async () =>
        new RegExp(`^${cv}\\s+outputs\\s+SUCCEEDED\\s+1/1\\s`, "m").test(
          (await cli(["status", "-l", "team=cv"])).stdout,
        ),
      30_000,
      "the run's row with 1/1 tasks",
    );
    // No match: nothing on stdout, a line saying so on stderr, success (as kubectl's "No resources found").
    const none = await cli(["status", "-l", "team=nobody"]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, "");
    assert.match(none.stderr, /^no run matches labels team=nobody$/m);
    const bad = await cli(["status", "-l", "team=a b"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /"team=a b" is not a label requirement; use key=value, key!=value/);
  });

  test("a reader that closes early ends the command quietly (no EPIPE stack trace)", async () => {
    const runId = await submit("chatty");
    await eventually(async () => (await taskState(runId, "talk")) === "SUCCEEDED", 30_000);
    for (const args of [["logs", runId], ["status"], ["logs", "-o", "json", `${runId}--talk`]]) {
      const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          "sh",
          [
            "-c",
            `"${process.execPath}" "${odinBin}" --server ${server.address} ${args.join(" ")} | head -1`,
          ],
          (err, _stdout, stderr) => resolve({ code: err ? 1 : 0, stderr }),
        ),
      );
      assert.equal(r.stderr, "", `odin ${args.join(" ")} | head -1`);
    }
  });
});

describe("runs in every corner", () => {
  test("odin events RUN lists every task's events", async () => {
    const runId = await submit("outputs");
    await eventually(async () => (await taskState(runId, "report")) === "SUCCEEDED", 30_000);
    const r = await cli(["events", runId]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /TASK/);
    assert.match(r.stdout, /report +Normal +Started/);
    const json = JSON.parse((await cli(["-o", "json", "events", runId])).stdout) as {
      task: string;
    }[];
    assert.ok(json.length > 0 && json.every((e) => e.task === "report"));
  });

  test("odin rm on a running run cancels its tasks and says what it removed", async () => {
    const runId = await submit("slow");
    await eventually(async () => (await taskState(runId, "waits")) === "RUNNING", 30_000);
    const r = await cli(["rm", runId]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`run ${runId}: 1 task object removed`));
    assert.doesNotMatch(r.stdout, /Kubernetes/);
    const json = JSON.parse((await cli(["-o", "json", "status", runId])).stdout) as {
      run: { state: string };
      tasks: { task: string; state: string }[];
    };
    assert.equal(json.run.state, "CANCELLED");
    assert.deepEqual(
      json.tasks.map((t) => `${t.task} ${t.state}`),
      ["waits CANCELLED", "later CANCELLED"],
    );
  });

  test("cancelling a run that already ended says so and exits 1", async () => {
    const runId = await submit("slow");
    assert.equal((await cli(["cancel", runId])).code, 0);
    await eventually(async () => {
      const r = await cli(["-o", "json", "status", runId]);
      return (JSON.parse(r.stdout) as { run: { state: string } }).run.state === "CANCELLED";
    }, 30_000);
    const again = await cli(["cancel", runId]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already ended \(CANCELLED\); there is nothing to cancel/);
    assert.doesNotMatch(again.stdout, /cancelling/);
  });

  test("logs -f on a task that has not started waits for it", async () => {
    const runId = await submit("later");
    const follow = cli(["logs", "-f", `${runId}--second`]);
    await eventually(async () => (await taskState(runId, "first")) === "RUNNING", 30_000);
    const runPath = (
      JSON.parse((await cli(["-o", "json", "status", runId])).stdout) as {
        run: { runPath: string };
      }
    ).run.runPath;
    await writeFile(join(runPath, "go"), "");
    const r = await follow;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hello from second\n");
  });

  test("logs RUN works when a task failed before launch, and names why it has no log", async () => {
    const runId = await submit("missing");
    await eventually(async () => (await taskState(runId, "b")) === "FAILED", 30_000);
    const r = await cli(["logs", runId]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /a ran/);
    assert.match(r.stderr, /b: no log — the task FAILED without running \(MissingOutput/);
    const one = await cli(["logs", `${runId}--b`]);
    assert.equal(one.code, 1);
    assert.match(one.stderr, /MissingOutput/);
  });

  test("a task waiting out its retry backoff when fail-fast trips stays FAILED, not SKIPPED", async () => {
    const runId = await submit("backoff");
    await eventually(async () => (await taskState(runId, "retrier")) === "RETRYING", 30_000);
    const runPath = (
      JSON.parse((await cli(["-o", "json", "status", runId])).stdout) as {
        run: { runPath: string };
      }
    ).run.runPath;
    await writeFile(join(runPath, "go"), "");
    await eventually(async () => (await taskState(runId, "boom")) === "FAILED", 30_000);
    await eventually(async () => (await taskState(runId, "retrier")) !== "RETRYING", 30_000);
    const t = JSON.parse((await cli(["-o", "json", "status", `${runId}--retrier`])).stdout) as {
      state: string;
      exitCode: number;
      message: string;
    };
    assert.equal(t.state, "FAILED");
    assert.equal(t.exitCode, 1);
    assert.match(t.message, /not retried: fail-fast: task "boom" failed/);
  });

  test("a run queued behind the global cap says why it waits", async () => {
    const first = await submit("slow", capped);
    await eventually(async () => (await taskState(first, "waits", capped)) === "RUNNING", 30_000);
    const second = await submit("slow", capped);
    const json = JSON.parse(
      (await odin(["--server", capped.address, "-o", "json", "status", second])).stdout,
    ) as { run: { state: string; reason: string; message: string } };
    assert.equal(json.run.state, "PENDING");
    assert.equal(json.run.reason, "WaitingForCapacity");
    assert.match(json.run.message, /1 of the 1 tasks allowed at once/);
    const text = await odin(["--server", capped.address, "status", second]);
    assert.match(text.stdout, /waiting: WaitingForCapacity: 1 of the 1 tasks/);
    await odin(["--server", capped.address, "cancel", first]);
    await odin(["--server", capped.address, "cancel", second]);
  });

  test("odin show --format dot writes Graphviz line breaks, not a literal backslash", async () => {
    const r = await cli(["show", "later", "--format", "dot"]);
    assert.match(r.stdout, /"second" \[label="second\\nbusybox"\];/);
    assert.doesNotMatch(r.stdout, /\\\\n/);
  });
});

describe("odin server", () => {
  test("a port in use is one clear line; --kube without a kubeconfig says what to do", async () => {
    const port = server.address.split(":").pop()!;
    const busy = await odin(["server", "--port", port, "--data", join(dir.path, "busy")]);
    assert.equal(busy.code, 1);
    assert.match(
      busy.stderr,
      /^odin: cannot listen on 127\.0\.0\.1:\d+: .*is another process using the port\?\)\n$/,
    );
    const kube = await odin(["server", "--kube", "--port", "0", "--data", join(dir.path, "k")], {
      env: { KUBECONFIG: join(dir.path, "no-such-kubeconfig"), HOME: dir.path },
    });
    assert.equal(kube.code, 1);
    assert.match(
      kube.stderr,
      /^odin: --kube: KUBECONFIG names .*no-such-kubeconfig, which does not exist; point KUBECONFIG at/,
    );
    assert.doesNotMatch(kube.stderr, /ENOENT/);
  });
});

describe("the original's commands take the original's arguments", () => {
  test("odin-run, odin-status, odin-logs, odin-events, odin-cleanup, odin-push", async () => {
    const [host, port] = [server.address.split(":")[0]!, server.address.split(":")[1]!];
    const common = ["--host", host, "--port", port, "--scheme", "wss"];
    const auth = ["--username", "alice", "--password", "secret", "--token", join(dir.path, "none")];

    const run = await odin(["outputs", ...common, ...auth], {
      as: "odin-run",
    });
    assert.equal(run.code, 0, run.stderr);
    const runId = /^run (outputs-\w+):/m.exec(run.stdout)![1]!;
    assert.match(run.stderr, /note: --scheme wss ignored/);

    // A pattern, as the original took; --columns with the original's names; --all for every column.
    const status = await odin(
      [runId.slice(0, 10), ...common, "--columns", "task", "status", "resource_id"],
      {
        as: "odin-status",
      },
    );
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /TASK +STATE +OBJECT/);
    const all = await odin([runId, "--all", ...common], { as: "odin-status" });
    assert.match(all.stdout, /OUTPUTS/);

    const logs = await odin(
      [
        `${runId}--report`,
        "--namespace",
        "default",
        "--container",
        "main",
        "-l",
        "5",
        "-f",
        ...common,
      ],
      { as: "odin-logs" },
    );
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stderr, /note: --namespace default ignored/);
    const events = await odin([`${runId}--report`, "--namespace", "default", ...common], {
      as: "odin-events",
    });
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /Started/);

    await writeFile(join(dir.path, "notes.txt"), "pushed with odin-push\n");
    const push = await odin(
      [
        "outputs",
        join(dir.path, "notes.txt"),
        "--file_name",
        "README.txt",
        "--create",
        ...common,
        ...auth,
      ],
      { as: "odin-push" },
    );
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stdout, /pushed outputs\/README\.txt as commit/);
    const help = await odin(["--help"], { as: "odin-push" });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: odin push/);

    const cleanup = await odin([runId, "--db", "--fs", ...common, ...auth], { as: "odin-cleanup" });
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.match(cleanup.stdout, /records purged, data purged/);

    // The original's environment variables name the server too.
    const env = await odin(["status"], { env: { ODIN_URL: `https://${host}`, ODIN_PORT: port } });
    assert.equal(env.code, 0, env.stderr);
  });
});
