// Benchmark: a repository with 1,000 pipelines; ListPipelines (list + parse + validate all) over
// gRPC right after a sync (cold: nothing cached) and again (warm: cached per commit). Prints JSON.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PipelineCatalog, pipelineRegistryService, RepoSyncFileSource } from "@odin/registry";
import { PipelineRegistryServiceClient, RepoSyncServiceClient } from "@odin/proto";
import { PipelineRepository, repoSyncService } from "@odin/repository";
import { createClient, silentLogger, startServer, unary } from "@odin/service-kit";

const pipelines = Number(process.env.BENCH_PIPELINES ?? 1000);
const warmRuns = Number(process.env.BENCH_RUNS ?? 20);

function pipelineYaml(i: number): string {
  const tasks: string[] = [];
  const n = 3 + (i % 8);
  for (let t = 0; t < n; t++) {
    tasks.push(
      `- name: step-${t}\n  image: registry.example/mead:1.${i % 5}\n  command: mead-train\n` +
        `  args: ["--basedir", "\${RUN_PATH}/\${TASK_ID}", "--config", "\${WORK_PATH}/conf.yml"]\n` +
        (t > 0 ? `  depends: [step-${t - 1}]\n` : "") +
        `  mounts: [{name: data, path: /data, claim: data-rw-many}]\n  num_gpus: ${t % 2}\n`,
    );
  }
  return `name: bench-${i}\ntasks:\n${tasks.join("")}`;
}

const dir = mkdtempSync(join(tmpdir(), "odin-bench-registry-"));
try {
  const remote = join(dir, "remote.git");
  const seed = join(dir, "seed");
  const git = (cwd: string, ...args: string[]) =>
    execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@x", ...args], {
      cwd,
      stdio: "pipe",
    });
  git(dir, "init", "-q", "--bare", "--initial-branch=main", remote);
  git(dir, "clone", "-q", remote, seed);
  for (let i = 0; i < pipelines; i++) {
    const p = join(seed, `team-${i % 20}`, `pipeline-${i}`);
    mkdirSync(p, { recursive: true });
    writeFileSync(join(p, "main.yml"), pipelineYaml(i));
    writeFileSync(join(p, "conf.yml"), `lr: 0.00${i % 9}\n`);
  }
  git(seed, "add", "-A");
  git(seed, "commit", "-qm", "pipelines");
  git(seed, "push", "-q", "origin", "HEAD:main");

  const repo = await PipelineRepository.open({ remote, rootPath: join(dir, "root") });
  const repoServer = await startServer({
    name: "repo-sync",
    port: 0,
    host: "127.0.0.1",
    auth: "off",
    services: [repoSyncService(repo)],
    logger: silentLogger,
  });
  const repoClient = createClient(RepoSyncServiceClient, { address: repoServer.address });
  const catalog = new PipelineCatalog(new RepoSyncFileSource(repoClient));
  const registryServer = await startServer({
    name: "pipeline-registry",
    port: 0,
    host: "127.0.0.1",
    auth: "off",
    services: [pipelineRegistryService(catalog)],
    logger: silentLogger,
  });
  const client = createClient(PipelineRegistryServiceClient, { address: registryServer.address });

  const syncStart = performance.now();
  await unary(repoClient, "sync", {});
  const syncMs = performance.now() - syncStart;
  const coldStart = performance.now();
  const cold = await unary(client, "listPipelines", { commit: "", pathPrefix: "" });
  const coldMs = performance.now() - coldStart;
  if (cold.pipelines.length !== pipelines || !cold.pipelines.every((p) => p.valid))
    throw new Error("unexpected listing");
  const warm: number[] = [];
  for (let i = 0; i < warmRuns; i++) {
    const t = performance.now();
    const res = await unary(client, "listPipelines", { commit: "", pathPrefix: "" });
    warm.push(performance.now() - t);
    if (res.pipelines.length !== pipelines) throw new Error("unexpected listing");
  }
  warm.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  process.stdout.write(
    JSON.stringify(
      {
        benchmark:
          "pipeline-registry: ListPipelines over gRPC (list + parse + validate every pipeline)",
        pipelines,
        tasks: cold.pipelines.reduce((n, p) => n + p.taskCount, 0),
        syncMs: round(syncMs),
        coldMs: round(coldMs),
        warmMs: {
          min: round(warm[0]!),
          median: round(warm[Math.floor(warm.length / 2)]!),
          max: round(warm[warm.length - 1]!),
        },
        target: { coldMs: 2000, warmMs: 50 },
      },
      null,
      2,
    ) + "\n",
  );
  client.close();
  repoClient.close();
  await registryServer.close(0);
  await repoServer.close(0);
  repo.close();
} finally {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
