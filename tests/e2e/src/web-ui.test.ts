/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The web UI in a real browser (Debian's chromium driven by playwright-core) against `odin server`:
// sign in, start the diamond example from the Pipelines page, watch its tasks turn succeeded live,
// read a task's log, and check that a viewer cannot run. A second test opens a 10,000-task run and
// prints how long the first full render took (a figure, not an assertion).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createRequire } from "node:module";
import { chromium, type Browser, type Page } from "playwright-core";
import { repoRoot, startOdinServer, tempDir, writeTokens } from "@odin/test-stack";

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/**
 * The accessibility rules axe-core checks (WCAG 2.1 A and AA, and its best practices) on the page
 * as it is: the violations, one line each. The page's context must bypass the CSP, which
 * forbids the injected script (the app itself needs no such exception).
 */
async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(
            context: Document,
            options: object,
          ): Promise<{
            violations: { id: string; help: string; nodes: { target: string[] }[] }[];
          }>;
        };
      }
    ).axe;
    const result = await axe.run(document, {
      runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    });
    return result.violations.map(
      (v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`,
    );
  });
}
const SCREENSHOTS = process.env["ODIN_WEB_SCREENSHOTS"];

interface Server {
  web: string;
  stop(): Promise<void>;
}

/** `odin server` (the harness's) and the web UI address it printed beside its gRPC one. */
async function startServer(args: string[]): Promise<Server> {
  const server = await startOdinServer(args);
  const web = /web UI and HTTP\/JSON API: (\S+)/.exec(server.output())?.[1];
  assert.ok(web, `odin server printed no web UI address:\n${server.output()}`);
  return {
    web,
    stop: () => server.stop(),
  };
}

/** Chromium with the flags that work on CI machines; playwright gives it a fresh profile directory. */
function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
}

describe("web UI in a real browser", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let tokens: Awaited<ReturnType<typeof writeTokens>>;
  let server: Server;
  let browser: Browser;

  before(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `no browser at ${CHROMIUM}: apt-get install chromium (what .ci/run does), or set CHROMIUM_PATH`,
      );
    dir = await tempDir("odin-web-");
    tokens = await writeTokens(dir.path);
    const repo = join(dir.path, "pipelines");
    await cp(join(repoRoot, "examples", "pipelines"), repo, { recursive: true });
    // diamond's first task waits until the test opens a gate, so the test knows the run is still
    // going when the page shows it (on a busy machine the browser may be slower than the run).
    const diamond = join(repo, "diamond", "main.yml");
    const text = await readFile(diamond, "utf8");
    const gated = text.replace(
      '    mkdir -p "$RUN_PATH/shared"\n',
      '    until [ -e "${DATA_PATH}/go" ]; do sleep 0.1; done\n    mkdir -p "$RUN_PATH/shared"\n',
    );
    assert.notEqual(gated, text, "diamond's prepare script changed; update the gate");
    await writeFile(diamond, gated);
    // A 10,000-task pipeline: a root, 9,998 shards, a join. Two at a time, so the test machine
    // runs two processes, not ten thousand; the run is cancelled once measured.
    const shards = Array.from({ length: 9998 }, (_, i) => `shard-${i}`);
    const tasks = [
      { name: "split", image: "busybox:1.36", command: ["sh", "-c", "sleep 30"] },
      ...shards.map((name) => ({
        name,
        image: "busybox:1.36",
        command: ["sh", "-c", "sleep 30"],
        depends: ["split"],
      })),
      { name: "merge", image: "busybox:1.36", command: ["true"], depends: shards },
    ];
    await mkdir(join(repo, "sweep"));
    await writeFile(
      join(repo, "sweep", "main.yml"),
      [
        "name: sweep",
        "parameters:",
        "  model: {type: string, description: which model to train}",
        "  lr: {type: number, default: 0.001, description: learning rate}",
        "  epochs: 3",
        "  fp16: {type: bool, default: false}",
        "  layers: {type: list, default: [64, 32]}",
        "notify: {webhook: {secret: nobody-set-this}}",
        "tasks:",
        "- name: train",
        "  image: busybox:1.36",
        "  command: sh",
        "  args: [-c, 'echo \"model=${{ params.model }} lr=${{ params.lr }} epochs=${{ params.epochs }} fp16=${{ params.fp16 }} layers=${{ params.layers }}\"']",
        "",
      ].join("\n"),
    );
    await mkdir(join(repo, "wide"));
    await writeFile(
      join(repo, "wide", "main.yml"),
      JSON.stringify({ name: "wide", parallelism: 2, tasks }),
    );
    // A task that ends its run early: the run page says why a SUCCEEDED run skipped tasks.
    await mkdir(join(repo, "early"));
    await writeFile(
      join(repo, "early", "main.yml"),
      [
        "name: early",
        "tasks:",
        "- name: check",
        "  image: busybox",
        "  command: sh",
        `  args: [-c, 'echo "{\\"odin\\": {\\"early_exit\\": true}}" > "$TASK_PATH/outputs.json"']`,
        "- {name: train, image: busybox, command: echo, depends: check}",
        "",
      ].join("\n"),
    );
    // A task whose result the second run reuses: the page marks it cached and links the first.
    await mkdir(join(repo, "cached"));
    await writeFile(
      join(repo, "cached", "main.yml"),
      [
        "name: cached",
        "tasks:",
        "- name: build",
        "  image: busybox",
        "  command: sh",
        `  args: [-c, 'echo built > "$RUN_PATH/model.txt"']`,
        "  outputs:",
        '    model: "${RUN_PATH}/model.txt"',
        "",
      ].join("\n"),
    );
    // A pipeline with a declared schedule (at 02:00: it never ticks during the test) and a
    // commit trigger; the test creates a per-second schedule of it from the Schedules page.
    await mkdir(join(repo, "tick"));
    await writeFile(
      join(repo, "tick", "main.yml"),
      [
        "name: tick",
        "parameters:",
        "  who: {type: string, description: who is greeted}",
        "schedules:",
        "  nightly:",
        '    cron: "0 2 * * *"',
        "    timezone: Europe/Berlin",
        "    parameters: {who: night}",
        "    concurrency: forbid",
        "    notify: {webhook: {secret: oncall}, on: [failed]}",
        "triggers:",
        "  code: {paths: [src/], policy: each, parameters: {who: commit}}",
        "tasks:",
        "- {name: hello, image: busybox, command: sh, args: [-c, 'echo hello ${{ params.who }}']}",
        "",
      ].join("\n"),
    );
    server = await startServer([
      "--data",
      join(dir.path, "data"),
      "--repo",
      repo,
      "--tokens",
      tokens.file,
    ]);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    await dir?.cleanup();
  });

  test("an operator starts diamond from Pipelines and watches it succeed live; a viewer cannot run", async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await signIn(page, `${server.web}pipelines`, tokens.operator);

    await page.getByRole("link", { name: "diamond", exact: true }).click();
    await page.waitForURL(/\/pipelines\/diamond$/);
    const run = page.getByRole("button", { name: "Run", exact: true });
    assert.equal(await run.isEnabled(), true);
    await run.click();
    await page.waitForURL(/\/runs\/diamond-[a-z0-9]{8}$/);
    const runId = /\/runs\/(diamond-[a-z0-9]{8})$/.exec(page.url())![1]!;
    // Marks this document: a reload would lose it.
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));

    // The run waits at prepare's gate: the page shows it running, then every task turns succeeded
    // once the gate opens — changes that can only have arrived through the open stream.
    await page.locator('[data-task="prepare"][data-state="running"]').waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('[data-task][data-state="succeeded"]').count(), 0);
    await writeFile(join(dir.path, "data", "go"), "");
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll("[data-task]")];
        return rows.length === 4 && rows.every((r) => r.getAttribute("data-state") === "succeeded");
      },
      undefined,
      { timeout: 60_000 },
    );
    await page.getByTestId("run-state").filter({ hasText: "succeeded" }).waitFor();
    assert.equal(
      await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed),
      true,
      "the page was not reloaded",
    );
    // The canvas painted the final states.
    const painted = await page.getByTestId("dag").getAttribute("data-rendered");
    assert.ok(Number(painted) > 0);
    assert.equal(await page.getByTestId("progress").textContent(), "4/4 tasks finished");
    // Who started it: the operator token's subject.
    assert.equal(await page.getByTestId("submitted-by").textContent(), "alice@example.com");

    if (SCREENSHOTS) {
      await page.locator('[data-task="report"] a').click();
      await page.getByTestId("logs").filter({ hasText: "report: done" }).waitFor();
      await page.screenshot({ path: join(SCREENSHOTS, "web-run.png") });
    }

    // A task's panel and its log line (the deep link opens the same panel).
    await page.goto(`${server.web}runs/${runId}/tasks/prepare`);
    await page.getByTestId("task-panel").waitFor();
    await page
      .getByTestId("logs")
      .filter({ hasText: `prepare: ${runId}--prepare counted 7 words in words.txt` })
      .waitFor();
    assert.match(
      (await page.getByTestId("task-panel").textContent()) ?? "",
      /Exit code\s*0/,
      "the panel shows the exit code",
    );
    // When it entered each state (the server's record), and what it was started with.
    const history = (await page.getByTestId("history").textContent()) ?? "";
    assert.match(
      history,
      /launching \(attempt 1\).*running \(attempt 1\).*succeeded \(attempt 1\)/s,
    );
    assert.match((await page.getByTestId("launched").textContent()) ?? "", /sh/);

    await page.goto(`${server.web}runs`);
    await page.locator(`tr[data-run="${runId}"]`).filter({ hasText: "4/4" }).waitFor();
    // The Runs page is live (WatchRuns): a run started elsewhere appears, and its progress moves,
    // without a reload.
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
    const other = await fetch(`${server.web}odin.dagscheduler.v1.DagSchedulerService/SubmitRun`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${tokens.operator}` },
      body: JSON.stringify({ pipeline: "diamond", requestId: "from-elsewhere" }),
    });
    const otherId = ((await other.json()) as { run: { id: string } }).run.id;
    await page
      .locator(`tr[data-run="${otherId}"]`)
      .filter({ hasText: "4/4" })
      .waitFor({ timeout: 60_000 });
    assert.equal(
      await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed),
      true,
      "the Runs page was not reloaded",
    );
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, "web-runs.png") });
    assert.deepEqual(errors, []);
    await context.close();

    // A viewer sees the pipeline but the Run button is disabled — and the server refuses anyway.
    const viewerContext = await browser.newContext();
    const viewer = await viewerContext.newPage();
    await signIn(viewer, `${server.web}pipelines/diamond`, tokens.viewer);
    const viewerRun = viewer.getByRole("button", { name: "Run", exact: true });
    await viewerRun.waitFor();
    assert.equal(await viewerRun.isDisabled(), true, "a viewer cannot press Run");
    const refused = await viewer.evaluate(async (token) => {
      const res = await fetch("/odin.dagscheduler.v1.DagSchedulerService/SubmitRun", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ pipeline: "diamond", requestId: "viewer-try" }),
      });
      return { status: res.status, body: (await res.json()) as { code: string } };
    }, tokens.viewer);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, "permission_denied");
    await viewerContext.close();
  });

  let sweepRunId = "";
  test("Run sets the pipeline's declared parameters (typed inputs, defaults, descriptions); the run page shows them", async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await signIn(page, `${server.web}pipelines/sweep`, tokens.operator);
    const form = page.getByRole("group", { name: "Parameters" });
    await form.waitFor();
    // Each declared parameter is a typed input holding its default, described as declared.
    const model = form.getByLabel("model", { exact: true });
    const lr = form.getByLabel("lr", { exact: true });
    const epochs = form.getByLabel("epochs", { exact: true });
    const fp16 = form.getByLabel("fp16", { exact: true });
    const layers = form.getByLabel("layers", { exact: true });
    assert.equal(await model.inputValue(), "");
    assert.equal(await model.getAttribute("required"), "");
    assert.equal(await lr.getAttribute("type"), "number");
    assert.equal(await lr.inputValue(), "0.001");
    assert.equal(await epochs.getAttribute("step"), "1");
    assert.equal(await epochs.inputValue(), "3");
    assert.equal(await fp16.isChecked(), false);
    assert.equal(await layers.inputValue(), "[64,32]");
    assert.match(
      (await page.locator("#param-model-help").textContent()) ?? "",
      /which model to train — string, required/,
    );
    assert.match(
      (await page.locator("#param-lr-help").textContent()) ?? "",
      /learning rate — number, default 0\.001/,
    );
    // A required parameter left empty: the browser keeps the form from being sent.
    await page.getByRole("button", { name: "Run", exact: true }).click();
    assert.match(page.url(), /\/pipelines\/sweep$/);
    await model.fill("bert");
    await lr.fill("0.01");
    await fp16.check();
    await layers.fill("[128, 64]");
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.waitForURL(/\/runs\/sweep-[a-z0-9]{8}$/);
    sweepRunId = /\/runs\/(sweep-[a-z0-9]{8})$/.exec(page.url())![1]!;
    const shown = page.getByTestId("parameters");
    await shown.waitFor();
    const text = (await shown.textContent()) ?? "";
    for (const part of ["model=bert", "lr=0.01", "epochs=3", "fp16=true", "layers=[128,64]"])
      assert.ok(text.includes(part), `${part} in ${text}`);
    // The task ran with them, typed (the server read the text as each declared type).
    const got = await page.evaluate(
      async ({ id, token }) => {
        const res = await fetch("/odin.dagscheduler.v1.DagSchedulerService/GetRun", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify({ runId: id }),
        });
        return ((await res.json()) as { run: { parameters: unknown } }).run.parameters;
      },
      { id: sweepRunId, token: tokens.operator },
    );
    assert.deepEqual(got, { model: "bert", lr: 0.01, epochs: 3, fp16: true, layers: [128, 64] });
    // Its notification (a name this server has no URL for) is shown once it has been tried.
    await page
      .getByTestId("notifications")
      .filter({ hasText: "nobody-set-this failed" })
      .waitFor({ timeout: 60_000 });
    assert.match(
      (await page.getByTestId("notifications").textContent()) ?? "",
      /no webhook secret named nobody-set-this in the server's webhook secrets \(none are configured/,
    );
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("every page passes axe-core's WCAG 2.1 AA and best-practice rules", async () => {
    const context = await browser.newContext({
      viewport: { width: 1400, height: 900 },
      bypassCSP: true,
    });
    const page = await context.newPage();
    await page.goto(server.web);
    await page.getByLabel("API token").waitFor();
    const found: Record<string, string[]> = { "sign in": await axeViolations(page) };
    await signIn(page, `${server.web}runs`, tokens.operator);
    const runId = await page.locator('tr[data-run^="diamond-"] a').first().textContent();
    assert.ok(runId, "the first test left runs to list");
    const pages: [string, string, string][] = [
      ["runs", "runs", "table.runs"],
      ["run", `runs/${runId}`, '[data-testid="dag"][data-complete]'],
      ["task", `runs/${runId}/tasks/prepare`, '[data-testid="logs"]'],
      ["pipelines", "pipelines", "main h1"],
      ["pipeline", "pipelines/diamond", "canvas"],
      ["pipeline with parameters", "pipelines/sweep", "fieldset.parameters"],
      ["run with parameters", `runs/${sweepRunId}`, '[data-testid="parameters"]'],
    ];
    for (const [name, path, ready] of pages) {
      await page.goto(server.web + path);
      await page.locator(ready).first().waitFor({ timeout: 60_000 });
      found[name] = await axeViolations(page);
    }
    await context.close();
    assert.deepEqual(
      Object.entries(found).filter(([, v]) => v.length > 0),
      [],
      "accessibility violations",
    );
  });

  test("a run a task ended early shows SUCCEEDED and why", async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await signIn(page, `${server.web}pipelines/early`, tokens.operator);
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.waitForURL(/\/runs\/early-[a-z0-9]{8}$/);
    await page
      .getByTestId("run-state")
      .filter({ hasText: "succeeded" })
      .waitFor({ timeout: 60_000 });
    await page.getByText('early exit requested by task "check"').first().waitFor();
    await page.locator('[data-task="train"][data-state="skipped"]').waitFor();
    await context.close();
  });

  test("a task reused from an earlier run reads 'cached from RUN' and its panel links that run", async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await signIn(page, `${server.web}pipelines/cached`, tokens.operator);
    const runOnce = async (): Promise<string> => {
      await page.goto(`${server.web}pipelines/cached`);
      await page.getByRole("button", { name: "Run", exact: true }).click();
      await page.waitForURL(/\/runs\/cached-[a-z0-9]{8}$/);
      await page
        .getByTestId("run-state")
        .filter({ hasText: "succeeded" })
        .waitFor({ timeout: 60_000 });
      return /cached-[a-z0-9]{8}$/.exec(page.url())![0];
    };
    const first = await runOnce();
    const second = await runOnce();
    assert.notEqual(first, second);
    await page.getByText(`cached from ${first}`).first().waitFor();
    await page.locator('[data-task="build"]').first().click();
    const link = page.getByTestId("cached-from").getByRole("link", { name: first });
    await link.waitFor();
    await context.close();
  });

  test("Schedules: an operator creates a per-second schedule, sees its runs and pauses it; a viewer sees no actions", async () => {
    const context = await browser.newContext({
      viewport: { width: 1400, height: 900 },
      bypassCSP: true,
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await signIn(page, `${server.web}schedules`, tokens.operator);
    await page.getByText("signed in (may run)").waitFor();
    // The declared schedule is listed with its webhook's name and no Delete (it lives in main.yml).
    const declared = page.locator('tr[data-schedule="tick:nightly"]');
    await declared.waitFor();
    const declaredText = (await declared.textContent()) ?? "";
    for (const part of ["0 2 * * *", "Europe/Berlin", "who=night", "oncall:failed", "forbid"])
      assert.ok(declaredText.includes(part), `${part} in ${declaredText}`);
    assert.equal(await declared.getByRole("button", { name: "Pause tick:nightly" }).count(), 1);
    assert.equal(await declared.getByRole("button", { name: /^Delete/ }).count(), 0);

    // Create one: the server's refusal of a bad cron is shown at the cron field.
    const form = page.getByRole("form", { name: "Create a schedule" });
    await form.getByLabel("Name").fill("every-second");
    await form.getByLabel("Pipeline").selectOption("tick");
    const who = form.getByRole("group", { name: "Parameters" }).getByLabel("who");
    await who.fill("web");
    const cron = form.getByLabel("Cron");
    await cron.fill("61 * * * * *");
    await form.getByLabel("Concurrency").selectOption({ label: "forbid: skip while one runs" });
    await form.getByLabel("Webhooks").fill("oncall:failed");
    await form.getByRole("button", { name: "Create" }).click();
    const refusal = form.locator("#create-error");
    await refusal.waitFor();
    assert.match((await refusal.textContent()) ?? "", /cron "61 \* \* \* \* \*" is not valid/);
    assert.equal(await cron.getAttribute("aria-invalid"), "true");
    assert.match((await cron.getAttribute("aria-describedby")) ?? "", /create-error/);
    await cron.fill("* * * * * *");
    await form.getByRole("button", { name: "Create" }).click();

    // Its own page (a deep link) shows its ticks' runs as they start.
    await page.waitForURL(/\/schedules\/every-second$/);
    const lastRun = page.getByTestId("last-run").getByRole("link");
    await lastRun.waitFor({ timeout: 60_000 });
    const runId = (await lastRun.textContent()) ?? "";
    assert.match(runId, /^tick-[a-z0-9]{8}$/);
    assert.match((await page.locator("main").textContent()) ?? "", /schedule=every-second/);
    await page.locator(`.schedule-runs li[data-run="${runId}"]`).waitFor({ timeout: 30_000 });
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, "web-schedule.png") });
    const detailViolations = await axeViolations(page);

    // Its runs: the Runs page filtered by the schedule's label.
    await page.getByTestId("schedule-runs").click();
    await page.waitForURL(/\/runs\?label=schedule%3Devery-second$/);
    await page.locator(`tr[data-run="${runId}"]`).waitFor({ timeout: 30_000 });
    const rows = page.locator("table.runs tbody tr");
    for (const row of await rows.all())
      assert.match((await row.textContent()) ?? "", /schedule=every-second/);
    assert.equal(await page.getByLabel("Labels").inputValue(), "schedule=every-second");

    // Pause it from the list; the server has it paused.
    await page.goto(`${server.web}schedules`);
    const row = page.locator('tr[data-schedule="every-second"]');
    /** The schedules as the server lists them (to an operator). */
    const schedulesOnServer = () =>
      page.evaluate(async (token) => {
        const res = await fetch("/odin.dagscheduler.v1.DagSchedulerService/ListSchedules", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: "{}",
        });
        return ((await res.json()) as { schedules: { name: string; paused?: boolean }[] })
          .schedules;
      }, tokens.operator);
    await row.getByRole("button", { name: "Pause every-second" }).click();
    await page.locator('tr[data-schedule="every-second"][data-state="paused"]').waitFor();
    const listed = await schedulesOnServer();
    assert.equal(listed.find((x) => x.name === "every-second")?.paused, true);
    await row.getByRole("button", { name: "Resume every-second" }).waitFor();
    // The webhook given in the form is the schedule's own (by name; the URL is never shown).
    assert.match((await row.textContent()) ?? "", /oncall:failed/);

    // One created paused starts no run: the server has it paused from the start.
    const again = page.getByRole("form", { name: "Create a schedule" });
    await again.getByLabel("Name").fill("held");
    await again.getByLabel("Pipeline").selectOption("tick");
    await again.getByRole("group", { name: "Parameters" }).getByLabel("who").fill("later");
    await again.getByLabel("Cron").fill("* * * * * *");
    await again.getByLabel("Create paused").check();
    await again.getByRole("button", { name: "Create" }).click();
    await page.waitForURL(/\/schedules\/held$/);
    const held = await schedulesOnServer();
    assert.equal(held.find((x) => x.name === "held")?.paused, true);
    await page.goto(`${server.web}schedules`);
    await row.getByRole("button", { name: "Resume every-second" }).waitFor();
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, "web-schedules.png") });
    const listViolations = await axeViolations(page);

    // Triggers: the declared one, its paths, policy and parameters.
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: "Triggers" })
      .click();
    const trigger = page.locator('tr[data-trigger="tick:code"]');
    await trigger.waitFor();
    const triggerText = (await trigger.textContent()) ?? "";
    for (const part of ["tick/src", "each matching commit", "who=commit", "0 runs started"])
      assert.ok(triggerText.includes(part), `${part} in ${triggerText}`);
    const triggerViolations = await axeViolations(page);
    assert.deepEqual(
      [...detailViolations, ...listViolations, ...triggerViolations],
      [],
      "accessibility violations",
    );
    assert.deepEqual(errors, []);
    await context.close();

    // A viewer sees the schedules and no action: no form, no Pause, Resume or Delete.
    const viewerContext = await browser.newContext();
    const viewer = await viewerContext.newPage();
    await signIn(viewer, `${server.web}schedules`, tokens.viewer);
    await viewer.getByText("signed in (read only)").waitFor();
    await viewer.locator('tr[data-schedule="every-second"][data-state="paused"]').waitFor();
    await viewer.getByText("Read only: your token may not create").waitFor();
    assert.equal(await viewer.locator("main button, main form, main details").count(), 0);
    await viewer.goto(`${server.web}schedules/every-second`);
    await viewer.getByTestId("last-run").waitFor();
    assert.equal(await viewer.locator("main button").count(), 0);
    // The server refuses a viewer's pause anyway.
    const refused = await viewer.evaluate(async (token) => {
      const res = await fetch("/odin.dagscheduler.v1.DagSchedulerService/ResumeSchedule", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ name: "every-second" }),
      });
      return res.status;
    }, tokens.viewer);
    assert.equal(refused, 403);
    await viewerContext.close();
  });

  test("a 10,000-task run: time to the first full render of its graph", async () => {
    const submitted = await fetch(
      `${server.web}odin.dagscheduler.v1.DagSchedulerService/SubmitRun`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${tokens.operator}`,
        },
        body: JSON.stringify({ pipeline: "wide", requestId: "wide-1" }),
      },
    );
    assert.equal(submitted.status, 200, await submitted.clone().text());
    const runId = ((await submitted.json()) as { run: { id: string } }).run.id;

    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await signIn(page, `${server.web}pipelines`, tokens.operator);
    const started = Date.now();
    await page.goto(`${server.web}runs/${runId}`);
    const dag = page.locator('[data-testid="dag"][data-complete]');
    await dag.waitFor({ timeout: 120_000 });
    const wall = Date.now() - started;
    const figures = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const render = performance.getEntriesByName("odin:first-full-render")[0];
      const layout = performance.getEntriesByName("odin:layout")[0];
      const at = (name: string): number =>
        Math.round(performance.getEntriesByName(name)[0]?.startTime ?? -1);
      return {
        firstFullRenderMs: Math.round(render?.startTime ?? -1),
        domContentLoadedMs: Math.round(
          (nav as PerformanceNavigationTiming | undefined)?.domContentLoadedEventEnd ?? -1,
        ),
        layoutMs: Math.round(layout?.duration ?? -1),
        pipelineLoadedAtMs: at("odin:pipeline-loaded"),
        statesKnownAtMs: at("odin:states-known"),
        snapshotCompleteAtMs: at("odin:snapshot-complete"),
      };
    });
    // Responsiveness: a zoom keypress until the next frame.
    await page.getByTestId("dag").focus();
    const zoomMs = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const t0 = performance.now();
          document
            .querySelector('[data-testid="dag"]')!
            .dispatchEvent(new KeyboardEvent("keydown", { key: "+", bubbles: true }));
          requestAnimationFrame(() =>
            requestAnimationFrame(() => resolve(Math.round(performance.now() - t0))),
          );
        }),
    );
    const tasks = await page.locator(".task-list h2 .muted").textContent();
    console.log(
      JSON.stringify({
        bench: "web-ui 10,000-task run",
        tasks,
        ...figures,
        wallClockFromNavigationMs: wall,
        zoomToNextFrameMs: zoomMs,
      }),
    );
    assert.equal(tasks, (10_000).toLocaleString("en-US"));
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, "web-run-10000.png") });

    // The snapshot of so large a run carries states, not task runs: a task's row and panel read
    // its task run when shown.
    await page.getByLabel("Filter tasks by name").fill("shard-9990");
    const row = page.locator('.task-list li[data-task="shard-9990"]');
    await row.locator("a").click();
    const panel = page.getByTestId("task-panel");
    await panel.getByRole("heading", { name: "shard-9990" }).waitFor();
    await panel.getByTestId("history").waitFor();
    assert.match((await panel.textContent()) ?? "", /State\s*pending/);
    // Still live: cancelling the run ends every task on the open page.
    const cancelled = await fetch(
      `${server.web}odin.dagscheduler.v1.DagSchedulerService/CancelRun`,
      {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${tokens.operator}` },
        body: JSON.stringify({ runId }),
      },
    );
    assert.equal(cancelled.status, 200);
    await page
      .getByTestId("progress")
      .filter({ hasText: "10000/10000 tasks finished" })
      .waitFor({ timeout: 120_000 });
    await page.getByTestId("run-state").filter({ hasText: "cancelled" }).waitFor();
    assert.equal(await row.getAttribute("data-state"), "cancelled");
    await panel
      .locator("dt", { hasText: /^State$/ })
      .locator("xpath=following-sibling::dd[1]")
      .filter({ hasText: "cancelled" })
      .waitFor();
    await context.close();
  });
});
