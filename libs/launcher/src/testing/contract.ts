// The contract every TaskBackend adapter passes, written against the port alone. Each adapter's
// test file runs it with a fixture saying how to express, for that backend, "a task that prints
// these lines and exits with this code after this long" (a shell command for local processes; an
// image and a kube-sim script for Kubernetes).
import { afterEach, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { newRunId, type Task } from "@odin/pipeline-spec";
import type {
  LaunchResult,
  LogLine,
  LogOptions,
  ReportedState,
  TaskBackend,
  TaskPaths,
  TaskStateEvent,
} from "../backend.js";

/** What a contract task does. */
export interface ContractTaskBehaviour {
  /** The task's name (a DNS label, unique within its run). */
  name: string;
  /** Lines it prints, in order; all at its start or spread over `runMs`, either is fine. */
  lines: readonly string[];
  /** Code it exits with. */
  exitCode: number;
  /** How long it runs before exiting, in ms. */
  runMs: number;
}

/** How the contract suite drives one backend. */
export interface BackendContractFixture {
  /** A task behaving as described, for the backend under test. */
  makeTask(behaviour: ContractTaskBehaviour): Task;
  /** Where a task's files are for this backend (`paths` of the LaunchSpec). */
  paths(runId: string, taskName: string): TaskPaths;
  /** Longest wait for a state to be reported or a log to end, in ms (default 15000). */
  timeoutMs?: number;
  /** How long to watch for a report that must not come, in ms (default 1000). */
  quietMs?: number;
  /** Runs once after the suite (stop servers, remove temporary directories). */
  teardown?: () => Promise<void>;
}

/**
 * A task with every field of the model at its default, overridden by `fields` — for fixtures and
 * tests that need a `Task` without a pipeline file.
 */
export function taskWithDefaults(
  fields: Pick<Task, "name" | "image" | "command"> & Partial<Task>,
): Task {
  return {
    args: [],
    depends: [],
    mounts: [],
    ephemeralVolumes: [],
    secrets: [],
    configMaps: [],
    numGpus: 0,
    pullPolicy: "IfNotPresent",
    nodeSelector: {},
    resourceType: "Pod",
    numWorkers: 1,
    inputs: [],
    outputs: {},
    env: {},
    tolerations: [],
    labels: {},
    annotations: {},
    retries: 0,
    retryBackoffMs: 10_000,
    extra: {},
    ...fields,
  };
}

const terminalStates: ReadonlySet<ReportedState> = new Set(["SUCCEEDED", "FAILED", "ERROR"]);

/**
 * Registers the TaskBackend contract tests for one adapter. `makeBackend` gives a fresh,
 * unstarted backend per test; the suite starts it with a collecting `report` and closes it.
 */
export function backendContract(
  name: string,
  makeBackend: () => Promise<TaskBackend>,
  fixture: BackendContractFixture,
): void {
  const timeoutMs = fixture.timeoutMs ?? 60_000;
  const quietMs = fixture.quietMs ?? 1000;

  describe(`TaskBackend contract: ${name}`, () => {
    const opened: TaskBackend[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((b) => b.close()));
    });
    after(async () => {
      await fixture.teardown?.();
    });

    /** A started backend with one run of its own and what it reported. */
    async function harness() {
      const backend = await makeBackend();
      opened.push(backend);
      const events: TaskStateEvent[] = [];
      await backend.start((event) => {
        events.push(event);
        return Promise.resolve();
      });
      const runId = newRunId("contract");
      const of = (task: string, attempt = 1) =>
        events.filter((e) => e.runId === runId && e.task === task && e.attempt === attempt);
      return {
        backend,
        events,
        runId,
        of,
        launch(behaviour: ContractTaskBehaviour, attempt = 1): Promise<LaunchResult> {
          const task = fixture.makeTask(behaviour);
          return backend.launch({
            runId,
            pipeline: "contract",
            commit: "0000000000000000000000000000000000000000",
            task,
            attempt,
            paths: fixture.paths(runId, task.name),
          });
        },
        /** Waits until `state` is reported for the attempt and returns the event. */
        async reported(task: string, state: ReportedState, attempt = 1): Promise<TaskStateEvent> {
          await waitFor(
            () => of(task, attempt).some((e) => e.state === state),
            timeoutMs,
            () =>
              `${state} of ${task} attempt ${attempt}; reported so far: ${JSON.stringify(of(task, attempt).map((e) => e.state))}`,
          );
          return of(task, attempt).find((e) => e.state === state)!;
        },
        logs(task: string, options: Partial<LogOptions> = {}): Promise<LogLine[]> {
          return collect(backend.logs({ runId, task, attempt: 1 }, { follow: false, ...options }));
        },
      };
    }

    test("a task that succeeds is reported RUNNING, then SUCCEEDED", async () => {
      const h = await harness();
      const launched = await h.launch({ name: "ok", lines: ["hello"], exitCode: 0, runMs: 300 });
      assert.equal(launched.alreadyExisted, false);
      assert.ok(launched.objectName.length > 0);
      const done = await h.reported("ok", "SUCCEEDED");
      const states = h.of("ok").map((e) => e.state);
      assert.deepEqual(states, ["RUNNING", "SUCCEEDED"]);
      assert.ok(done.exitCode === undefined || done.exitCode === 0);
      for (const e of h.of("ok")) {
        assert.equal(e.objectName, launched.objectName);
        assert.ok(e.time instanceof Date);
      }
    });

    test("a task that fails is reported FAILED with its exit code", async () => {
      const h = await harness();
      await h.launch({ name: "bad", lines: ["oops"], exitCode: 3, runMs: 300 });
      const failed = await h.reported("bad", "FAILED");
      assert.equal(failed.exitCode, 3);
      await sleep(quietMs);
      assert.deepEqual(
        h.of("bad").map((e) => e.state),
        ["RUNNING", "FAILED"],
      );
    });

    test("launching the same attempt again starts nothing and says it already existed", async () => {
      const h = await harness();
      const behaviour = { name: "once", lines: ["ran"], exitCode: 0, runMs: 500 };
      const results = await Promise.all([h.launch(behaviour), h.launch(behaviour)]);
      results.push(await h.launch(behaviour));
      assert.equal(results.filter((r) => !r.alreadyExisted).length, 1);
      assert.equal(new Set(results.map((r) => r.objectName)).size, 1);
      await h.reported("once", "SUCCEEDED");
      const late = await h.launch(behaviour);
      assert.equal(late.alreadyExisted, true);
      await sleep(quietMs);
      assert.deepEqual(
        h.of("once").map((e) => e.state),
        ["RUNNING", "SUCCEEDED"],
      );
      assert.deepEqual(
        (await h.logs("once")).map((l) => l.line),
        ["ran"],
      );
    });

    test("a new attempt of a task is a launch of its own", async () => {
      const h = await harness();
      const first = await h.launch({ name: "again", lines: ["1"], exitCode: 1, runMs: 100 });
      await h.reported("again", "FAILED", 1);
      const second = await h.launch({ name: "again", lines: ["2"], exitCode: 0, runMs: 100 }, 2);
      assert.equal(second.alreadyExisted, false);
      assert.notEqual(second.objectName, first.objectName);
      await h.reported("again", "SUCCEEDED", 2);
      const latest = await collect(
        h.backend.logs({ runId: h.runId, task: "again" }, { follow: false }),
      );
      assert.deepEqual(
        latest.map((l) => l.line),
        ["2"],
        "no attempt given means the latest",
      );
    });

    test("cancel stops a running task, which then reports no terminal state", async () => {
      const h = await harness();
      await h.launch({ name: "long", lines: ["started"], exitCode: 0, runMs: 120_000 });
      await h.reported("long", "RUNNING");
      const follow = collect(
        h.backend.logs({ runId: h.runId, task: "long", attempt: 1 }, { follow: true }),
      );
      const stopped = await h.backend.cancel({ runId: h.runId, task: "long", attempt: 1 });
      assert.ok(stopped >= 1, `cancel said it stopped ${stopped} objects`);
      await withTimeout(follow, timeoutMs, "the log follow to end after cancel");
      await sleep(quietMs);
      assert.deepEqual(
        h.of("long").map((e) => e.state),
        ["RUNNING"],
      );
      assert.equal(await h.backend.cancel({ runId: h.runId, task: "long", attempt: 1 }), 0);
    });

    test("logs of a finished task are readable whole and by tail", async () => {
      const h = await harness();
      const lines = ["l1", "l2", "l3", "l4", "l5"];
      await h.launch({ name: "talk", lines, exitCode: 0, runMs: 200 });
      await h.reported("talk", "SUCCEEDED");
      const all = await h.logs("talk");
      assert.deepEqual(
        all.map((l) => l.line),
        lines,
      );
      const pods = new Set(all.map((l) => l.pod));
      assert.equal(pods.size, 1);
      assert.ok(all.every((l) => l.pod.length > 0 && l.container.length > 0));
      assert.deepEqual(
        (await h.logs("talk", { tailLines: 2 })).map((l) => l.line),
        ["l4", "l5"],
      );
      assert.deepEqual(
        (await h.logs("talk", { tailLines: 2, follow: true })).map((l) => l.line),
        ["l4", "l5"],
        "following a finished task ends after its last line",
      );
      const [pod] = pods;
      assert.deepEqual(
        (await h.logs("talk", { pod: pod! })).map((l) => l.line),
        lines,
      );
    });

    test("follow streams lines while the task runs and ends when it has finished", async () => {
      const h = await harness();
      await h.launch({ name: "stream", lines: ["one", "two", "three"], exitCode: 0, runMs: 2500 });
      await h.reported("stream", "RUNNING");
      const seen: { line: string; finished: boolean }[] = [];
      await withTimeout(
        (async () => {
          const stream = h.backend.logs(
            { runId: h.runId, task: "stream", attempt: 1 },
            { follow: true },
          );
          for await (const l of stream) {
            seen.push({
              line: l.line,
              finished: h.of("stream").some((e) => e.state !== "RUNNING"),
            });
          }
        })(),
        timeoutMs,
        "the log follow to end",
      );
      assert.deepEqual(
        seen.map((s) => s.line),
        ["one", "two", "three"],
      );
      assert.equal(seen[0]?.finished, false, "the first line arrived while the task ran");
      await h.reported("stream", "SUCCEEDED");
    });

    test("a follow ends when its signal aborts", async () => {
      const h = await harness();
      await h.launch({ name: "endless", lines: ["tick"], exitCode: 0, runMs: 120_000 });
      await h.reported("endless", "RUNNING");
      const abort = new AbortController();
      const got: string[] = [];
      const follow = (async () => {
        const stream = h.backend.logs(
          { runId: h.runId, task: "endless", attempt: 1 },
          { follow: true, signal: abort.signal },
        );
        for await (const l of stream) {
          got.push(l.line);
          abort.abort();
        }
      })();
      await withTimeout(follow, timeoutMs, "the aborted follow to end");
      assert.deepEqual(got, ["tick"]);
      await h.backend.cancel({ runId: h.runId, task: "endless" });
    });

    test("events lists what happened to the attempt", async () => {
      const h = await harness();
      const launched = await h.launch({ name: "seen", lines: [], exitCode: 0, runMs: 200 });
      await h.reported("seen", "SUCCEEDED");
      const events = await h.backend.events({ runId: h.runId, task: "seen", attempt: 1 });
      assert.ok(events.length >= 1, "at least one event");
      for (const e of events) {
        assert.equal(e.attempt, 1);
        assert.ok(e.time instanceof Date && !Number.isNaN(e.time.getTime()));
        assert.ok(e.type === "Normal" || e.type === "Warning");
        assert.ok(e.reason.length > 0 && e.objectName.length > 0);
      }
      assert.ok(
        events.some((e) => e.objectName === launched.objectName),
        "events name the launched object",
      );
    });

    test("no state is reported twice for one attempt", async () => {
      const h = await harness();
      await Promise.all(
        ["a", "b", "c"].map((t, i) =>
          h.launch({ name: t, lines: [t], exitCode: i === 1 ? 2 : 0, runMs: 200 }),
        ),
      );
      await Promise.all([
        h.reported("a", "SUCCEEDED"),
        h.reported("b", "FAILED"),
        h.reported("c", "SUCCEEDED"),
      ]);
      await sleep(quietMs);
      // Only this run: a backend may also report other runs it finds on start (a shared cluster).
      const mine = h.events.filter((e) => e.runId === h.runId);
      const ids = mine.map((e) => `${e.task}.${e.attempt}.${e.state}`);
      assert.equal(new Set(ids).size, ids.length, `duplicates in ${JSON.stringify(ids)}`);
      assert.equal(mine.filter((e) => terminalStates.has(e.state)).length, 3);
    });
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(10);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
