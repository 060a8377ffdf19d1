// Fixture-driven, like libs/dag's scenarios: each testdata/attempts/*.scenario holds options
// (`key: value` lines: default-pending-timeout, started-at, reported), `---`, then steps
// `@<ms> <fact> => <expected outputs>` (`-` for none).
// Facts: `named <object>`, `pending-timeout <ms>`, `running`, `ended <STATE> [exit=<n>] [<reason>: <message>]`,
// `stuck <unit> [since=<ms>] <reason>: <message>`, `unstuck <unit>`, `deleted-by-odin`,
// `cancelling`, `cancel-failed`, `deleted <what>`, `tick`, and `restart [<STATE>,…]` (a new core
// replaces the old one, as after a launcher restart, knowing the states listed as reported).
// Outputs, separated by ` | `: events `STATE[ as <object>][ exit=<n>][ (<reason>: <message>)]`,
// commands `delete (<why>)`, and `wake @<ms>` / `wake @none` whenever `wakeAt()` changed.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { eventId, type ReportedState, type TaskStateEvent } from "../backend.js";
import {
  AttemptCore,
  type AttemptCoreOptions,
  type AttemptFact,
  type AttemptStep,
  type Observation,
} from "./core.js";

const testdata = new URL("../../testdata/attempts/", import.meta.url);
const id = { runId: "r1", task: "t", attempt: 1 };

function formatEvent(e: TaskStateEvent): string {
  let s = e.state;
  if (e.objectName) s += ` as ${e.objectName}`;
  if (e.exitCode !== undefined) s += ` exit=${e.exitCode}`;
  if (e.reason) s += ` (${e.reason}: ${e.message ?? ""})`;
  return s;
}

/** `[exit=<n>] [<reason>: <message>]` → the fields of an observation. */
function parseDetail(text: string): Omit<Observation, "state"> {
  const o: Omit<Observation, "state"> = {};
  const exit = /^exit=(\d+)\s*/.exec(text);
  if (exit) {
    o.exitCode = Number(exit[1]);
    text = text.slice(exit[0].length);
  }
  const rm = /^(\S+?): (.*)$/.exec(text);
  if (rm) {
    o.reason = rm[1]!;
    o.message = rm[2]!;
  }
  return o;
}

function parseFact(action: string): AttemptFact | "tick" | { restart: ReportedState[] } {
  const [verb = "", ...rest] = action.split(" ");
  const arg = rest.join(" ");
  switch (verb) {
    case "tick":
      return "tick";
    case "restart":
      return { restart: arg ? (arg.split(",") as ReportedState[]) : [] };
    case "named":
      return { kind: "named", objectName: arg };
    case "pending-timeout":
      return { kind: "pending-timeout", ms: Number(arg) };
    case "running":
      return { kind: "running" };
    case "ended": {
      const [state = "", ...detail] = rest;
      return {
        kind: "ended",
        outcome: { state: state as ReportedState, ...parseDetail(detail.join(" ")) },
      };
    }
    case "stuck": {
      const [unit = "", ...more] = rest;
      let text = more.join(" ");
      let since: Date | undefined;
      const s = /^since=(-?\d+)\s+/.exec(text);
      if (s) {
        since = new Date(Number(s[1]));
        text = text.slice(s[0].length);
      }
      const { reason = "", message = "" } = parseDetail(text);
      return { kind: "stuck", unit, stuck: { reason, message, ...(since ? { since } : {}) } };
    }
    case "unstuck":
      return { kind: "unstuck", unit: arg };
    case "deleted-by-odin":
    case "cancelling":
    case "cancel-failed":
      return { kind: verb };
    case "deleted":
      return { kind: "deleted", what: arg };
  }
  throw new Error(`bad fact: ${action}`);
}

function splitExpected(text: string): string[] {
  return text.trim() === "-" ? [] : text.split(" | ").map((o) => o.trim());
}

function parseOptions(header: string): AttemptCoreOptions {
  const options: AttemptCoreOptions = { defaultPendingTimeoutMs: 300_000, startedAt: 0 };
  for (const line of header.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const m = /^([a-z-]+): (.*)$/.exec(line);
    assert.ok(m, `bad option: ${line}`);
    if (m[1] === "default-pending-timeout") options.defaultPendingTimeoutMs = Number(m[2]);
    else if (m[1] === "started-at") options.startedAt = Number(m[2]);
    else if (m[1] === "reported") options.reported = m[2]!.split(",") as ReportedState[];
    else assert.fail(`unknown option: ${line}`);
  }
  return options;
}

describe("AttemptCore scenarios", () => {
  for (const file of readdirSync(testdata)
    .filter((f) => f.endsWith(".scenario"))
    .sort()) {
    test(file.replace(".scenario", ""), () => {
      const [header, steps] = readFileSync(new URL(file, testdata), "utf8").split("\n---\n");
      const options = parseOptions(header!);
      let core = new AttemptCore(id, options);
      let wake: number | undefined;
      for (const line of steps!.split("\n")) {
        if (line.trim() === "" || line.startsWith("#")) continue;
        const m = /^@(-?\d+) (.+?) => (.*)$/.exec(line);
        assert.ok(m, `bad step: ${line}`);
        const now = Number(m[1]);
        const fact = parseFact(m[2]!.trim());
        let step: AttemptStep;
        if (fact === "tick") step = core.tick(now);
        else if ("restart" in fact) {
          core = new AttemptCore(id, { ...options, startedAt: now, reported: fact.restart });
          wake = undefined;
          step = { events: [], commands: [] };
        } else step = core.observe(fact, now);
        const got = [
          ...step.events.map(formatEvent),
          ...step.commands.map((c) => `${c.kind} (${c.why})`),
        ];
        for (const e of step.events) {
          assert.equal(eventId(e), `r1.t.1.${e.state}`, "event ids are deterministic");
        }
        const wakeAt = core.wakeAt();
        if (wakeAt !== wake) got.push(`wake @${wakeAt ?? "none"}`);
        wake = wakeAt;
        assert.deepEqual(got, splitExpected(m[3]!), `${file}: ${line}`);
      }
    });
  }
});
