// The JSON logger: one object per line, levels, child fields, and redaction of secrets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "./logger.js";

function capture(level: "debug" | "info" | "warn" | "error" = "info") {
  const lines: string[] = [];
  const logger = createLogger({
    service: "repo-sync",
    level,
    write: (line) => lines.push(line),
    now: () => new Date("2026-01-02T03:04:05.000Z"),
  });
  return {
    logger,
    lines,
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test("writes one JSON object per line with time, level, service, msg and fields", () => {
  const { logger, lines } = capture();
  logger.info("synced", { commit: "abc123", files: 3 });
  assert.equal(lines.length, 1);
  assert.equal(
    lines[0],
    '{"time":"2026-01-02T03:04:05.000Z","level":"info","service":"repo-sync","msg":"synced","commit":"abc123","files":3}',
  );
});

test("drops lines below the configured level", () => {
  const { logger, parsed } = capture("warn");
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  assert.deepEqual(
    parsed().map((r) => r["level"]),
    ["warn", "error"],
  );
  assert.equal(logger.enabled("info"), false);
  assert.equal(logger.enabled("error"), true);
});

test("child loggers add their fields; reserved keys are not overwritten", () => {
  const { logger, parsed } = capture();
  logger
    .child({ requestId: "r1" })
    .child({ subject: "alice" })
    .info("push", { msg: "x", level: 9 });
  const [line] = parsed();
  assert.equal(line?.["requestId"], "r1");
  assert.equal(line?.["subject"], "alice");
  assert.equal(line?.["msg"], "push");
  assert.equal(line?.["level"], "info");
  assert.equal(line?.["msg_"], "x");
  assert.equal(line?.["level_"], 9);
});

test("redacts secret-named fields at any depth and bearer credentials in text", () => {
  const { logger, lines } = capture();
  logger.info("calling with Bearer abc.def-ghi now", {
    token: "t0p-s3cret",
    headers: { Authorization: "Bearer xyz987", "x-api-key": "k-123" },
    remote: { url: "https://git.example/repo.git", password: "hunter2" },
    note: "header was bearer QWERTY123",
    odinClientSecret: "s-456",
  });
  const text = lines.join("\n");
  for (const secret of [
    "t0p-s3cret",
    "xyz987",
    "k-123",
    "hunter2",
    "QWERTY123",
    "abc.def-ghi",
    "s-456",
  ]) {
    assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  }
  assert.match(text, /Bearer \[redacted\] now/);
  assert.match(text, /git\.example/);
});

test("serializes errors with name, message, stack and cause; survives cycles and bigints", () => {
  const { logger, parsed } = capture();
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic["self"] = cyclic;
  const err = new Error("push failed", { cause: new Error("remote moved") });
  logger.error("failed", { err, cyclic, seq: 12345678901234567890n });
  const [line] = parsed();
  const logged = line?.["err"] as {
    name: string;
    message: string;
    stack: string;
    cause: { message: string };
  };
  assert.equal(logged.name, "Error");
  assert.equal(logged.message, "push failed");
  assert.match(logged.stack, /at /);
  assert.equal(logged.cause.message, "remote moved");
  assert.deepEqual(line?.["cyclic"], { name: "loop", self: "[circular]" });
  assert.equal(line?.["seq"], "12345678901234567890");
});
