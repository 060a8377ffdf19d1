// Pure pieces of kube-sim: selectors, names, patches, scripts, the timer heap.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generatedName, validateName } from "./names.js";
import { jsonPatch, mergePatch } from "./patch.js";
import { Scheduler } from "./scheduler.js";
import { matchesPattern, parseScriptAnnotation } from "./scripts.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";
import { ApiError } from "./status.js";
import type { KubeObject } from "./types.js";

const obj = (labels: Record<string, string>, extra: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name: "x", namespace: "ns", labels },
  ...extra,
});

test("label selectors follow Kubernetes semantics", () => {
  const cases: [string, Record<string, string>, boolean][] = [
    ["a=1", { a: "1" }, true],
    ["a==1", { a: "2" }, false],
    ["a!=1", {}, true], // != matches a missing label
    ["a notin (1,2)", {}, true],
    ["a in (1, 2),b", { a: "2", b: "" }, true],
    ["a in (1, 2),b", { a: "2" }, false],
    ["!a", { b: "1" }, true],
    ["x.io/role=lead", { "x.io/role": "lead" }, true],
    ["a=", { a: "" }, true],
    ["n>3", { n: "4" }, true],
    ["n<3", { n: "4" }, false],
  ];
  for (const [selector, labels, expected] of cases) {
    const match = parseLabelSelector(selector);
    assert.ok(match !== undefined);
    assert.equal(match(obj(labels)), expected, `${selector} on ${JSON.stringify(labels)}`);
  }
  assert.equal(parseLabelSelector(""), undefined);
  assert.throws(
    () => parseLabelSelector("a in 1"),
    (e) => e instanceof ApiError && e.status.code === 400,
  );
  assert.throws(() => parseLabelSelector("a=b c"), ApiError);
});

test("field selectors: supported fields only, empty value for missing fields, escapes", () => {
  const pending = parseFieldSelector("pods", "spec.nodeName=,status.phase!=Failed");
  assert.ok(pending);
  assert.equal(pending(obj({}, { spec: {}, status: { phase: "Pending" } })), true);
  assert.equal(pending(obj({}, { spec: { nodeName: "n" }, status: { phase: "Pending" } })), false);
  const escaped = parseFieldSelector("events", String.raw`reason=a\,b`);
  assert.ok(escaped);
  assert.equal(escaped(obj({}, { reason: "a,b" })), true);
  assert.throws(() => parseFieldSelector("pods", "spec.containers=x"), /field label not supported/);
});

test("names: DNS-1123 label/subdomain and DNS-1035 rules; generated names", () => {
  assert.deepEqual(validateName("a.b-c", "dns1123-subdomain"), []);
  assert.notDeepEqual(validateName("a.b", "dns1123-label"), []);
  assert.deepEqual(validateName("1abc", "dns1123-label"), []);
  assert.notDeepEqual(validateName("1abc", "dns1035-label"), []);
  assert.notDeepEqual(validateName("a".repeat(64), "dns1123-label"), []);
  assert.deepEqual(validateName("a".repeat(253), "dns1123-subdomain"), []);
  const generated = generatedName("x".repeat(70));
  assert.equal(generated.length, 63);
  assert.deepEqual(validateName(generated, "dns1123-label"), []);
});

test("merge patch and JSON patch", () => {
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null, e: 4 }, f: [1] }), {
    a: 1,
    b: { d: 3, e: 4 },
    f: [1],
  });
  const doc = { metadata: { labels: { a: "1" } }, list: [1, 2] };
  const patched = jsonPatch(doc, [
    { op: "add", path: "/metadata/labels/b~1c", value: "2" },
    { op: "remove", path: "/metadata/labels/a" },
    { op: "add", path: "/list/-", value: 3 },
    { op: "test", path: "/list/0", value: 1 },
  ]);
  assert.deepEqual(patched, { metadata: { labels: { "b/c": "2" } }, list: [1, 2, 3] });
  assert.deepEqual(doc.metadata.labels, { a: "1" }, "input untouched");
  assert.throws(
    () => jsonPatch(doc, [{ op: "test", path: "/list/0", value: 9 }]),
    (e) => e instanceof ApiError && e.status.code === 422,
  );
  assert.throws(
    () => jsonPatch(doc, [{ op: "remove", path: "/nope/x" }]),
    (e) => e instanceof ApiError && e.status.code === 400,
  );
});

test("script annotations are checked; patterns are globs or RegExps", () => {
  assert.deepEqual(parseScriptAnnotation('{"exitCode":3,"logs":["a"],"imagePullError":"denied"}'), {
    exitCode: 3,
    logs: ["a"],
    imagePullError: "denied",
  });
  assert.throws(() => parseScriptAnnotation("{"), /not valid JSON/);
  assert.throws(() => parseScriptAnnotation('{"runMs":"5"}'), /"runMs" must be number/);
  assert.throws(() => parseScriptAnnotation("[]"), /JSON object/);
  assert.equal(matchesPattern("busybox*", "busybox:1.36"), true);
  assert.equal(matchesPattern("busybox", "busybox:1.36"), false);
  assert.equal(matchesPattern("*/trainer:*", "ghcr.io/org/trainer:2"), true);
  assert.equal(matchesPattern(/fail/g, "x-fail"), true);
  assert.equal(
    matchesPattern(/fail/g, "x-fail"),
    true,
    "a global RegExp does not carry state between calls",
  );
});

test("scheduler runs tasks in time order, ties in insertion order, and stop() cancels the rest", (t) => {
  // A mocked clock: the order is decided by due times, not by how busy the machine is.
  t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
  const scheduler = new Scheduler();
  const order: string[] = [];
  scheduler.after(30, () => order.push("c"));
  scheduler.after(0, () => order.push("a1"));
  scheduler.after(0, () => order.push("a2"));
  scheduler.after(10, () => {
    order.push("b");
    scheduler.after(0, () => order.push("b-child"));
  });
  scheduler.after(500, () => order.push("never"));
  t.mock.timers.tick(0);
  assert.deepEqual(order, ["a1", "a2"]);
  t.mock.timers.tick(10);
  assert.deepEqual(order, ["a1", "a2", "b", "b-child"]);
  t.mock.timers.tick(70);
  assert.deepEqual(order, ["a1", "a2", "b", "b-child", "c"]);
  assert.equal(scheduler.pending, 1);
  scheduler.stop();
  assert.equal(scheduler.pending, 0);
  t.mock.timers.tick(1000);
  assert.deepEqual(order, ["a1", "a2", "b", "b-child", "c"], "stopped tasks never run");
});
