import { spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { newRunId, type Task } from "@odin/pipeline-spec";
import { createLogger, InvalidArgumentError } from "@odin/service-kit";
import type { LaunchSpec, LogLine, TaskPaths, TaskStateEvent } from "../backend.js";
import {
  backendContract,
  taskWithDefaults,
  type ContractTaskBehaviour,
} from "../testing/contract.js";
import {
  LocalBackend,
  launcherRestartedReason,
  type LocalBackendOptions,
} from "./local-backend.js";
import { processInfo } from "./process.js";

const scratch = mkdtempSync(join(tmpdir(), "odin-local-backend-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A fresh log dir and data root. */
function dirs(): { logDir: string; dataRoot: string; rootPath: string } {
  const base = mkdtempSync(join(scratch, "b-"));
  const rootPath = join(base, "repo");
  mkdirSync(join(rootPath, "pipe"), { recursive: true });
  return { logDir: join(base, "logs"), dataRoot: join(base, "data"), rootPath };
}

function pathsFor(
  d: { dataRoot: string; rootPath: string },
  runId: string,
  task: string,
): TaskPaths {
  return {
    rootPath: d.rootPath,
    workPath: join(d.rootPath, "pipe"),
    dataPath: d.dataRoot,
    runPath: join(d.dataRoot, runId),
    taskPath: join(d.dataRoot, runId, task),
  };
}

/** `sh -c` printing the lines (passed as arguments, so nothing is quoted), sleeping, exiting. */
function shellTask({ name, lines, exitCode, runMs }: ContractTaskBehaviour): Task {
  return taskWithDefaults({
    name,
    image: "",
    command: [
      "sh",
      "-c",
      `for l in "$@"; do printf '%s\\n' "$l"; done; sleep ${runMs / 1000}; exit ${exitCode}`,
      "sh",
    ],
    args: [...lines],
  });
}

const contractDirs = dirs();
backendContract(
  "local processes",
  () => Promise.resolve(new LocalBackend({ ...contractDirs, killGraceMs: 1000, logPollMs: 50 })),
  {
    makeTask: shellTask,
    paths: (runId, task) => pathsFor(contractDirs, runId, task),
  },
);

/** True while the process exists and is not a zombie (one nobody has reaped yet is gone for us). */
function alive(pid: number): boolean {
  const info = processInfo(pid);
  if (info) return info.state !== "Z";
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function collect(items: AsyncIterable<LogLine>): Promise<string[]> {
  const out: string[] = [];
  for await (const item of items) out.push(item.line);
  return out;
}

describe("LocalBackend", () => {
  const opened: LocalBackend[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  /** A started backend on fresh directories, with what it reported. */
  async function setup(options: Partial<LocalBackendOptions> = {}) {
    const d = dirs();
    const backend = new LocalBackend({ ...d, killGraceMs: 500, logPollMs: 50, ...options });
    opened.push(backend);
    const events: TaskStateEvent[] = [];
    await backend.start((e) => {
      events.push(e);
      return Promise.resolve();
    });
    const runId = newRunId("local");
    const spec = (
      task: Partial<Task> & Pick<Task, "name" | "command">,
      attempt = 1,
    ): LaunchSpec => ({
      runId,
      pipeline: "pipe",
      commit: "c0ffee",
      task: taskWithDefaults({ image: "", ...task }),
      attempt,
      paths: pathsFor(d, runId, task.name),
    });
    const terminal = async (task: string, attempt = 1) => {
      await waitFor(
        () => events.some((e) => e.task === task && e.attempt === attempt && e.state !== "RUNNING"),
        `a terminal state of ${task}`,
      );
      return events.find((e) => e.task === task && e.attempt === attempt && e.state !== "RUNNING")!;
    };
    const running = (task: string) =>
      waitFor(
        () => events.some((e) => e.task === task && e.state === "RUNNING"),
        `${task} running`,
      );
    const logs = (task: string) =>
      collect(backend.logs({ runId, task, attempt: 1 }, { follow: false }));
    return { ...d, backend, events, runId, spec, terminal, running, logs };
  }

  test("cancel kills the whole process group, children included", async () => {
    const s = await setup();
    await s.backend.launch(
      s.spec({ name: "parent", command: ["sh", "-c", "sleep 300 & echo $! > child.pid; wait"] }),
    );
    const pidFile = join(s.dataRoot, s.runId, "parent", "child.pid");
    await waitFor(
      () => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "",
      "child.pid",
    );
    const child = Number(readFileSync(pidFile, "utf8"));
    assert.ok(alive(child));
    assert.equal(await s.backend.cancel({ runId: s.runId, task: "parent" }), 1);
    await waitFor(() => !alive(child), "the child to be gone", 3000);
    const reasons = (await s.backend.events({ runId: s.runId, task: "parent" })).map(
      (e) => e.reason,
    );
    assert.ok(reasons.includes("Killing"), JSON.stringify(reasons));
    assert.deepEqual(
      s.events.map((e) => e.state),
      ["RUNNING"],
    );
  });

  test("a task that ignores SIGTERM is killed after the grace period", async () => {
    const s = await setup({ killGraceMs: 400 });
    await s.backend.launch(
      s.spec({
        name: "stubborn",
        command: ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"],
      }),
    );
    await waitFor(
      () => readFileSync(join(s.logDir, s.runId, "stubborn", "1.log"), "utf8").includes("ready"),
      "ready",
    );
    const started = Date.now();
    await s.backend.cancel({ runId: s.runId, task: "stubborn", attempt: 1 });
    const took = Date.now() - started;
    assert.ok(took >= 350, `cancel returned after ${took} ms, before the grace period`);
  });

  test("a command that does not exist fails with a clear message", async () => {
    const s = await setup();
    await s.backend.launch(
      s.spec({ name: "nope", command: ["odin-no-such-command-xyz", "--flag"] }),
    );
    const e = await s.terminal("nope");
    assert.equal(e.state, "FAILED");
    assert.equal(e.reason, "CommandNotFound");
    assert.equal(e.message, "command not found: odin-no-such-command-xyz");
    assert.deepEqual(
      s.events.map((x) => x.state),
      ["FAILED"],
    );
    assert.deepEqual(await s.logs("nope"), ["odin: command not found: odin-no-such-command-xyz"]);
  });

  test("a script whose interpreter does not exist fails saying so", async () => {
    const s = await setup();
    const script = join(s.rootPath, "no-interpreter.sh");
    writeFileSync(script, "#!/odin/no/such/interpreter\necho hi\n");
    chmodSync(script, 0o755);
    await s.backend.launch(s.spec({ name: "interp", command: [script] }));
    const e = await s.terminal("interp");
    assert.equal(e.state, "FAILED");
    assert.equal(e.reason, "CommandNotFound");
    assert.equal(e.message, `command not found: the interpreter on the #! line of ${script}`);
  });

  test("a file that is not executable fails with a clear message", async () => {
    const s = await setup();
    const script = join(s.rootPath, "not-executable.sh");
    writeFileSync(script, "#!/bin/sh\necho hi\n");
    chmodSync(script, 0o644);
    await s.backend.launch(s.spec({ name: "noexec", command: [script] }));
    const e = await s.terminal("noexec");
    assert.equal(e.state, "FAILED");
    assert.equal(e.reason, "CommandNotExecutable");
    assert.match(e.message ?? "", /permission denied/);
  });

  test("a process killed by a signal fails with the signal as reason", async () => {
    const s = await setup();
    await s.backend.launch(s.spec({ name: "killed", command: ["sh", "-c", "kill -KILL $$"] }));
    const e = await s.terminal("killed");
    assert.equal(e.state, "FAILED");
    assert.equal(e.reason, "SIGKILL");
    assert.equal(e.exitCode, 137);
  });

  test("outputs.json becomes outputsJson of the terminal event", async () => {
    const s = await setup();
    await s.backend.launch(
      s.spec({
        name: "out",
        command: ["sh", "-c", `echo '{"acc": 0.91, "model": "m-1"}' > outputs.json`],
      }),
    );
    const e = await s.terminal("out");
    assert.equal(e.state, "SUCCEEDED");
    assert.deepEqual(JSON.parse(e.outputsJson ?? "null"), { acc: 0.91, model: "m-1" });
  });

  test("outputs.json that is not a small JSON object file is ignored with a warning", async () => {
    const s = await setup({ maxOutputsBytes: 100 });
    const cases: [string, string, RegExp][] = [
      ["list", `echo '[1, 2]' > outputs.json`, /JSON object/],
      ["broken", `echo '{"a":' > outputs.json`, /not valid JSON/],
      ["big", `printf '{"a": "%0200d"}' 1 > outputs.json`, /limit/],
      ["link", `echo '{"a": 1}' > ../real.json; ln -s ../real.json outputs.json`, /symbolic link/],
    ];
    for (const [name, script] of cases) {
      await s.backend.launch(s.spec({ name, command: ["sh", "-c", script] }));
    }
    for (const [name, , problem] of cases) {
      const e = await s.terminal(name);
      assert.equal(e.state, "SUCCEEDED", name);
      assert.equal(e.outputsJson, undefined, name);
      const warnings = await s.backend.events({ runId: s.runId, task: name });
      const warning = warnings.find((w) => w.reason === "OutputsIgnored");
      assert.ok(warning, `${name}: ${JSON.stringify(warnings)}`);
      assert.match(warning.message, problem, name);
    }
  });

  test("the environment holds Odin's variables and the task's env, and none of the parent's secrets", async () => {
    process.env["ODIN_TEST_FAKE_SECRET"] = "hunter2-should-not-leak";
    try {
      const s = await setup();
      await s.backend.launch(
        s.spec({
          name: "env",
          command: ["sh", "-c", "env; echo cwd=$(pwd -P)"],
          env: {
            GREETING: "hello world",
            TASK_PATH: "/elsewhere",
            ODIN_RUN_ID: "forged",
            HOME: "/task-home",
          },
        }),
      );
      assert.equal((await s.terminal("env")).state, "SUCCEEDED");
      const lines = await s.logs("env");
      const env = new Map(
        lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
      const taskPath = join(s.dataRoot, s.runId, "env");
      const expected: Record<string, string> = {
        ROOT_PATH: s.rootPath,
        WORK_PATH: join(s.rootPath, "pipe"),
        DATA_PATH: s.dataRoot,
        RUN_PATH: join(s.dataRoot, s.runId),
        TASK_PATH: taskPath,
        PIPE_ID: s.runId,
        TASK_ID: `${s.runId}--env`,
        TASK_NAME: "env",
        ODIN_TASK_ID: `${s.runId}--env`,
        ODIN_RUN_ID: s.runId,
        ODIN_ATTEMPT: "1",
        GREETING: "hello world",
        HOME: "/task-home",
        PATH: process.env["PATH"] ?? "",
        cwd: taskPath,
      };
      for (const [name, value] of Object.entries(expected))
        assert.equal(env.get(name), value, name);
      assert.ok(!lines.some((l) => l.includes("hunter2")), "the parent's secret leaked");
      assert.ok(!env.has("ODIN_TEST_FAKE_SECRET"));
    } finally {
      delete process.env["ODIN_TEST_FAKE_SECRET"];
    }
  });

  test("stdout and stderr are interleaved in the order they were written", async () => {
    const s = await setup();
    await s.backend.launch(
      s.spec({
        name: "both",
        command: ["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"],
      }),
    );
    await s.terminal("both");
    assert.deepEqual(await s.logs("both"), ["out1", "err1", "out2", "err2"]);
  });

  test("a task's timeout is not this backend's to enforce: the attempt runs to its end", async () => {
    // The scheduler's run engine stops a task past its timeout and records DeadlineExceeded.
    const s = await setup();
    await s.backend.launch(
      s.spec({ name: "slowish", command: ["sh", "-c", "sleep 0.3"], timeoutMs: 50 }),
    );
    const e = await s.terminal("slowish");
    assert.equal(e.state, "SUCCEEDED");
  });

  test("the ignored image is warned about, in the events and the log", async () => {
    const lines: string[] = [];
    const logger = createLogger({ service: "test", write: (l) => lines.push(l) });
    const s = await setup({ logger });
    await s.backend.launch(s.spec({ name: "img", image: "busybox:1.36", command: ["true"] }));
    await s.terminal("img");
    const events = await s.backend.events({ runId: s.runId, task: "img", attempt: 1 });
    assert.deepEqual(
      events.map((e) => `${e.type}/${e.reason}`),
      ["Warning/ImageIgnored", "Normal/Started", "Normal/Completed"],
    );
    assert.ok(
      lines.some((l) => l.includes("busybox:1.36") && l.includes('"warn"')),
      lines.join("\n"),
    );
  });

  test("events raised before start are delivered, in order, on start", async () => {
    const d = dirs();
    const backend = new LocalBackend({ ...d, logPollMs: 50 });
    opened.push(backend);
    const runId = newRunId("early");
    await backend.launch({
      runId,
      pipeline: "pipe",
      commit: "c0ffee",
      task: taskWithDefaults({ name: "early", image: "", command: ["true"] }),
      attempt: 1,
      paths: pathsFor(d, runId, "early"),
    });
    await waitFor(
      () =>
        (
          JSON.parse(readFileSync(join(d.logDir, runId, "early", "1.json"), "utf8")) as {
            status: string;
          }
        ).status === "SUCCEEDED",
      "the attempt to finish",
    );
    const events: TaskStateEvent[] = [];
    await backend.start((e) => {
      events.push(e);
      return Promise.resolve();
    });
    await waitFor(() => events.length === 2, "two events");
    assert.deepEqual(
      events.map((e) => e.state),
      ["RUNNING", "SUCCEEDED"],
    );
  });

  test("a failed report is retried until it is accepted", async () => {
    const d = dirs();
    const backend = new LocalBackend({ ...d, logPollMs: 50 });
    opened.push(backend);
    let refusals = 2;
    const events: TaskStateEvent[] = [];
    await backend.start((e) => {
      if (refusals-- > 0) return Promise.reject(new Error("bus down"));
      events.push(e);
      return Promise.resolve();
    });
    const runId = newRunId("retry");
    await backend.launch({
      runId,
      pipeline: "pipe",
      commit: "c0ffee",
      task: taskWithDefaults({ name: "t", image: "", command: ["true"] }),
      attempt: 1,
      paths: pathsFor(d, runId, "t"),
    });
    await waitFor(() => events.length === 2, "two events");
    assert.deepEqual(
      events.map((e) => e.state),
      ["RUNNING", "SUCCEEDED"],
    );
  });

  test("ids and paths are checked before anything runs", async () => {
    const s = await setup();
    const outside = mkdtempSync(join(scratch, "outside-"));
    const bad: [string, LaunchSpec][] = [
      ["run id", { ...s.spec({ name: "t", command: ["true"] }), runId: "Bad_Run" }],
      ["task name", s.spec({ name: "../escape", command: ["true"] })],
      ["attempt", s.spec({ name: "t", command: ["true"] }, 0)],
      ["empty command", s.spec({ name: "t", command: [] })],
      [
        "TASK_PATH outside",
        {
          ...s.spec({ name: "t", command: ["true"] }),
          paths: { ...pathsFor(s, s.runId, "t"), taskPath: outside },
        },
      ],
      [
        "TASK_PATH climbing out",
        {
          ...s.spec({ name: "t", command: ["true"] }),
          paths: { ...pathsFor(s, s.runId, "t"), taskPath: `${s.dataRoot}/../escape` },
        },
      ],
      [
        "TASK_PATH is the data root",
        {
          ...s.spec({ name: "t", command: ["true"] }),
          paths: { ...pathsFor(s, s.runId, "t"), taskPath: s.dataRoot },
        },
      ],
    ];
    for (const [what, spec] of bad) {
      // pipeline-spec's id checks throw errors named InvalidArgumentError too (INVALID_ARGUMENT).
      await assert.rejects(s.backend.launch(spec), { name: "InvalidArgumentError" }, what);
    }
    assert.equal(existsSync(join(s.dataRoot, "..", "escape")), false);
    assert.deepEqual(s.events, []);
  });

  test("a TASK_PATH that leads out of the data root through a link is refused", async () => {
    const s = await setup();
    const outside = mkdtempSync(join(scratch, "outside-"));
    mkdirSync(join(s.dataRoot, s.runId), { recursive: true });
    symlinkSync(outside, join(s.dataRoot, s.runId, "link"));
    const spec = s.spec({ name: "t", command: ["sh", "-c", "touch escaped"] });
    spec.paths.taskPath = join(s.dataRoot, s.runId, "link", "t");
    await s.backend.launch(spec);
    const e = await s.terminal("t");
    assert.equal(e.state, "ERROR");
    assert.equal(e.reason, "InvalidTaskPath");
    assert.equal(existsSync(join(outside, "t")), false, "nothing was created outside");
  });

  test("deleteRun stops the run's processes and purges RUN_PATH only below the data root", async () => {
    const s = await setup();
    await s.backend.launch(
      s.spec({ name: "a", command: ["sh", "-c", "echo data > file; sleep 300"] }),
    );
    await s.backend.launch(s.spec({ name: "b", command: ["true"] }));
    await s.running("a");
    await s.terminal("b");
    const runPath = join(s.dataRoot, s.runId);
    await assert.rejects(
      s.backend.deleteRun(s.runId, { purgeData: true, runPath: s.rootPath }),
      InvalidArgumentError,
    );
    await assert.rejects(
      s.backend.deleteRun(s.runId, { purgeData: true, runPath: join(s.dataRoot, "other-run") }),
      InvalidArgumentError,
    );
    await assert.rejects(
      s.backend.deleteRun(s.runId, { purgeData: true, runPath: join(s.dataRoot, "..", s.runId) }),
      InvalidArgumentError,
    );
    assert.ok(existsSync(join(s.rootPath, "pipe")), "nothing outside was deleted");
    assert.ok(existsSync(runPath));
    const result = await s.backend.deleteRun(s.runId, { purgeData: true, runPath });
    assert.deepEqual(result, { deleted: 2, dataPurged: true });
    assert.equal(existsSync(runPath), false);
    assert.equal(existsSync(join(s.logDir, s.runId)), false);
    assert.deepEqual(
      s.events.filter((e) => e.task === "a").map((e) => e.state),
      ["RUNNING"],
    );
    assert.deepEqual(await s.backend.deleteRun(s.runId, { purgeData: false }), {
      deleted: 0,
      dataPurged: false,
    });
  });

  test("deleteRun without purge keeps the logs and lets the attempt be launched again", async () => {
    const s = await setup();
    const spec = s.spec({ name: "t", command: ["sh", "-c", "echo once"] });
    await s.backend.launch(spec);
    await s.terminal("t");
    assert.deepEqual(await s.backend.deleteRun(s.runId, { purgeData: false }), {
      deleted: 1,
      dataPurged: false,
    });
    assert.deepEqual(await s.logs("t"), ["once"]);
    assert.equal((await s.backend.launch(spec)).alreadyExisted, false);
  });

  test("logs of an unknown task are NOT_FOUND", async () => {
    const s = await setup();
    await assert.rejects(
      collect(s.backend.logs({ runId: s.runId, task: "ghost" }, { follow: false })),
      {
        name: "NotFoundError",
      },
    );
    assert.deepEqual(await s.backend.events({ runId: s.runId, task: "ghost" }), []);
  });
});

describe("LocalBackend after a restart", () => {
  // Compiled (node --test dist/) or from source under tsx.
  const compiled = fileURLToPath(new URL("./local-backend.js", import.meta.url));
  const [here, loader] = existsSync(compiled)
    ? [compiled, []]
    : [fileURLToPath(new URL("./local-backend.ts", import.meta.url)), ["--import", "tsx"]];

  /**
   * A task that counts its runs in a file, prints, waits for a `go` file, writes outputs and exits
   * 3: its end is the test's to choose, with no clock involved.
   */
  function waitingSpec(d: ReturnType<typeof dirs>, prefix: string) {
    const runId = newRunId(prefix);
    const runs = join(d.rootPath, `${runId}.runs`);
    const go = join(d.rootPath, `${runId}.go`);
    const spec: LaunchSpec = {
      runId,
      pipeline: "pipe",
      commit: "c0ffee",
      task: taskWithDefaults({
        name: "survivor",
        image: "",
        command: [
          "sh",
          "-c",
          `echo run >> "$1"; echo started; while [ ! -e "$2" ]; do sleep 0.05; done; echo '{"words": 7}' > outputs.json; echo finished; exit 3`,
          "sh",
          runs,
          go,
        ],
      }),
      attempt: 1,
      paths: pathsFor(d, runId, "survivor"),
    };
    const runCount = () =>
      existsSync(runs) ? readFileSync(runs, "utf8").split("\n").length - 1 : 0;
    return { runId, spec, runCount, release: () => writeFileSync(go, "") };
  }

  /** Launches `spec` from a launcher in its own process, then kills that launcher with SIGKILL. */
  async function launchThenKillLauncher(
    t: { after(fn: () => void): void },
    d: ReturnType<typeof dirs>,
    spec: LaunchSpec,
  ): Promise<{ pid: number }> {
    const program = `
      const { LocalBackend } = await import(${JSON.stringify(here)});
      const backend = new LocalBackend(${JSON.stringify(d)});
      await backend.launch(${JSON.stringify(spec)});
      console.log("launched");
      setInterval(() => {}, 1000);
    `;
    const launcher = spawn(process.execPath, [...loader, "--input-type=module", "-e", program], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    t.after(() => launcher.kill("SIGKILL"));
    await new Promise<void>((resolve, reject) => {
      launcher.stdout.on("data", (b: Buffer) => b.toString().includes("launched") && resolve());
      launcher.on("exit", (code) => reject(new Error(`the launcher exited early (${code})`)));
    });
    const record = JSON.parse(
      readFileSync(join(d.logDir, spec.runId, spec.task.name, "1.json"), "utf8"),
    ) as { pid: number; status: string };
    assert.equal(record.status, "RUNNING");
    launcher.kill("SIGKILL");
    await new Promise((r) => launcher.once("exit", r));
    assert.ok(alive(record.pid), "the task outlived its launcher");
    // Whatever happens, nothing of the task outlives the test.
    t.after(() => {
      try {
        process.kill(-record.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    });
    return { pid: record.pid };
  }

  async function startCollecting(
    d: ReturnType<typeof dirs>,
  ): Promise<{ backend: LocalBackend; events: TaskStateEvent[] }> {
    const events: TaskStateEvent[] = [];
    const backend = new LocalBackend({ ...d, logPollMs: 50 });
    await backend.start((e) => {
      events.push(e);
      return Promise.resolve();
    });
    return { backend, events };
  }

  test("an attempt still running when its launcher was killed is adopted: not run again, its log served, its exit reported once", async (t) => {
    const d = dirs();
    const { runId, spec, runCount, release } = waitingSpec(d, "adopt");
    const { pid } = await launchThenKillLauncher(t, d, spec);

    const second = await startCollecting(d);
    t.after(() => second.backend.close());
    assert.equal((await second.backend.launch(spec)).alreadyExisted, true, "not started again");
    await waitFor(() => second.events.length >= 1, "the adopted attempt's RUNNING");
    assert.equal(second.events[0]?.state, "RUNNING", "the first launcher never reported it");
    const lines: string[] = [];
    const following = (async () => {
      for await (const l of second.backend.logs({ runId, task: "survivor" }, { follow: true }))
        lines.push(l.line);
    })();
    await waitFor(() => lines.includes("started"), "the log before the restart");
    release();
    await following;
    assert.deepEqual(lines, ["started", "finished"]);
    await waitFor(() => second.events.length >= 2, "the adopted attempt's end");
    const end = second.events[1]!;
    assert.equal(end.state, "FAILED");
    assert.equal(end.exitCode, 3);
    assert.equal(end.outputsJson, '{"words":7}');
    assert.equal(second.events.length, 2);
    assert.ok(!alive(pid));
    assert.equal(runCount(), 1, "the task ran once");
    const reasons = (await second.backend.events({ runId, task: "survivor" })).map((e) => e.reason);
    assert.ok(reasons.includes("Adopted"), JSON.stringify(reasons));
    await second.backend.close();

    const third = await startCollecting(d);
    t.after(() => third.backend.close());
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(third.events, [], "reported once, not on every start");
  });

  test("an attempt that ended while no launcher ran is reported from the exit status it left", async (t) => {
    const d = dirs();
    const { spec, runCount, release } = waitingSpec(d, "ended");
    const { pid } = await launchThenKillLauncher(t, d, spec);
    release();
    await waitFor(() => !alive(pid), "the task to end with no launcher");

    const second = await startCollecting(d);
    t.after(() => second.backend.close());
    await waitFor(() => second.events.length >= 2, "the attempt's RUNNING and end");
    assert.deepEqual(
      second.events.map((e) => [e.state, e.exitCode, e.outputsJson]),
      [
        ["RUNNING", undefined, undefined],
        ["FAILED", 3, '{"words":7}'],
      ],
    );
    assert.equal(runCount(), 1);
  });

  test("an attempt whose supervisor was killed with the launcher is stopped and reported ERROR exactly once", async (t) => {
    const d = dirs();
    const { runId, spec, runCount } = waitingSpec(d, "crash");
    const { pid } = await launchThenKillLauncher(t, d, spec);
    // The supervisor dies too; its program runs on in the group, and no exit status will come.
    process.kill(pid, "SIGKILL");
    await waitFor(() => !alive(pid), "the supervisor to die");

    const second = await startCollecting(d);
    t.after(() => second.backend.close());
    await waitFor(() => second.events.length >= 1, "the lost attempt's report");
    assert.equal(second.events.length, 1);
    assert.equal(second.events[0]?.state, "ERROR");
    assert.equal(second.events[0]?.reason, launcherRestartedReason);
    // The orphaned program went with its group.
    await waitFor(() => {
      try {
        process.kill(-pid, 0);
        return false;
      } catch {
        return true;
      }
    }, "the leftover program to be stopped");
    assert.equal((await second.backend.launch(spec)).alreadyExisted, true);
    const reasons = (await second.backend.events({ runId, task: "survivor" })).map((e) => e.reason);
    assert.ok(reasons.includes(launcherRestartedReason), JSON.stringify(reasons));
    assert.equal(runCount(), 1);
    await second.backend.close();

    const third = await startCollecting(d);
    t.after(() => third.backend.close());
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(third.events, [], "reported once, not on every start");
  });

  test("an attempt stopped by close() is not adopted: the next instance reports it ERROR", async (t) => {
    const d = dirs();
    const { spec, runCount } = waitingSpec(d, "closed");
    const first = new LocalBackend({ ...d, logPollMs: 50, killGraceMs: 1000 });
    await first.launch(spec);
    await waitFor(() => runCount() === 1, "the task to start");
    await first.close();
    const second = await startCollecting(d);
    t.after(() => second.backend.close());
    await waitFor(() => second.events.length >= 1, "the report");
    assert.equal(second.events.at(-1)?.state, "ERROR");
    assert.equal(second.events.at(-1)?.reason, launcherRestartedReason);
  });

  test("a terminal state never accepted by report is reported by the next instance", async () => {
    const d = dirs();
    const first = new LocalBackend({ ...d, logPollMs: 50 });
    const runId = newRunId("unacked");
    // Never started: nothing it raises is delivered.
    await first.launch({
      runId,
      pipeline: "pipe",
      commit: "c0ffee",
      task: taskWithDefaults({ name: "t", image: "", command: ["sh", "-c", "exit 4"] }),
      attempt: 1,
      paths: pathsFor(d, runId, "t"),
    });
    const recordPath = join(d.logDir, runId, "t", "1.json");
    await waitFor(
      () =>
        (JSON.parse(readFileSync(recordPath, "utf8")) as { status: string }).status === "FAILED",
      "the attempt to fail",
    );
    await first.close();
    const second = new LocalBackend({ ...d, logPollMs: 50 });
    const events: TaskStateEvent[] = [];
    await second.start((e) => {
      events.push(e);
      return Promise.resolve();
    });
    await waitFor(() => events.length === 1, "the report");
    assert.equal(events[0]?.state, "FAILED");
    assert.equal(events[0]?.exitCode, 4);
    await second.close();
    const third = new LocalBackend({ ...d, logPollMs: 50 });
    const again: TaskStateEvent[] = [];
    await third.start((e) => {
      again.push(e);
      return Promise.resolve();
    });
    await new Promise((r) => setTimeout(r, 200));
    await third.close();
    assert.deepEqual(again, []);
  });
});
