// Cron schedules through the real CLI and `odin server` (embedded mode, in-memory run store):
// create with parameters, ls, the runs a schedule starts (submitted by schedule:NAME, labelled),
// pause, rm, and the mistakes refused with what to do.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventually, odin, startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";

const pipelines: Record<string, string> = {
  "ticking/main.yml": `name: ticking
parameters:
  who: {type: string}
schedules:
  every-second: {cron: "* * * * * *", timezone: Europe/Berlin, parameters: {who: pipeline}, concurrency: forbid}
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
  dir = await tempDir("odin-e2e-schedules-");
  const repo = join(dir.path, "pipelines");
  for (const [path, text] of Object.entries(pipelines)) {
    await mkdir(join(repo, path, ".."), { recursive: true });
    await writeFile(join(repo, path), text);
  }
  server = await startOdinServer(["--repo", repo, "--data", join(dir.path, "data")]);
});

after(async () => {
  await server?.stop();
  await dir?.cleanup();
});

describe("schedules (odin server)", () => {
  test("a schedule declared in main.yml runs from the start, can be paused, not removed", async () => {
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
