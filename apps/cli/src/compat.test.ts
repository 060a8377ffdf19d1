import { test } from "node:test";
import assert from "node:assert/strict";
import { compatArgv, compatCommandNames } from "./compat.js";
import { serverFromEnv } from "./connection.js";
import { summarize } from "./commands/runs.js";

const translate = (name: string, args: string[]) => {
  const notes: string[] = [];
  const argv = compatArgv(["node", `/usr/bin/${name}`, ...args], (n) => notes.push(n));
  return { args: argv.slice(2), notes };
};

test("every installed original name is translated", () => {
  assert.deepEqual([...compatCommandNames].sort(), [
    "odin-cleanup",
    "odin-data",
    "odin-events",
    "odin-gpus",
    "odin-logs",
    "odin-push",
    "odin-run",
    "odin-status",
  ]);
});

test("odin-data RESOURCE lists a run's or a task's files; odin-gpus is odin gpus", () => {
  assert.deepEqual(translate("odin-data", ["sst2-ab12cd34--train"]).args, [
    "data",
    "sst2-ab12cd34",
    "train",
  ]);
  assert.deepEqual(translate("odin-data", ["sst2-ab12cd34"]).args, ["data", "sst2-ab12cd34"]);
  const gpus = translate("odin-gpus", ["--host", "h", "--port", "9", "--scheme", "wss"]);
  assert.deepEqual(gpus.args, ["--server", "h:9", "gpus"]);
  assert.equal(gpus.notes.length, 1);
});

test("odin-push JOB FILE --file_name NAME --create", () => {
  const r = translate("odin-push", ["sst2", "conf.yml", "--file_name", "main.yml", "-c"]);
  assert.deepEqual(r.args, ["push", "conf.yml", "--as", "sst2", "--file-name", "main.yml"]);
  assert.deepEqual(r.notes, ["-c ignored: the first push of a pipeline creates it"]);
});

test("odin-status PATTERN --columns a b --all, with --host/--port", () => {
  const r = translate("odin-status", [
    "sst2",
    "--columns",
    "task",
    "status",
    "--host",
    "h",
    "--port",
    "9",
  ]);
  assert.deepEqual(r.args, ["--server", "h:9", "status", "sst2", "--columns", "task,status"]);
  assert.deepEqual(translate("odin-status", ["x", "--all"]).args, [
    "status",
    "x",
    "--columns",
    "all",
  ]);
});

test("odin-logs and odin-cleanup map their flags; meaningless ones become notes", () => {
  const logs = translate("odin-logs", [
    "r--t",
    "--namespace",
    "ns",
    "-l",
    "5",
    "-f",
    "--container",
    "c",
  ]);
  assert.deepEqual(logs.args, ["logs", "r--t", "--tail", "5", "--follow", "--container", "c"]);
  assert.match(logs.notes[0]!, /--namespace ns ignored/);
  assert.deepEqual(translate("odin-cleanup", ["r", "-d", "-f"]).args, [
    "rm",
    "r",
    "--purge-records",
    "--purge-data",
  ]);
});

test("plain odin arguments pass through", () => {
  assert.deepEqual(translate("odin", ["status", "-o", "json"]).args, ["status", "-o", "json"]);
});

test("the server from the environment: ODIN_SERVER, else ODIN_URL:ODIN_PORT", () => {
  assert.equal(serverFromEnv({}), "localhost:50051");
  assert.equal(serverFromEnv({ ODIN_SERVER: "a:1", ODIN_URL: "b" }), "a:1");
  assert.equal(
    serverFromEnv({ ODIN_URL: "https://odin.example:9003/x", ODIN_PORT: "7" }),
    "odin.example:7",
  );
  assert.equal(serverFromEnv({ ODIN_PORT: "7" }), "localhost:7");
});

test("a run summary counts errors as a noun", () => {
  assert.equal(
    summarize(["SUCCEEDED", "ERROR", "ERROR", "SKIPPED"]),
    "1 succeeded, 2 errors, 1 skipped",
  );
  assert.equal(summarize(["ERROR"]), "1 error");
});

test("odin-run JOB --x:key value passes the template context as the run's parameters", () => {
  const r = translate("odin-run", ["sst2", "--x:backend", "tf", "--x:lr=0.1", "--x:neg", "-1"]);
  assert.deepEqual(r.args, [
    "run",
    "sst2",
    "--follow",
    "--set",
    "backend=tf",
    "--set",
    "lr=0.1",
    "--set",
    "neg=-1",
  ]);
  assert.deepEqual(r.notes, []);
});
