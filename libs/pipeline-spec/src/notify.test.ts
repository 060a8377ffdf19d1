// `notify:` — the webhooks a run's end is posted to, named by secret (docs/notifications.md).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertProblems, load, loadValid } from "./fixtures.js";

const tasks = "tasks:\n- name: a\n  image: x\n  command: run\n";

describe("notify", () => {
  test("a list of webhooks by secret name, each with the end states it is posted for", () => {
    const { pipeline } = loadValid(
      [
        "notify:",
        "- webhook: {secret: slack-ml}",
        "  on: [failed, Cancelled]",
        "- webhook: ops.hook_1",
        tasks,
      ].join("\n"),
    );
    assert.deepEqual(pipeline.notify, [
      { webhookSecret: "slack-ml", on: ["FAILED", "CANCELLED"] },
      { webhookSecret: "ops.hook_1", on: ["SUCCEEDED", "FAILED", "CANCELLED"] },
    ]);
  });

  test("a single map is one webhook; a pipeline without notify has none", () => {
    const { pipeline } = loadValid(`notify: {webhook: {secret: s}, on: succeeded}\n${tasks}`);
    assert.deepEqual(pipeline.notify, [{ webhookSecret: "s", on: ["SUCCEEDED"] }]);
    assert.equal(loadValid(tasks).pipeline.notify, undefined);
  });

  test("problems point at the entry, the state and the name, with file:line:col", () => {
    const result = load(
      [
        "notify:",
        "- on: [failed]",
        "- webhook: {secret: slack-ml}",
        "  on: [failed, finished]",
        "- webhook: {secret: bad/name}",
        "- webhook: {sekret: x}",
        tasks,
      ].join("\n"),
    );
    assert.equal(result.valid, false);
    assertProblems(result.problems, [
      {
        line: 2,
        column: 3,
        field: "notify[0].webhook",
        message: ['missing required key "webhook"', "webhook: {secret: slack-ml}"],
      },
      {
        line: 4,
        column: 16,
        field: "notify[1].on[1]",
        message: ['"finished" is not a state a run ends in', "succeeded, failed, cancelled"],
      },
      {
        line: 5,
        column: 21,
        field: "notify[2].webhook.secret",
        message: ['webhook secret name "bad/name" must be letters, digits'],
      },
      {
        line: 6,
        column: 12,
        field: "notify[3].webhook.secret",
        message: ['missing required key "secret"'],
      },
      {
        line: 6,
        column: 13,
        severity: "warning",
        field: "notify[3].webhook.sekret",
        message: ['unknown key "notify[3].webhook.sekret"'],
      },
    ]);
  });

  test("a URL written in place of a secret name is refused without being echoed", () => {
    const url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
    const result = load(`notify:\n- webhook: ${url}\n${tasks}`);
    assert.equal(result.valid, false);
    assert.equal(result.problems.length, 1);
    assert.match(result.problems[0]!.message, /must name a secret, not hold a URL/);
    assert.ok(!result.problems[0]!.message.includes("XXXXSECRET"));
    assert.equal(result.problems[0]!.line, 2);
  });
});
