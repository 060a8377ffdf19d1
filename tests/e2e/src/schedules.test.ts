// Cron schedules through the real CLI and `odin server` (embedded mode, in-memory run store):
// create with parameters, ls, the runs a schedule starts (submitted by schedule:NAME, labelled),
// pause, rm, and the mistakes refused with what to do. A schedule's own webhooks (declared or
// --notify) are posted to by its runs, besides the pipeline's, each once per run end: a real HTTP
// receiver on loopback counts the posts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventually, odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

const pipelines: Record<string, string> = {
  "ticking/main.yml": `name: ticking
parameters:
  who: {type: string}
notify: {webhook: oncall}
schedules:
  every-second:
    cron: "* * * * * *"
    timezone: Europe/Berlin
    parameters: {who: pipeline}
    concurrency: forbid
    notify:
    - webhook: {secret: oncall}
      on: [succeeded]
    - webhook: team
tasks:
- {name: a, image: busybox, command: sh, args: [-c, 'echo \${{ params.who }}']}
`,
  "nightly/main.yml": `name: nightly
parameters:
  slice: {type: string}
  lr: {type: number, default: 0.1}
tasks:
- name: train
  image: busybox
  command: sh
  args: [-c, 'echo "slice=\${{ params.slice }} lr=\${{ params.lr }}"']
`,
};

let dir: { path: string; cleanup(): Promise<void> };
let server: OdinServer;
/** Webhook posts received: the path (which webhook) and the run it was for. */
const posts: { path: string; runId: string; state: string }[] = [];
let receiver: Server;
let base = "";
const cli = (args: string[]) => odin(["--server", server.address, ...args]);

interface ScheduleJson {
  name: string;
  pipeline: string;
  paused?: boolean;
  lastRunId?: string;
  nextTick?: string;
  catchup: string;
  concurrency: string;
}

async function ls(pipeline = "nightly"): Promise<ScheduleJson[]> {
  const r = await cli(["-o", "json", "schedule", "ls", "-p", pipeline]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ScheduleJson[];
}

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        run: { id: string; state: string };
      };
      posts.push({ path: req.url ?? "", runId: body.run.id, state: body.run.state });
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  dir = await tempDir("odin-e2e-schedules-");
  const repo = join(dir.path, "pipelines");
  for (const [path, text] of Object.entries(pipelines)) {
    await mkdir(join(repo, path, ".."), { recursive: true });
    await writeFile(join(repo, path), text);
  }
  const webhooks = join(dir.path, "webhooks.yml");
  await writeFile(webhooks, `team: ${base}/team/TEAMSECRET\noncall: ${base}/oncall/ONCALLSECRET\n`);
  server = await startOdinServer([
    "--repo",
    repo,
    "--data",
    join(dir.path, "data"),
    "--webhooks",
    webhooks,
  ]);
});

after(async () => {
  await server?.stop();
  await dir?.cleanup();
  await new Promise((resolve) => receiver?.close(resolve));
});

interface RunJson {
  id: string;
  state: string;
  submittedBy?: string;
  notifications?: { webhookSecret: string; state: string }[];
}

/**
 * The runs of a schedule once every one has ended and posted (the schedule paused first), and
 * the posts each webhook received for them, by run.
 */
async function settledRuns(
  pipeline: string,
  schedule: string,
): Promise<{ runs: RunJson[]; postsTo: (webhook: string) => string[] }> {
  let runs: RunJson[] = [];
  await eventually(
    async () => {
      const r = await cli(["-o", "json", "status", "-p", pipeline, "-a"]);
      assert.equal(r.code, 0, r.stderr);
      runs = (JSON.parse(r.stdout) as RunJson[]).filter(
        (run) => run.submittedBy === `schedule:${schedule}`,
      );
      return (
        runs.length > 0 &&
        runs.every(
          (run) =>
            ["SUCCEEDED", "FAILED", "CANCELLED"].includes(run.state) &&
            (run.notifications ?? []).length > 0 &&
            !run.notifications!.some((n) => n.state === "pending"),
        )
      );
    },
    120_000,
    `the runs of ${schedule} to end and post`,
  );
  const ids = new Set(runs.map((r) => r.id));
  return {
    runs,
    postsTo: (webhook) =>
      posts
        .filter((p) => ids.has(p.runId) && p.path.startsWith(`/${webhook}/`))
        .map((p) => p.runId)
        .sort(),
  };
}

describe("schedules (odin server)", () => {
  test("a schedule declared in main.yml runs from the start, can be paused, not removed", async (t) => {
    let declared: ScheduleJson | undefined;
    await eventually(
      async () => Boolean((declared = (await ls("ticking"))[0])?.lastRunId),
      60_000,
      "the declared schedule's first run",
    );
    assert.equal(declared?.name, "ticking:every-second");
    const status = await cli(["status", declared?.lastRunId ?? ""]);
    assert.match(status.stdout, /submitted by: schedule:ticking:every-second/);
    assert.match(status.stdout, /parameters: who=pipeline/);
    const rm = await cli(["schedule", "rm", "ticking:every-second"]);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /declared in ticking\/main\.yml; remove it there/);
    const paused = await cli(["schedule", "pause", "ticking:every-second"]);
    assert.equal(paused.code, 0, paused.stderr);

    // Its runs are selected by a label a selector can name (`:` cannot be in a label value).
    assert.equal(
      (declared as unknown as { runSelector: string }).runSelector,
      "schedule=ticking.every-second",
    );
    const selected = await cli([
      "-o",
      "json",
      "status",
      "--all",
      "-l",
      "schedule=ticking.every-second",
    ]);
    assert.equal(selected.code, 0, selected.stderr);
    const selectedRuns = JSON.parse(selected.stdout) as RunJson[];
    assert.ok(
      selectedRuns.some((r) => r.id === declared?.lastRunId),
      "the schedule's last run is selected",
    );
    for (const r of selectedRuns) assert.equal(r.submittedBy, "schedule:ticking:every-second");
    const old = await cli(["status", "--all", "-l", "schedule=ticking:every-second"]);
    assert.notEqual(old.code, 0, "':' is no label value");

    // Its runs posted to the schedule's webhooks and the pipeline's: oncall (named by both) and
    // team, each once per run end.
    const [listed] = await ls("ticking");
    assert.deepEqual((listed as unknown as { notify: unknown }).notify, [
      { webhookSecret: "oncall", on: ["succeeded"] },
      { webhookSecret: "team", on: ["succeeded", "failed", "cancelled"] },
    ]);
    const { runs, postsTo } = await settledRuns("ticking", "ticking:every-second");
    const ids = runs.map((r) => r.id).sort();
    t.diagnostic(
      `${runs.length} runs; posts to oncall ${postsTo("oncall").length}, to team ${postsTo("team").length}`,
    );
    for (const run of runs)
      assert.deepEqual(
        run.notifications?.map((n) => [n.webhookSecret, n.state]),
        [
          ["oncall", "delivered"],
          ["team", "delivered"],
        ],
        `run ${run.id}`,
      );
    assert.deepEqual(postsTo("oncall"), ids, "one post per run end to oncall");
    assert.deepEqual(postsTo("team"), ids, "one post per run end to team");
  });

  test("odin schedule create --notify: its runs post to those webhooks for the states given", async (t) => {
    const url = await cli([
      "schedule",
      "create",
      "s",
      "nightly",
      "--cron",
      "0 2 * * *",
      "--set",
      "slice=eu",
      "--notify",
      "https://hooks.slack.com/services/T0/B0/PASTEDSECRET",
    ]);
    assert.equal(url.code, 2);
    assert.match(url.stderr, /--notify must name a secret, not hold a URL/);
    assert.doesNotMatch(url.stderr, /PASTEDSECRET/);
    const state = await cli([
      "schedule",
      "create",
      "s",
      "nightly",
      "--cron",
      "0 2 * * *",
      "--set",
      "slice=eu",
      "--notify",
      "team:finished",
    ]);
    assert.equal(state.code, 2);
    assert.match(state.stderr, /webhook team: "finished" is not a state a run ends in/);

    const made = await cli([
      "schedule",
      "create",
      "notifying",
      "nightly",
      "--cron",
      "* * * * * *",
      "--set",
      "slice=us",
      "--concurrency",
      "forbid",
      "--notify",
      "team",
      "--notify",
      "oncall:failed,cancelled",
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /; notifies team, oncall:failed,cancelled$/m);
    await eventually(
      async () => Boolean((await ls()).find((s) => s.name === "notifying")?.lastRunId),
      60_000,
      "the schedule's first run",
    );
    const paused = await cli(["schedule", "pause", "notifying"]);
    assert.equal(paused.code, 0, paused.stderr);
    const { runs, postsTo } = await settledRuns("nightly", "notifying");
    t.diagnostic(`${runs.length} runs; posts to team ${postsTo("team").length}`);
    for (const run of runs) {
      assert.equal(run.state, "SUCCEEDED");
      assert.deepEqual(
        run.notifications?.map((n) => [n.webhookSecret, n.state]),
        [["team", "delivered"]],
        "oncall is only for failed and cancelled runs",
      );
    }
    assert.deepEqual(postsTo("team"), runs.map((r) => r.id).sort());
    assert.deepEqual(postsTo("oncall"), []);
    const everything = [made.stdout, made.stderr, server.output()].join("\n");
    for (const secret of ["TEAMSECRET", "ONCALLSECRET", base])
      assert.ok(!everything.includes(secret), `output holds ${secret}`);
    const removed = await cli(["schedule", "rm", "notifying"]);
    assert.equal(removed.code, 0, removed.stderr);
  });

  test("bad schedules are refused with what is wrong", async () => {
    const noParam = await cli(["schedule", "create", "s", "nightly", "--cron", "* * * * *"]);
    assert.equal(noParam.code, 1);
    assert.match(noParam.stderr, /parameter "slice" has no default/);
    const badCron = await cli([
      "schedule",
      "create",
      "s",
      "nightly",
      "--cron",
      "61 * * * *",
      "--set",
      "slice=eu",
    ]);
    assert.equal(badCron.code, 1);
    assert.match(badCron.stderr, /cron "61 \* \* \* \*" is not valid/);
    const badZone = await cli([
      "schedule",
      "create",
      "s",
      "nightly",
      "--cron",
      "0 2 * * *",
      "--timezone",
      "Mars/Olympus",
      "--set",
      "slice=eu",
    ]);
    assert.match(badZone.stderr, /not an IANA time zone/);
    const badPolicy = await cli([
      "schedule",
      "create",
      "s",
      "nightly",
      "--cron",
      "0 2 * * *",
      "--concurrency",
      "never",
    ]);
    assert.equal(badPolicy.code, 2);
    assert.match(badPolicy.stderr, /--concurrency never: use one of allow, forbid, replace/);
    const missing = await cli(["schedule", "pause", "nope"]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no schedule nope/);
  });

  test("a schedule every second starts runs with its parameters, submitted by schedule:NAME", async () => {
    const made = await cli([
      "schedule",
      "create",
      "every-second",
      "nightly",
      "--cron",
      "* * * * * *",
      "--set",
      "slice=eu",
      "--concurrency",
      "forbid",
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(
      made.stdout,
      /^schedule every-second: nightly at "\* \* \* \* \* \*" \(UTC\), next /,
    );

    let schedule: ScheduleJson | undefined;
    await eventually(
      async () => Boolean((schedule = (await ls())[0])?.lastRunId),
      60_000,
      "the schedule's first run",
    );
    if (!schedule) assert.fail("no schedule");
    assert.equal(schedule.concurrency, "forbid");
    assert.equal(schedule.catchup, "skip");
    const status = await cli(["status", schedule.lastRunId!]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /submitted by: schedule:every-second/);
    assert.match(status.stdout, /parameters: lr=0\.1 slice=eu/);
    const labelled = await cli(["-o", "json", "status", schedule.lastRunId!]);
    assert.deepEqual(
      (JSON.parse(labelled.stdout) as { run: { labels: Record<string, string> } }).run.labels,
      { schedule: "every-second" },
    );

    const paused = await cli(["schedule", "pause", "every-second"]);
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal((await ls())[0]?.paused, true);
    const text = await cli(["schedule", "ls"]);
    assert.match(text.stdout, /^every-second\s+nightly\s+\* \* \* \* \* \* UTC\s+paused/m);
    const removed = await cli(["schedule", "rm", "every-second"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(await ls(), []);
  });
});
