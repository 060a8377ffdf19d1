// A real service process stopped with SIGTERM: the call in flight completes, cleanup runs, and
// the process exits 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { PipelineRegistryServiceClient } from "@odin/proto";
import { createClient, unary } from "./client.js";
import { TOKENS } from "./fixtures.js";

test("SIGTERM lets the in-flight call finish, runs cleanup and exits 0", async () => {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL("./signal-server.fixture.js", import.meta.url))],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    const until = async (predicate: () => boolean, what: string): Promise<void> => {
      for (let waited = 0; !predicate(); waited += 20) {
        if (waited > 10_000 || child.exitCode !== null) {
          assert.fail(`${what} never happened; stderr:\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    await until(() => stdout.includes("\n"), "the server printing its address");
    const { address } = JSON.parse(stdout.split("\n")[0]!) as { address: string };
    const client = createClient(PipelineRegistryServiceClient, {
      address,
      token: TOKENS.viewer,
      retries: 0,
    });
    const call = unary(client, "listPipelines", { commit: "", pathPrefix: "slow:700" });
    await until(() => stderr.includes("slow call started"), "the slow call starting");
    child.kill("SIGTERM");

    const response = await call;
    client.close();
    assert.equal(response.commit, "vera/viewer");
    const [code, signal] = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0);
    const messages = stderr
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    const order = ["signal received; stopping", "shutting down", "rpc", "stopped", "cleanup ran"];
    assert.deepEqual(
      messages.filter((m) => order.includes(m)),
      order,
    );
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
