// Leadership of repo-sync replicas on one shared volume: one leader at a time, takeover after the
// lease runs out, fencing of a paused leader, followers serving reads and checkouts. Driven by a
// controllable clock; the store is the in-memory adapter (the NATS one passes the same contract).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstat, mkdtemp, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryKeyValueStore } from "@odin/run-store";
import { Lease, NotLeaderError } from "./lease.js";
import { NotLeadingError, PipelineRepository } from "./repository.js";
import { git } from "./testing/git.js";

const pipeline = (name: string) =>
  new TextEncoder().encode(`name: ${name}\ntasks:\n- {name: a, image: 'x:1', command: run}\n`);

function replicas(store: MemoryKeyValueStore, clock: { t: number }) {
  const make = (id: string) =>
    new Lease({ store, self: { id, address: `${id}:50051` }, ttlMs: 3000, now: () => clock.t });
  return { a: make("a"), b: make("b") };
}

describe("the leader lease", () => {
  test("one replica leads; the other takes over only after the lease ran out unrenewed", async () => {
    const clock = { t: 0 };
    const store = new MemoryKeyValueStore();
    const { a, b } = replicas(store, clock);
    await a.renew();
    await b.renew();
    assert.equal(a.isLeader(), true);
    assert.equal(b.isLeader(), false);
    assert.deepEqual(b.leader(), { id: "a", address: "a:50051" });
    // a renews on time: b never takes over.
    for (let i = 0; i < 5; i++) {
      clock.t += 1000;
      await a.renew();
      await b.renew();
      assert.equal(b.isLeader(), false);
    }
    // a stops renewing (dead): b takes over once the key has been still for a whole TTL.
    clock.t += 2000;
    await b.renew();
    assert.equal(b.isLeader(), false, "not before the TTL");
    clock.t += 1000;
    await b.renew();
    assert.equal(b.isLeader(), true);
    assert.equal(a.isLeader(), false, "a's own clock says its lease ran out too");
    await a.renew();
    assert.equal(a.isLeader(), false);
    assert.deepEqual(a.leader(), { id: "b", address: "b:50051" });
  });

  test("a paused leader is fenced: after another took over, its next write is refused", async () => {
    const clock = { t: 0 };
    const store = new MemoryKeyValueStore();
    const { a, b } = replicas(store, clock);
    await a.renew();
    await a.fence();
    const token = a.fencingToken();
    // a is paused; b sees the key still for a TTL and takes it.
    await b.renew();
    clock.t += 3000;
    await b.renew();
    assert.equal(b.isLeader(), true);
    assert.ok((b.fencingToken() ?? 0) > (token ?? 0), "the new token is higher");
    await assert.rejects(a.fence(), NotLeaderError);
    // Even if a's clock had not noticed the pause, the store's revision fences it.
    const c = new Lease({ store, self: { id: "c", address: "" }, ttlMs: 3000, now: () => 0 });
    await assert.rejects(c.fence(), NotLeaderError);
  });

  test("a deposed leader's publish is refused by the store, even when its own clock says it leads", async () => {
    const clock = { t: 0 };
    const store = new MemoryKeyValueStore();
    const { b } = replicas(store, clock);
    // a's clock stands still: paused, it has not noticed that its lease ran out.
    const a = new Lease({
      store,
      self: { id: "a", address: "a:50051" },
      ttlMs: 3000,
      now: () => 0,
    });
    await a.renew();
    await a.publish("1".repeat(40));
    await b.renew();
    assert.equal(await b.servedCommit(), "1".repeat(40), "followers read the served commit");
    clock.t += 3000;
    await b.renew();
    assert.equal(b.isLeader(), true);
    assert.equal(await b.servedCommit(), "1".repeat(40), "carried over by the takeover");
    await b.publish("2".repeat(40));
    // a wakes up: its local check passes, the store's compare-and-set does not.
    assert.equal(a.isLeader(), true, "a's own clock still says it leads");
    await assert.rejects(a.publish("3".repeat(40)), NotLeaderError);
    assert.equal(a.isLeader(), false, "refused, it follows");
    assert.equal(await a.servedCommit(), "2".repeat(40));
    const entry = await store.get("repo-sync.leader");
    assert.equal(entry?.revision, b.fencingToken(), "the key is b's last write");
  });

  test("closing gives the lease up: a follower leads at its next renewal, without waiting", async () => {
    const clock = { t: 0 };
    const store = new MemoryKeyValueStore();
    const { a, b } = replicas(store, clock);
    await a.renew();
    await b.renew();
    await a.publish("1".repeat(40));
    await a.close();
    assert.equal(await b.servedCommit(), "1".repeat(40), "the served commit outlives the release");
    assert.equal(b.leader(), undefined, "a released lease names no leader to forward to");
    await b.renew();
    assert.equal(b.isLeader(), true);
    assert.equal(await b.servedCommit(), "1".repeat(40));
  });
});

describe("two repo-sync replicas on one shared volume", () => {
  let dir: string;
  let remote: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "odin-lease-"));
    remote = join(dir, "remote.git");
    const seed = join(dir, "seed");
    git(dir, "init", "-q", "--bare", "--initial-branch=main", remote);
    git(dir, "clone", "-q", remote, seed);
    execFileSync("mkdir", ["-p", join(seed, "p")]);
    execFileSync("cp", ["/dev/null", join(seed, "p", "README")]);
    git(seed, "add", "-A");
    git(seed, "commit", "-qm", "seed");
    git(seed, "push", "-q", "origin", "HEAD:main");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the follower serves reads and checkouts, refuses writes; a paused leader cannot push after losing the lease", async () => {
    const clock = { t: 0 };
    const store = new MemoryKeyValueStore();
    const { a, b } = replicas(store, clock);
    await a.renew();
    await b.renew();
    const root = join(dir, "root");
    const leader = await PipelineRepository.open({ remote, rootPath: root, lease: a });
    const follower = await PipelineRepository.open({ remote, rootPath: root, lease: b });
    const first = await leader.push({
      pipeline: "one",
      files: [{ path: "main.yml", content: pipeline("one") }],
      replace: true,
      requestId: "r1",
      author: { name: "alice", email: "alice@example.com" },
    });
    assert.equal(first.changed, true);
    // The follower serves what the leader serves, from the shared volume.
    const listed = await follower.listFiles(undefined, "one");
    assert.equal(listed.commit, first.commit);
    assert.deepEqual(
      listed.files.map((f) => f.path),
      ["one/main.yml"],
    );
    const checkout = await follower.acquireCheckout(undefined, "run-1");
    assert.equal(checkout.commit, first.commit);
    assert.match(await readFile(join(checkout.path, "one", "main.yml"), "utf8"), /name: one/);
    await assert.rejects(follower.sync(), NotLeadingError);
    await assert.rejects(
      follower.push({
        pipeline: "two",
        files: [{ path: "main.yml", content: pipeline("two") }],
        replace: true,
        requestId: "r2",
        author: { name: "bob", email: "bob@example.com" },
      }),
      NotLeadingError,
    );
    // The leader is paused past its lease; the follower takes over. When the old leader wakes
    // up and tries to push, the fence stops it before anything reaches the remote.
    clock.t += 3000;
    await b.renew();
    assert.equal(b.isLeader(), true);
    const head = git(dir, "--git-dir", remote, "rev-parse", "main");
    await assert.rejects(
      leader.push({
        pipeline: "late",
        files: [{ path: "main.yml", content: pipeline("late") }],
        replace: true,
        requestId: "r3",
        author: { name: "carol", email: "carol@example.com" },
      }),
      (err: unknown) => err instanceof NotLeadingError || err instanceof NotLeaderError,
    );
    assert.equal(git(dir, "--git-dir", remote, "rev-parse", "main"), head, "nothing pushed");
    // The new leader writes.
    const second = await follower.push({
      pipeline: "two",
      files: [{ path: "main.yml", content: pipeline("two") }],
      replace: true,
      requestId: "r2",
      author: { name: "bob", email: "bob@example.com" },
    });
    assert.equal(second.changed, true);
    assert.equal(git(dir, "--git-dir", remote, "rev-parse", "main"), second.commit);
    // The checkout run-1 holds survives the new leader's pruning.
    assert.ok(await lstat(checkout.path));
    leader.close();
    follower.close();
  });

  test("a leader paused between its check and its switch of the served commit cannot switch it after losing the lease", async () => {
    const clock = { t: 0 };
    const store = new MemoryKeyValueStore();
    // a's clock stands still while it is paused; b's moves on.
    const a = new Lease({
      store,
      self: { id: "a", address: "a:50051" },
      ttlMs: 3000,
      now: () => 0,
    });
    const b = new Lease({
      store,
      self: { id: "b", address: "b:50051" },
      ttlMs: 3000,
      now: () => clock.t,
    });
    await a.renew();
    await b.renew();
    let resume: () => void = () => undefined;
    let paused: Promise<void> = Promise.resolve();
    let reached: () => void = () => undefined;
    const atPause = new Promise<void>((r) => (reached = r));
    // a's lease as its repository sees it: the check passes, then the process stands still.
    const pausedLease = {
      isLeader: () => a.isLeader(),
      fence: () => a.fence(),
      servedCommit: () => a.servedCommit(),
      publish: async (commit: string) => {
        await a.fence();
        reached();
        await paused;
        await a.publish(commit);
      },
    };
    const root = join(dir, "root-paused");
    const leader = await PipelineRepository.open({ remote, rootPath: root, lease: pausedLease });
    const follower = await PipelineRepository.open({ remote, rootPath: root, lease: b });
    const seedHead = leader.currentCommit();
    assert.notEqual(seedHead, "");
    paused = new Promise<void>((r) => (resume = r));
    const late = leader.sync();
    await atPause;
    // While a stands still, b sees the key unchanged for a TTL, takes the lease over and serves
    // a new commit.
    await b.renew();
    clock.t += 3000;
    await b.renew();
    assert.equal(b.isLeader(), true);
    const pushed = await follower.push({
      pipeline: "newer",
      files: [{ path: "main.yml", content: pipeline("newer") }],
      replace: true,
      requestId: "r-newer",
      author: { name: "bob", email: "bob@example.com" },
    });
    assert.equal(follower.currentCommit(), pushed.commit);
    // a wakes up and goes on with its sync: the switch to the commit it fetched is refused.
    resume();
    await assert.rejects(late, /lost its lease/);
    assert.equal(await b.servedCommit(), pushed.commit, "the store still serves b's commit");
    assert.equal(
      await readlink(join(root, "current")),
      `commits/${pushed.commit}`,
      "the current link was not switched back",
    );
    // a follows now, and serves what b serves.
    await leader.refresh();
    assert.equal(leader.currentCommit(), pushed.commit);
    leader.close();
    follower.close();
  });
});
