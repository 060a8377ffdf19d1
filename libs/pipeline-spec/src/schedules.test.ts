// Schedules: the `schedules:` declarations and their problems (file:line:col), and the tick
// arithmetic in a time zone.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { loadPipeline } from "./load.js";
import { checkCron, checkTimezone, CronTicks } from "./schedules.js";
import { mergeNotifyTargets, notifyTarget, parseNotifyTarget } from "./notify.js";

const base = `name: nightly
parameters:
  lr: {type: number, default: 0.001}
  slice: {type: string}
tasks:
- {name: a, image: busybox, command: echo, args: ["\${{ params.slice }}"]}
`;

describe("schedules", () => {
  test("a schedule map and the cron shorthand are read with their defaults and typed values", () => {
    const r = loadPipeline(
      `${base}schedules:
  nightly:
    cron: "0 2 * * *"
    timezone: Europe/Berlin
    parameters: {lr: 0.01, slice: eu}
    catchup: once
    concurrency: forbid
  hourly: {cron: "0 * * * *", parameters: {slice: us}}
`,
      { parameters: { slice: "x" } },
    );
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.pipeline?.schedules, [
      {
        name: "nightly",
        cron: "0 2 * * *",
        timezone: "Europe/Berlin",
        parameters: { lr: 0.01, slice: "eu" },
        catchup: "once",
        concurrency: "forbid",
      },
      {
        name: "hourly",
        cron: "0 * * * *",
        timezone: "UTC",
        parameters: { slice: "us" },
        catchup: "skip",
        concurrency: "allow",
      },
    ]);
  });

  test("a parameter use inside a schedule is not substituted", () => {
    const r = loadPipeline(
      `${base}schedules:\n  s: {cron: "* * * * *", parameters: {slice: "\${{ params.lr }}"}}\n`,
      {
        parameters: { slice: "x" },
      },
    );
    assert.equal(r.pipeline?.schedules?.[0]?.parameters.slice, "${{ params.lr }}");
  });

  test("each mistake is reported at its line and column with what to write instead", () => {
    const r = loadPipeline(
      `${base}schedules:
  bad-cron: {cron: "61 * * * *", parameters: {slice: a}}
  few: {cron: "* *", parameters: {slice: a}}
  zone: {cron: "0 2 * * *", timezone: Mars/Olympus, parameters: {slice: a}}
  policy: {cron: "0 2 * * *", concurrency: never, parameters: {slice: a}}
  typo: {cron: "0 2 * * *", parameters: {slise: a}}
  missing: {cron: "0 2 * * *"}
  Upper: "0 2 * * *"
  typed: {cron: "0 2 * * *", parameters: {slice: a, lr: [1]}}
`,
      { parameters: { slice: "x" } },
    );
    const at = r.problems.map((p) => `${p.line}:${p.column} ${p.message}`);
    assert.equal(r.valid, false);
    assert.deepEqual(
      at.map((x) => x.slice(0, x.indexOf(" "))),
      ["8:20", "9:15", "10:39", "11:44", "12:9", "12:49", "13:12", "14:3", "15:57"],
    );
    assert.match(at[0]!, /schedule "bad-cron": cron "61 \* \* \* \*" is not valid: .*minute: 61/);
    assert.match(at[1]!, /schedule "few": cron "\* \*" has 2 fields; write five/);
    assert.match(at[2]!, /schedule "zone": time zone "Mars\/Olympus" is not an IANA time zone/);
    assert.match(at[3]!, /concurrency must be one of allow, forbid, replace, not "never"/);
    assert.match(
      at[4]!,
      /schedule "typo" gives no value for parameter "slice", which has no default/,
    );
    assert.match(at[5]!, /schedule "typo" gives parameter "slise".*did you mean "slice"/);
    assert.match(at[7]!, /schedule name "Upper" must be lower-case/);
    assert.match(at[8]!, /schedule "typed": parameter lr is a number; a list is not/);
    assert.equal(r.pipeline?.schedules, undefined);
  });

  test("a schedule's notify is read as the pipeline's: by secret name, with its end states", () => {
    const r = loadPipeline(
      `${base}schedules:
  nightly:
    cron: "0 2 * * *"
    parameters: {slice: eu}
    notify:
    - webhook: {secret: team-slack}
    - webhook: oncall
      on: [failed, Cancelled]
  single: {cron: "0 3 * * *", parameters: {slice: us}, notify: {webhook: ops, on: succeeded}}
`,
      { parameters: { slice: "x" } },
    );
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.pipeline?.schedules?.[0]?.notify, [
      { webhookSecret: "team-slack", on: ["SUCCEEDED", "FAILED", "CANCELLED"] },
      { webhookSecret: "oncall", on: ["FAILED", "CANCELLED"] },
    ]);
    assert.deepEqual(r.pipeline?.schedules?.[1]?.notify, [
      { webhookSecret: "ops", on: ["SUCCEEDED"] },
    ]);
  });

  test("a schedule's notify mistakes point at their line, and a URL is not repeated", () => {
    const r = loadPipeline(
      `${base}schedules:
  nightly:
    cron: "0 2 * * *"
    parameters: {slice: eu}
    notify:
    - webhook: {secret: "https://hooks.slack.com/services/T0/B0/SECRET"}
    - webhook: ok
      on: [finished]
`,
      { parameters: { slice: "x" } },
    );
    assert.equal(r.valid, false);
    assert.deepEqual(
      r.problems.map((p) => [p.line, p.column, p.field]),
      [
        [12, 25, "schedules.nightly.notify[0].webhook.secret"],
        [14, 12, "schedules.nightly.notify[1].on[0]"],
      ],
    );
    assert.match(r.problems[0]!.message, /must name a secret, not hold a URL/);
    assert.doesNotMatch(JSON.stringify(r.problems), /SECRET|hooks\.slack/);
    assert.match(r.problems[1]!.message, /"finished" is not a state a run ends in/);
    assert.equal(r.pipeline?.schedules, undefined);
  });

  test("--notify NAME[:states], checked as notify: entries are", () => {
    assert.deepEqual(parseNotifyTarget("team-slack"), {
      target: { webhookSecret: "team-slack", on: ["SUCCEEDED", "FAILED", "CANCELLED"] },
    });
    assert.deepEqual(parseNotifyTarget("oncall:failed,Cancelled,failed"), {
      target: { webhookSecret: "oncall", on: ["FAILED", "CANCELLED"] },
    });
    const url = parseNotifyTarget("https://hooks.slack.com/services/T0/B0/SECRET");
    assert.ok("error" in url);
    assert.match(url.error, /must name a secret, not hold a URL/);
    assert.doesNotMatch(url.error, /SECRET/);
    const state = parseNotifyTarget("oncall:finished");
    assert.ok("error" in state);
    assert.match(state.error, /webhook oncall: "finished" is not a state a run ends in/);
    const empty = parseNotifyTarget("oncall:");
    assert.ok("error" in empty);
    assert.match(empty.error, /give the states after ":"/);
    const name = notifyTarget("bad/name", []);
    assert.ok("error" in name);
    assert.match(name.error, /webhook secret name "bad\/name" must be letters/);
  });

  test("targets named twice merge into one, posted for the union of their states", () => {
    assert.deepEqual(
      mergeNotifyTargets([{ webhookSecret: "a", on: ["FAILED"] }], undefined, [
        { webhookSecret: "b", on: ["SUCCEEDED"] },
        { webhookSecret: "a", on: ["CANCELLED", "FAILED"] },
      ]),
      [
        { webhookSecret: "a", on: ["FAILED", "CANCELLED"] },
        { webhookSecret: "b", on: ["SUCCEEDED"] },
      ],
    );
  });

  test("cron and time zone checks", () => {
    assert.equal(checkCron("*/5 * * * *"), undefined);
    assert.equal(checkCron("*/2 * * * * *"), undefined);
    assert.match(checkCron("* * * * * * *") ?? "", /has 7 fields/);
    assert.equal(checkTimezone("America/New_York"), undefined);
    assert.match(checkTimezone("Nowhere") ?? "", /IANA/);
  });

  test("ticks follow the time zone, across a daylight-saving change", () => {
    const ticks = new CronTicks("0 2 * * *", "America/New_York");
    // 02:00 in New York is 07:00 UTC in winter and 06:00 UTC in summer.
    assert.equal(
      new Date(ticks.next(Date.parse("2026-01-10T12:00:00Z"))!).toISOString(),
      "2026-01-11T07:00:00.000Z",
    );
    assert.equal(
      new Date(ticks.next(Date.parse("2026-07-10T12:00:00Z"))!).toISOString(),
      "2026-07-11T06:00:00.000Z",
    );
    const t = Date.parse("2026-07-11T06:00:00Z");
    assert.equal(ticks.previous(t), t);
    assert.equal(ticks.previous(t - 1), t - 86_400_000);
    assert.equal(ticks.newestDue(t - 3 * 86_400_000, t + 1000), t);
    assert.equal(ticks.newestDue(t, t + 1000), undefined);
    const seconds = new CronTicks("* * * * * *", "UTC");
    assert.equal(seconds.newestDue(1000, 5500), 5000);
    assert.equal(seconds.next(5000), 6000);
  });
});
