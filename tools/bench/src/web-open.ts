/// <reference lib="dom" />
// Benchmark: opening a 10,000-task run in the web UI. Starts `odin server` with a pipeline of
// BENCH_WEB_TASKS tasks (a root, a fan-out, a join; two at a time), submits a run, then per round
// measures what the Run page waits for, as the browser asks for it over HTTP (gzip accepted, as a
// browser does): the WatchRun snapshot (to its last part) and the pipeline's graph at the run's
// commit — time to the last byte, bytes on the wire and decompressed — and, where Chromium is
// installed, the page itself: navigation to the first paint of the whole graph with every task's
// state, and the server's CPU time per round. Then, on the open page, how responsive it stays: a
// click on a task in the list until its panel shows the task's state history, and — on a run
// submitted for the purpose ("cancelling") — a cancel until the page shows it asked for (one run
// update) and until it shows every one of the run's tasks ended (10,000 task updates).
// BENCH_WEB_PROFILE=DIR writes a CPU profile of the page's opening per scenario (last round).
//
// BENCH_WEB_ROOTS (comma-separated checkouts of this repository, built) measures several builds
// side by side, round by round (A B A B …), so a before/after ratio is taken on the same machine
// at the same time. Prints one JSON line per build and one with the ratios to the first.
import { request } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { descriptorSetPath } from "@odin/proto";
import { chromium, type Browser } from "playwright-core";
import { children, cpuMs, startChild } from "./processes.js";

const tasks = Number(process.env.BENCH_WEB_TASKS ?? 10_000);
const rounds = Number(process.env.BENCH_RUNS ?? 5);
const here = fileURLToPath(new URL("../../../", import.meta.url));
const roots = (process.env.BENCH_WEB_ROOTS ?? here).split(",").map((r) => resolve(r.trim()));
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath)),
);
function message(name: string): DescMessage {
  const desc = registry.getMessage(name);
  if (!desc) throw new Error(`${name} is not in the descriptor set`);
  return desc;
}
const GetPipelineRequest = message("odin.pipelineregistry.v1.GetPipelineRequest");
const GetPipelineGraphRequest = message("odin.pipelineregistry.v1.GetPipelineGraphRequest");
const WatchRunRequest = message("odin.dagscheduler.v1.WatchRunRequest");
const WatchRunResponse = message("odin.dagscheduler.v1.WatchRunResponse");

/** A run to open: one still running (few tasks have records), or one cancelled (every task has). */
interface Run {
  id: string;
  pipelinePath: string;
  commit: string;
}

interface Server {
  root: string;
  web: string;
  pid: number | undefined;
  runs: Record<Scenario, Run>;
  dir: string;
  /** Calls a DagSchedulerService method with JSON. */
  call(method: string, body: unknown): Promise<{ run: Run & { state: string } }>;
}

type Scenario = "running" | "cancelled" | "cancelling";
const scenarios: Scenario[] = (process.env.BENCH_WEB_SCENARIOS ?? "running,cancelled,cancelling")
  .split(",")
  .map((x) => x.trim() as Scenario);

/** One HTTP POST; resolves with the raw body (decompressed), its size on the wire and when each chunk came. */
function post(
  url: string,
  contentType: string,
  body: Uint8Array,
  onChunk?: (body: Buffer) => boolean,
): Promise<{ status: number; body: Buffer; wireBytes: number; ms: number; encoding: string }> {
  const started = performance.now();
  return new Promise((done, fail) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: {
          "content-type": contentType,
          "accept-encoding": "gzip",
          "connect-protocol-version": "1",
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let wire = 0;
        res.on("data", (c: Buffer) => {
          chunks.push(c);
          wire += c.length;
          // A stream: the caller says when it has what it waits for (the snapshot's last part).
          if (onChunk && res.headers["content-encoding"] === undefined) {
            if (onChunk(Buffer.concat(chunks))) {
              const ms = performance.now() - started;
              req.destroy();
              done({
                status: res.statusCode ?? 0,
                body: Buffer.concat(chunks),
                wireBytes: wire,
                ms,
                encoding: "identity",
              });
            }
          }
        });
        res.on("end", () => {
          const raw = Buffer.concat(chunks);
          const encoding = String(res.headers["content-encoding"] ?? "identity");
          done({
            status: res.statusCode ?? 0,
            body: encoding === "gzip" ? gunzipSync(raw) : raw,
            wireBytes: wire,
            ms: performance.now() - started,
            encoding,
          });
        });
        res.on("error", fail);
      },
    );
    req.on("error", (err) => {
      if (!req.destroyed || !(err as NodeJS.ErrnoException).code?.includes("RESET")) fail(err);
    });
    req.end(body);
  });
}

/** Connect streaming envelopes in a body: [flags, message bytes]. */
function envelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const size = body.readUInt32BE(at + 1);
    if (at + 5 + size > body.length) break;
    out.push({ flags: body[at]!, data: body.subarray(at + 5, at + 5 + size) });
    at += 5 + size;
  }
  return out;
}

function envelope(data: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

/** The WatchRun snapshot: time until its `last` part arrived, bytes, task runs. */
async function watchSnapshot(s: Server, run: Run) {
  let taskRuns = 0;
  let parsed = 0;
  let complete = false;
  const check = (body: Buffer): boolean => {
    const all = envelopes(body);
    for (; parsed < all.length; parsed++) {
      const e = all[parsed]!;
      if (e.flags & 2) continue;
      const m = fromBinary(WatchRunResponse, e.data) as unknown as {
        event: { case: string; value: { taskRuns: unknown[]; last: boolean } };
      };
      if (m.event.case === "snapshot") {
        taskRuns += m.event.value.taskRuns.length;
        if (m.event.value.last) complete = true;
      }
    }
    return complete;
  };
  // As the Run page asks (a build without max_snapshot_task_runs ignores it and sends all).
  const res = await post(
    `${s.web}odin.dagscheduler.v1.DagSchedulerService/WatchRun`,
    "application/connect+proto",
    envelope(
      toBinary(
        WatchRunRequest,
        create(WatchRunRequest, {
          runId: run.id,
          taskStatesFirst: true,
          maxSnapshotTaskRuns: 300,
        }),
      ),
    ),
    check,
  );
  if (!complete) check(res.body);
  if (!complete) throw new Error(`WatchRun of ${run.id} ended without a full snapshot`);
  return { ms: res.ms, wireBytes: res.wireBytes, taskRuns };
}

/**
 * What the Run page reads the DAG from: GetPipelineGraph, or on a build that has none (a 404 for
 * the method) the whole pipeline, as such a build's page did.
 */
async function getGraph(s: Server, run: Run) {
  let res = await post(
    `${s.web}odin.pipelineregistry.v1.PipelineRegistryService/GetPipelineGraph`,
    "application/proto",
    toBinary(
      GetPipelineGraphRequest,
      create(GetPipelineGraphRequest, { path: run.pipelinePath, commit: run.commit }),
    ),
  );
  if (res.status === 404)
    res = await post(
      `${s.web}odin.pipelineregistry.v1.PipelineRegistryService/GetPipeline`,
      "application/proto",
      toBinary(
        GetPipelineRequest,
        create(GetPipelineRequest, { path: run.pipelinePath, commit: run.commit }),
      ),
    );
  if (res.status !== 200) throw new Error(`the graph: HTTP ${res.status} ${res.body.toString()}`);
  return { ms: res.ms, wireBytes: res.wireBytes, bytes: res.body.length };
}

/**
 * In the page: clicks the link of a task in the task list and resolves with the ms until a frame
 * shows its panel with the task's state history (read from the server for a large run).
 */
function clickTask(task: string): Promise<number> {
  const link = document.querySelector<HTMLAnchorElement>(`.task-list li[data-task="${task}"] a`);
  if (!link) throw new Error(`no row of ${task} in the task list`);
  const started = performance.now();
  link.click();
  return new Promise((done) => {
    const check = (): void => {
      const panel = document.querySelector('[data-testid="task-panel"]');
      if (
        panel?.querySelector("#task-title")?.textContent === task &&
        panel.querySelector('[data-testid="history"]')
      )
        done(performance.now() - started);
      else requestAnimationFrame(check);
    };
    check();
  });
}

/**
 * In the page: cancels the open run with the API and resolves with the ms until a frame shows the
 * cancel asked for (the Cancel button disabled: one run update), and until one shows every task
 * ended and the run cancelled (all its task updates).
 */
async function cancelFromPage(
  runId: string,
): Promise<{ cancelShownMs: number; cancelAppliedMs: number }> {
  const started = performance.now();
  const res = await fetch("/odin.dagscheduler.v1.DagSchedulerService/CancelRun", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ runId }),
  });
  if (!res.ok) throw new Error(`CancelRun: ${res.status}`);
  const when = (ok: () => boolean): Promise<number> =>
    new Promise((done) => {
      const check = (): void =>
        ok() ? done(performance.now() - started) : void requestAnimationFrame(check);
      check();
    });
  const button = Array.from(document.querySelectorAll("button")).find(
    (b) => b.textContent === "Cancel",
  );
  const progress = (): string =>
    document.querySelector('[data-testid="progress"]')?.textContent ?? "";
  const shown = when(() => button?.disabled === true);
  const applied = when(() => {
    const m = /^(\d+)\/(\d+)/.exec(progress());
    return (
      m !== null &&
      m[1] === m[2] &&
      document.querySelector('[data-testid="run-state"]')?.textContent === "cancelled"
    );
  });
  return { cancelShownMs: await shown, cancelAppliedMs: await applied };
}

/** The Run page in Chromium: navigation to the first full render, its own marks, and responsiveness. */
async function openPage(
  browser: Browser,
  s: Server,
  run: Run,
  scenario: Scenario,
  profile?: string,
) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const cdp = profile ? await context.newCDPSession(page) : undefined;
  if (cdp) {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
    await cdp.send("Profiler.start");
  }
  const started = performance.now();
  await page.goto(`${s.web}runs/${run.id}`);
  await page.locator('[data-testid="dag"][data-complete]').waitFor({ timeout: 120_000 });
  const wallMs = performance.now() - started;
  if (cdp && profile) {
    const { profile: cpu } = await cdp.send("Profiler.stop");
    await writeFile(profile, JSON.stringify(cpu));
  }
  const marks = await page.evaluate(() => {
    const at = (name: string): number =>
      Math.round(performance.getEntriesByName(name)[0]?.startTime ?? -1);
    return {
      firstFullRenderMs: at("odin:first-full-render"),
      pipelineLoadedAtMs: at("odin:pipeline-loaded"),
      statesKnownAtMs: at("odin:states-known"),
      snapshotCompleteAtMs: at("odin:snapshot-complete"),
      layoutMs: Math.round(performance.getEntriesByName("odin:layout")[0]?.duration ?? -1),
    };
  });
  const responsive: Record<string, number> = {};
  if (scenario === "cancelling")
    Object.assign(responsive, await page.evaluate(cancelFromPage, run.id));
  else responsive["clickToPanelMs"] = await page.evaluate(clickTask, "shard-3");
  await context.close();
  return { wallMs, ...marks, ...responsive };
}

async function startServer(root: string): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), "odin-bench-web-"));
  const repo = join(dir, "pipelines", "wide");
  await mkdir(repo, { recursive: true });
  const shards = Array.from({ length: tasks - 2 }, (_, i) => `shard-${i}`);
  const spec = {
    name: "wide",
    parallelism: 2,
    tasks: [
      { name: "split", image: "busybox:1.36", command: ["sh", "-c", "sleep 300"] },
      ...shards.map((name) => ({
        name,
        image: "busybox:1.36",
        command: ["sh", "-c", "sleep 300"],
        depends: ["split"],
      })),
      { name: "merge", image: "busybox:1.36", command: ["true"], depends: shards },
    ],
  };
  await writeFile(join(repo, "main.yml"), JSON.stringify(spec));
  const { proc, match } = await startChild(
    [
      join(root, "apps/cli/dist/main.js"),
      "server",
      "--port",
      "0",
      "--http-port",
      "0",
      "--data",
      join(dir, "data"),
      "--repo",
      join(dir, "pipelines"),
    ],
    {},
    /web UI and HTTP\/JSON API: (\S+)/,
  );
  const web = match[1]!;
  const call = async (method: string, body: unknown): Promise<{ run: Run & { state: string } }> => {
    const res = await fetch(`${web}odin.dagscheduler.v1.DagSchedulerService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method}: ${res.status} ${await res.text()}`);
    const run = (
      (await res.json()) as { run: { id: string; pipeline: string; commit: string; state: string } }
    ).run;
    return {
      run: { id: run.id, pipelinePath: run.pipeline, commit: run.commit, state: run.state },
    };
  };
  const running = (await call("SubmitRun", { pipeline: "wide", requestId: "bench-running" })).run;
  const cancelled = (await call("SubmitRun", { pipeline: "wide", requestId: "bench-cancelled" }))
    .run;
  await call("CancelRun", { runId: cancelled.id });
  // Cancelling records every task that had not started as CANCELLED: a run whose every task has a
  // record, like one that has run to its end.
  for (
    let i = 0;
    (await call("GetRun", { runId: cancelled.id, taskPageSize: 1 })).run.state !==
    "RUN_STATE_CANCELLED";
    i++
  ) {
    if (i > 600) throw new Error(`run ${cancelled.id} was not cancelled within a minute`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { root, web, pid: proc.pid, runs: { running, cancelled, cancelling: running }, dir, call };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const servers: Server[] = [];
let browser: Browser | undefined;
try {
  for (const root of roots) servers.push(await startServer(root));
  if (existsSync(chromiumPath))
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
  else process.stderr.write(`web-open: no browser at ${chromiumPath}; page figures left out\n`);
  type Sample = Record<string, number>;
  const samples = new Map<string, Sample[]>();
  // One warm-up round (the first GetPipelineGraph reads the pipeline; the JIT warms), then the rounds.
  for (let r = -1; r < rounds; r++) {
    for (const scenario of scenarios) {
      for (const s of servers) {
        // A run to cancel is submitted for each round.
        if (scenario === "cancelling")
          s.runs.cancelling = (
            await s.call("SubmitRun", {
              pipeline: "wide",
              requestId: `bench-cancelling-${r}`,
            })
          ).run;
        const run = s.runs[scenario];
        const cpu0 = cpuMs(s.pid);
        const watch = await watchSnapshot(s, run);
        const graph = await getGraph(s, run);
        const sample: Sample = {
          watchSnapshotMs: watch.ms,
          watchSnapshotWireKiB: watch.wireBytes / 1024,
          graphMs: graph.ms,
          graphWireKiB: graph.wireBytes / 1024,
          graphKiB: graph.bytes / 1024,
        };
        const profileDir = process.env.BENCH_WEB_PROFILE;
        const profile =
          profileDir && r === rounds - 1
            ? join(profileDir, `${scenario}-${servers.indexOf(s)}.cpuprofile`)
            : undefined;
        if (browser) Object.assign(sample, await openPage(browser, s, run, scenario, profile));
        sample["serverCpuMs"] = cpuMs(s.pid) - cpu0;
        const key = `${scenario} ${s.root}`;
        if (r >= 0) samples.set(key, [...(samples.get(key) ?? []), sample]);
      }
    }
  }
  const medianOf = (list: Sample[]): Sample => {
    const out: Sample = {};
    for (const key of Object.keys(list[0] ?? {}))
      out[key] = Math.round(median(list.map((x) => x[key]!)) * 10) / 10;
    return out;
  };
  for (const scenario of scenarios) {
    const medians = servers.map((s) => medianOf(samples.get(`${scenario} ${s.root}`) ?? []));
    servers.forEach((s, i) =>
      console.log(
        JSON.stringify({
          bench: `web-ui open a ${tasks.toLocaleString("en-US")}-task run, ${scenario}`,
          build: s.root,
          rounds,
          ...medians[i],
        }),
      ),
    );
    if (servers.length > 1) {
      const ratios: Record<string, number> = {};
      for (const key of Object.keys(medians[0]!))
        ratios[key] = Math.round((medians[0]![key]! / Math.max(0.1, medians[1]![key]!)) * 10) / 10;
      console.log(
        JSON.stringify({
          bench: `web-ui open, ${scenario}: first build / second build`,
          ...ratios,
        }),
      );
    }
  }
} finally {
  await browser?.close();
  for (const c of children) c.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 500));
  for (const s of servers) await rm(s.dir, { recursive: true, force: true }).catch(() => undefined);
}
