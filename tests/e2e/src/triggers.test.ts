// Commit triggers end to end through the installed CLI. `odin server --repo CHECKOUT`: an `odin
// push` under a trigger's paths starts a run pinned to the pushed commit, submitted by its author;
// a `git commit` made in the checkout is seen by the server's sync on its own. The deployed
// services (repo-sync, registry, two dag-schedulers, NATS): ten commits pushed at once start
// exactly the runs each policy asks for, once, also after a scheduler restarts, and a commit
// pushed while no scheduler ran is run when one starts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  eventually,
  odin,
  startOdinServer,
  startStack,
  tempDir,
  type OdinServer,
  type Stack,
} from "@odin/test-stack";

const train = `name: train
parameters:
  lr: {type: number, default: 0.1}
tasks:
- {name: a, image: busybox, command: echo, args: ["lr=\${{ params.lr }}"]}
triggers:
  code:
    paths: [src/]
    policy: each
    parameters: {lr: 0.5}
`;
const latest = `name: latest
tasks:
- {name: a, image: busybox, command: echo, args: [hi]}
triggers:
  follow-train: {paths: [/train/src], policy: newest}
`;

interface RunJson {
  id: string;
  pipeline: string;
  commit: string;
  submittedBy: string;
  createTime: string;
  labels?: Record<string, string>;
  parameters?: Record<string, unknown>;
}

/** Every run carrying a label selector, through `odin status`. */
async function runsWith(
  cli: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>,
  selector: string,
): Promise<RunJson[]> {
  const res = await cli("-o", "json", "status", "--all", "-l", selector);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as RunJson[];
}

describe("odin server on a git checkout", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let repo: string;
  let server: OdinServer;
  const git = (...args: string[]): string =>
    execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();
  const cli = (...args: string[]) => odin(["--server", server.address, ...args]);

  before(async () => {
    dir = await tempDir("odin-e2e-triggers-");
    repo = join(dir.path, "checkout");
    await mkdir(join(repo, "train", "src"), { recursive: true });
    await writeFile(join(repo, "train", "main.yml"), train);
    await writeFile(join(repo, "train", "src", "model.py"), "v = 1\n");
    execFileSync("git", ["init", "-q", "-b", "main", repo]);
    git("config", "user.name", "Jane Doe");
    git("config", "user.email", "jane@example.com");
    git("add", "-A");
    git("commit", "-qm", "train");
    server = await startOdinServer(["--repo", repo, "--data", join(dir.path, "data")]);
  });

  after(async () => {
    await server?.stop();
    await dir?.cleanup();
  });

  test("odin push under the paths starts a run of that commit by its author; odin triggers shows it", async () => {
    // The commit served at start is where triggers begin: it starts nothing.
    const none = await cli("triggers");
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /train:code +each +\/train\/src +- +- +0/);

    const local = join(dir.path, "push");
    await mkdir(join(local, "src"), { recursive: true });
    await writeFile(join(local, "main.yml"), train);
    await writeFile(join(local, "src", "model.py"), "v = 2\n");
    const push = await cli("push", local, "--as", "train", "-m", "tune the model");
    assert.equal(push.code, 0, push.stderr);
    const pushed = git("rev-parse", "HEAD");
    assert.match(push.stdout, new RegExp(pushed.slice(0, 12)));

    let runs: RunJson[] = [];
    await eventually(
      async () => (runs = await runsWith(cli, "trigger=train.code")).length > 0,
      60_000,
      "the push's run",
    );
    assert.equal(runs.length, 1);
    const run = runs[0]!;
    assert.equal(run.commit, pushed, "pinned to the pushed commit");
    assert.equal(run.submittedBy, `commit:${pushed.slice(0, 7)} by Jane Doe <jane@example.com>`);
    assert.equal(run.labels?.commit, pushed);
    assert.deepEqual(run.parameters, { lr: 0.5 });
    const status = await cli("status", run.id);
    assert.match(status.stdout, /submitted by: commit:[0-9a-f]{7} by Jane Doe <jane@example.com>/);

    const listed = await cli("triggers");
    assert.match(
      listed.stdout,
      new RegExp(`train:code +each +/train/src +${pushed.slice(0, 12)} +${run.id} +1 +by Jane Doe`),
    );
    const json = JSON.parse((await cli("-o", "json", "triggers")).stdout) as {
      checkedCommit: string;
      triggers: { name: string; lastCommit: string; lastRunId: string; policy: string }[];
    };
    assert.equal(json.checkedCommit, pushed);
    assert.deepEqual(
      json.triggers.map((t) => [t.name, t.policy, t.lastCommit, t.lastRunId]),
      [["train:code", "each", pushed, run.id]],
    );
  });

  test("a git commit in the checkout is picked up by the server's own sync; one outside the paths starts nothing", async () => {
    const before = (await runsWith(cli, "trigger=train.code")).length;
    await writeFile(join(repo, "README.md"), "not a trigger path\n");
    git("add", "-A");
    git("-c", "user.name=Ann Other", "-c", "user.email=ann@example.com", "commit", "-qm", "docs");
    await writeFile(join(repo, "train", "src", "model.py"), "v = 3\n");
    git("-c", "user.name=Ann Other", "-c", "user.email=ann@example.com", "commit", "-qam", "v3");
    const head = git("rev-parse", "HEAD");
    let runs: RunJson[] = [];
    await eventually(
      async () => (runs = await runsWith(cli, `commit=${head}`)).length > 0,
      60_000,
      "the committed change's run (the server syncs a work tree every few seconds)",
    );
    assert.equal(runs[0]!.submittedBy, `commit:${head.slice(0, 7)} by Ann Other <ann@example.com>`);
    // Every commit up to the head was looked at: the README commit started nothing.
    await eventually(
      async () =>
        (JSON.parse((await cli("-o", "json", "triggers")).stdout) as { checkedCommit: string })
          .checkedCommit === head,
      30_000,
      "the triggers to be checked up to the head",
    );
    assert.equal((await runsWith(cli, "trigger=train.code")).length, before + 1);
  });
});

describe("the deployed services: two dag-schedulers, ten commits pushed at once", () => {
  let stack: Stack;
  const cli = (...args: string[]) => stack.cli(...args);
  const git = (...args: string[]): string =>
    execFileSync("git", ["-C", stack.seed, ...args], { encoding: "utf8" }).trim();
  /** Commits as an author; `touch` files get a new line each. */
  const commitAs = async (author: string, touch: string[], message: string): Promise<string> => {
    for (const path of touch) {
      await mkdir(join(stack.seed, path, ".."), { recursive: true });
      await writeFile(join(stack.seed, path), `${message}\n`);
    }
    git("add", "-A");
    const [name, email] = author.split(" <");
    git(
      "-c",
      `user.name=${name}`,
      "-c",
      `user.email=${email!.slice(0, -1)}`,
      "commit",
      "-qm",
      message,
    );
    return git("rev-parse", "HEAD");
  };
  /** The runs of a trigger once the count stops changing (every scheduler has had its say). */
  const settled = async (selector: string, expected: number): Promise<RunJson[]> => {
    await eventually(
      async () => (await runsWith(cli, selector)).length >= expected,
      90_000,
      `${expected} runs of ${selector}`,
    );
    // Both replicas checked the same commits: the cursor has moved past them.
    await eventually(
      async () =>
        (
          JSON.parse((await stack.cli("-o", "json", "triggers")).stdout) as {
            checkedCommit: string;
          }
        ).checkedCommit === git("rev-parse", "HEAD"),
      60_000,
      "the triggers to be checked up to the pushed head",
    );
    return runsWith(cli, selector);
  };

  before(async () => {
    stack = await startStack(
      { train: { "main.yml": train, "src/model.py": "v = 0\n" }, latest: { "main.yml": latest } },
      // repoSyncs: fixed ports, so a restarted scheduler keeps its address.
      { schedulers: 2, repoSyncs: 1 },
    );
    git("pull", "-q", "origin", "main");
  });

  after(async () => {
    await stack?.stop();
  });

  test("each: one run per matching commit, oldest first, pinned and authored; newest: one run; none doubled", async () => {
    const authors = ["Ada Lovelace <ada@example.com>", "Grace Hopper <grace@example.com>"];
    const matching: { sha: string; author: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const author = authors[i % 2]!;
      // Commits 0, 3, 6, 9 touch only other files; the rest change the trigger's paths.
      const touches = i % 3 === 0 ? [`docs/note${i}.md`] : [`train/src/file${i}.py`];
      const sha = await commitAs(author, touches, `commit ${i}`);
      if (i % 3 !== 0) matching.push({ sha, author });
    }
    git("push", "-q", "origin", "HEAD:main");
    const sync = await stack.cli("sync");
    assert.equal(sync.code, 0, sync.stderr);

    const each = await settled("trigger=train.code", matching.length);
    assert.equal(each.length, 6, JSON.stringify(each.map((r) => r.commit)));
    assert.equal(new Set(each.map((r) => r.commit)).size, 6, "no commit run twice");
    const byCommit = new Map(each.map((r) => [r.commit, r]));
    for (const m of matching) {
      const run = byCommit.get(m.sha);
      assert.ok(run, `a run for ${m.sha}`);
      assert.equal(run.submittedBy, `commit:${m.sha.slice(0, 7)} by ${m.author}`);
      assert.equal(run.pipeline, "train");
      assert.deepEqual(run.parameters, { lr: 0.5 });
    }
    // Oldest first: each run was created no earlier than the run of the commit before it.
    const created = matching.map((m) => Date.parse(byCommit.get(m.sha)!.createTime));
    assert.deepEqual(
      created,
      [...created].sort((x, y) => x - y),
      "runs created oldest commit first",
    );

    const newest = await settled("trigger=latest.follow-train", 1);
    assert.deepEqual(
      newest.map((r) => r.commit),
      [matching.at(-1)!.sha],
    );
  });

  test("a restarted scheduler starts nothing again; a commit pushed while no scheduler ran is run when one starts", async () => {
    const before = (await runsWith(cli, "trigger=train.code")).length;
    const [a, b] = stack.replicas.filter((r) => r.app === "dag-scheduler");
    /** The gateway reaches a scheduler again (its connection backs off while none runs). */
    const reachable = () =>
      eventually(
        async () => (await stack.cli("status")).code === 0,
        60_000,
        "the gateway to reach a scheduler",
      );
    await a!.process.stop();
    await a!.restart();
    await reachable();
    // A replica checks the commits it missed before it reports ready: nothing new to run.
    assert.equal((await runsWith(cli, "trigger=train.code")).length, before);

    await a!.process.stop();
    await b!.process.stop();
    const missed = await commitAs("Ada Lovelace <ada@example.com>", ["train/src/late.py"], "late");
    git("push", "-q", "origin", "HEAD:main");
    // repo-sync announces it; no scheduler hears.
    assert.equal((await stack.cli("sync")).code, 0);
    await a!.restart();
    await reachable();
    // Both pipelines' triggers follow train/src: one run each.
    const runs = await runsWith(cli, `commit=${missed}`);
    assert.deepEqual(runs.map((r) => [r.pipeline, r.submittedBy]).sort(), [
      ["latest", `commit:${missed.slice(0, 7)} by Ada Lovelace <ada@example.com>`],
      ["train", `commit:${missed.slice(0, 7)} by Ada Lovelace <ada@example.com>`],
    ]);
    await b!.restart();
    assert.equal((await runsWith(cli, "trigger=train.code")).length, before + 1);
  });
});
