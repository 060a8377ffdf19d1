// deploy/Dockerfile read statically (no container engine here): a build stage that installs and
// builds every package, a runtime stage that runs as a fixed non-root user, from /app, with node
// as the entrypoint and git + ssh for repo-sync — and the manifests agree with it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { appOf, checkDocuments } from "./checks.js";
import { Rendered } from "./model.js";
import { deployDir, odinNamespace, overlays, renderOverlay, repoRoot } from "./render.js";

/** One instruction: keyword and its arguments (continuation lines joined, comments dropped). */
interface Instruction {
  keyword: string;
  args: string;
}

/** The stages of a Dockerfile, each with its `FROM` arguments and instructions. */
export function parseDockerfile(text: string): { from: string; instructions: Instruction[] }[] {
  const logical: string[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    if (/^\s*#/.test(raw)) continue; // comments, also inside continued instructions
    const continued = /\\\s*$/.test(raw);
    current += (current ? " " : "") + raw.replace(/\\\s*$/, "").trim();
    if (!continued) {
      if (current.trim()) logical.push(current.trim());
      current = "";
    }
  }
  if (current.trim()) logical.push(current.trim());
  const stages: { from: string; instructions: Instruction[] }[] = [];
  for (const line of logical) {
    const m = /^(\w+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const instruction = { keyword: (m[1] ?? "").toUpperCase(), args: m[2] ?? "" };
    if (instruction.keyword === "FROM") stages.push({ from: instruction.args, instructions: [] });
    else stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

const dockerfile = readFileSync(join(deployDir, "Dockerfile"), "utf8");
const stages = parseDockerfile(dockerfile);
const runtime = stages.at(-1);
const last = (keyword: string) => runtime?.instructions.filter((i) => i.keyword === keyword).at(-1);

test("the image runs as a fixed, non-root UID that the pods' runAsUser matches", () => {
  const user = last("USER")?.args;
  assert.ok(user, "the runtime stage sets USER");
  const [uid] = user.split(":");
  assert.match(uid ?? "", /^\d+$/, "a numeric UID, so the kubelet can verify runAsNonRoot");
  assert.notEqual(Number(uid), 0);
  for (const overlay of overlays) {
    const r = new Rendered(checkDocuments(renderOverlay(overlay), odinNamespace).objects);
    for (const w of r.workloads()) {
      const pod = w.spec.template.spec;
      if (!pod.containers.some((c) => appOf(c) !== undefined)) continue;
      assert.equal(pod.securityContext?.runAsUser, Number(uid), `${overlay} ${w.metadata.name}`);
    }
  }
});

test("the runtime stage: WORKDIR /app, node as entrypoint, git and openssh-client installed, the build's output copied", () => {
  assert.ok(runtime);
  assert.equal(last("WORKDIR")?.args, "/app");
  const entrypoint = JSON.parse(last("ENTRYPOINT")?.args ?? "[]") as string[];
  assert.equal(
    entrypoint.at(-1),
    "node",
    `ENTRYPOINT ${JSON.stringify(entrypoint)} ends with node`,
  );
  const runs = runtime.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
  assert.ok(runs.some((r) => /apt-get install.*\bgit\b/.test(r) && /\bopenssh-client\b/.test(r)));
  const buildStage = stages.find((s) => /\bAS\s+build$/i.test(s.from));
  assert.ok(buildStage, "a stage named build");
  assert.ok(
    runtime.instructions.some((i) => i.keyword === "COPY" && /--from=build\b/.test(i.args)),
  );
  assert.notEqual(stages.indexOf(buildStage), stages.length - 1);
});

test("the build stage installs from the lockfile, builds every package and keeps production dependencies and each app's dist/", () => {
  const build = stages.find((s) => /\bAS\s+build$/i.test(s.from));
  const runs = (build?.instructions ?? []).filter((i) => i.keyword === "RUN").map((i) => i.args);
  assert.ok(runs.some((r) => /\bnpm ci\b/.test(r)));
  assert.ok(runs.some((r) => /\bnx run-many -t build\b/.test(r)));
  assert.ok(runs.some((r) => /\bnpm prune --omit=dev\b/.test(r)));
  assert.ok(
    runs.some((r) => /apps\/\*/.test(r) && /\bdist\b/.test(r)),
    "copies apps/*/dist",
  );
  // A dist/ reads the contracts' descriptor set at run time (server reflection).
  assert.ok(runs.some((r) => r.includes("libs/proto/descriptors.binpb")));
});

test(".dockerignore keeps installed and built files out of the build context", () => {
  const ignored = readFileSync(join(repoRoot, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim());
  for (const pattern of ["**/node_modules", "**/dist", ".git"])
    assert.ok(ignored.includes(pattern), `.dockerignore has ${pattern}`);
});

test("parseDockerfile joins continued lines and drops comments", () => {
  const parsed = parseDockerfile(
    "FROM a AS build\nRUN one \\\n  # note\n  two\nFROM b\nUSER 1:1\n",
  );
  assert.deepEqual(parsed, [
    { from: "a AS build", instructions: [{ keyword: "RUN", args: "one two" }] },
    { from: "b", instructions: [{ keyword: "USER", args: "1:1" }] },
  ]);
});
