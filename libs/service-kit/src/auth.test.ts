// Tokens file parsing and token checks: plain and sha256 entries, roles, and messages that never
// quote a token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  authorize,
  generateToken,
  hashToken,
  loadTokensFile,
  parseTokensFile,
  roleAtLeast,
  TokensFileError,
  TokenStore,
} from "./auth.js";

const ALICE = "alice-token-8c1e7d0f2b";

/** The error `fn` throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail("expected an error");
}
const CI = "ci-token-47aa90e3d1";

test("plain and sha256 entries authenticate to their subject and role", () => {
  const store = parseTokensFile(
    JSON.stringify({
      tokens: [
        { token: ALICE, subject: "alice", role: "admin" },
        { token: hashToken(CI), subject: "ci", role: "operator" },
      ],
    }),
    "tokens.json",
  );
  assert.equal(store.size, 2);
  assert.deepEqual(store.authenticate(ALICE), { subject: "alice", role: "admin" });
  assert.deepEqual(store.authenticate(CI), { subject: "ci", role: "operator" });
  assert.equal(store.authenticate(hashToken(CI)), undefined, "the hash itself is not a token");
  assert.equal(store.authenticate("alice-token-8c1e7d0f2"), undefined);
  assert.equal(store.authenticate(""), undefined);
});

test("hashToken is sha256:<hex>, uppercase hex in the file works too", () => {
  assert.equal(
    hashToken("foo"),
    "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
  );
  const store = TokenStore.fromEntries([
    {
      token: hashToken(CI).toUpperCase().replace("SHA256", "sha256"),
      subject: "ci",
      role: "viewer",
    },
  ]);
  assert.deepEqual(store.authenticate(CI), { subject: "ci", role: "viewer" });
  assert.match(generateToken(), /^[A-Za-z0-9_-]{43}$/);
});

test("every problem of a tokens file is reported, one line each, without quoting a token", () => {
  const text = JSON.stringify({
    tokens: [
      { token: ALICE, subject: "alice", role: "superuser" },
      { token: "sha256:abc", subject: "bob", role: "viewer" },
      { token: CI, subject: "", role: "viewer" },
      { token: ALICE, subject: "mallory", role: "viewer" },
      { token: "has space", subject: "x", role: "viewer" },
    ],
  });
  const err = thrown(() => parseTokensFile(text, "/etc/odin/tokens.json"));
  assert.ok(err instanceof TokensFileError);
  const message = err.message;
  const lines = message.split("\n");
  assert.equal(lines.length, 5, message);
  assert.match(
    lines[0]!,
    /tokens\[0\]\.role: "superuser" is not a role; use viewer, operator or admin/,
  );
  assert.match(lines[1]!, /tokens\[1\]\.token: a sha256: entry needs exactly 64 hex digits/);
  assert.match(lines[2]!, /tokens\[2\]\.subject: missing/);
  assert.match(lines[3]!, /tokens\[3\]\.token: same token as tokens\[0\]/);
  assert.match(lines[4]!, /tokens\[4\]\.token: contains whitespace/);
  for (const line of lines) assert.match(line, /^\/etc\/odin\/tokens\.json: /);
  for (const secret of [ALICE, CI, "has space"]) assert.ok(!message.includes(secret));
});

test("a tokens file that is not JSON is refused without echoing its content", () => {
  const err = thrown(() => parseTokensFile(`tokens: [${ALICE}]`, "t.yaml"));
  assert.match(err.message, /^t\.yaml: not valid JSON/);
  assert.ok(!err.message.includes(ALICE));
  assert.throws(() => parseTokensFile("[]", "t.json"), /expected an object with a "tokens" list/);
});

test("loadTokensFile reads a file and names it when it cannot", async () => {
  const dir = mkdtempSync(join(tmpdir(), "odin-tokens-"));
  try {
    const path = join(dir, "tokens.json");
    writeFileSync(path, JSON.stringify({ tokens: [{ token: CI, subject: "ci", role: "viewer" }] }));
    assert.equal((await loadTokensFile(path)).size, 1);
    await assert.rejects(
      loadTokensFile(join(dir, "missing.json")),
      /missing\.json: cannot read the tokens file \(ENOENT\)/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("roles are ordered viewer < operator < admin", () => {
  assert.ok(roleAtLeast("admin", "operator"));
  assert.ok(roleAtLeast("operator", "operator"));
  assert.ok(!roleAtLeast("viewer", "operator"));
  assert.ok(!roleAtLeast("operator", "admin"));
});

test("authorize explains what is wrong and how to fix it", () => {
  const store = TokenStore.fromEntries([{ token: CI, subject: "ci", role: "viewer" }]);
  const missing = authorize(store, [], "RepoSyncService/Push", "operator");
  assert.ok(!missing.ok && missing.reason === "unauthenticated");
  assert.match(
    missing.message,
    /missing bearer token: pass a token with --token or the ODIN_TOKEN/,
  );
  const twice = authorize(
    store,
    [`Bearer ${CI}`, `Bearer ${CI}`],
    "RepoSyncService/Push",
    "viewer",
  );
  assert.ok(!twice.ok && twice.reason === "unauthenticated");
  const lowercase = authorize(store, [`bearer ${CI}`], "RepoSyncService/Push", "viewer");
  assert.ok(lowercase.ok);
  const weak = authorize(store, [`Bearer ${CI}`], "RepoSyncService/Push", "operator");
  assert.ok(!weak.ok && weak.reason === "permission-denied");
  assert.equal(weak.message, "RepoSyncService/Push needs role operator; ci has role viewer");
});
