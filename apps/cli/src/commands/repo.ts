// odin ls, odin show, odin push, odin sync: the pipelines repository over gRPC.
import { randomUUID } from "node:crypto";
import { lstat, readdir, readFile } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { formatProblem, loadPipeline, TaskGraph, type Pipeline } from "@odin/pipeline-spec";
import {
  PipelineRegistryServiceService as Registry,
  pipelineFromProto,
  problemFromProto,
  RepoSyncServiceService as RepoSync,
} from "@odin/proto";
import { problemsOf } from "@odin/service-kit";
import { connect, type ConnectionOptions } from "../connection.js";
import { printData, shortCommit, table, type OutputFormat } from "../output.js";

/** Options every repository command takes. */
export interface RepoCommandOptions extends ConnectionOptions {
  output: OutputFormat;
}

/** `odin ls [PREFIX]`: the pipelines of the newest commit (or `--commit`). */
export async function lsCommand(
  prefix: string | undefined,
  options: RepoCommandOptions & { commit?: string },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const res = await channel.unary(Registry.listPipelines, {
      commit: options.commit ?? "",
      pathPrefix: prefix ?? "",
    });
    if (options.output !== "text") {
      await printData(out, options.output, {
        commit: res.commit,
        pipelines: res.pipelines.map((p) => ({ ...p, problems: p.problems.map(problemFromProto) })),
      });
      return 0;
    }
    const rows = res.pipelines.map((p) => {
      const errors = p.problems.filter((x) => problemFromProto(x).severity === "error").length;
      return [
        p.path,
        p.name || "-",
        String(p.taskCount),
        p.valid ? "yes" : `no (${errors} error${errors === 1 ? "" : "s"})`,
      ];
    });
    out.write(table(["PIPELINE", "NAME", "TASKS", "VALID"], rows));
    out.write(
      `${res.pipelines.length} pipeline${res.pipelines.length === 1 ? "" : "s"} at commit ${shortCommit(res.commit)}\n`,
    );
    return 0;
  } finally {
    channel.close();
  }
}

/** How `odin show` draws the DAG. */
export type DagFormat = "text" | "dot" | "mermaid";

/** `odin show PIPELINE`: tasks, images, dependencies and the DAG. */
export async function showCommand(
  path: string,
  options: RepoCommandOptions & { commit?: string; format: DagFormat },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const res = await channel.unary(Registry.getPipeline, {
      path,
      commit: options.commit ?? "",
      tasks: [],
    });
    const problems = res.problems.map(problemFromProto);
    if (options.output !== "text") {
      await printData(out, options.output, {
        commit: res.commit,
        pipeline: res.pipeline ? pipelineFromProto(res.pipeline) : null,
        problems,
      });
      return res.pipeline ? 0 : 1;
    }
    for (const p of problems) out.write(formatProblem(p) + "\n");
    if (!res.pipeline) {
      out.write(
        `${path} at commit ${shortCommit(res.commit)} is not valid; fix the errors above\n`,
      );
      return 1;
    }
    const pipeline = pipelineFromProto(res.pipeline);
    if (options.format === "dot") out.write(dot(pipeline));
    else if (options.format === "mermaid") out.write(mermaid(pipeline));
    else out.write(describe(pipeline, res.commit));
    return 0;
  } finally {
    channel.close();
  }
}

function describe(p: Pipeline, commit: string): string {
  const graph = TaskGraph.build(p.tasks);
  const byName = new Map(p.tasks.map((t) => [t.name, t]));
  const rows = p.tasks.map((t) => [
    t.name,
    t.resourceType + (t.numWorkers > 1 ? ` ×${t.numWorkers}` : ""),
    t.image,
    t.numGpus > 0 ? String(t.numGpus) : "-",
    t.depends.join(", ") || "-",
  ]);
  let text = `pipeline ${p.path} (name ${p.name}) at commit ${shortCommit(commit)}: ${p.tasks.length} task${p.tasks.length === 1 ? "" : "s"}\n\n`;
  text += table(["TASK", "TYPE", "IMAGE", "GPUS", "DEPENDS ON"], rows);
  if (p.parameters?.length) {
    text += `\nParameters (odin run ${p.path} --set NAME=VALUE)\n`;
    text += table(
      ["NAME", "TYPE", "DEFAULT", "DESCRIPTION"],
      p.parameters.map((d) => [
        d.name,
        d.type,
        d.default === undefined ? "(required)" : JSON.stringify(d.default),
        d.description ?? "",
      ]),
    );
  }
  // The DAG by level: a task's level is one more than its deepest dependency's.
  const level = new Map<string, number>();
  for (const name of graph.topologicalNames()) {
    const deps = byName.get(name)?.depends ?? [];
    level.set(name, deps.length === 0 ? 1 : 1 + Math.max(...deps.map((d) => level.get(d) ?? 0)));
  }
  const levels = Math.max(0, ...level.values());
  text += `\nDAG (${levels} level${levels === 1 ? "" : "s"}; a task starts as soon as the tasks after ← succeed)\n`;
  for (let l = 1; l <= levels; l++) {
    for (const name of graph.topologicalNames()) {
      if (level.get(name) !== l) continue;
      const deps = byName.get(name)?.depends ?? [];
      text += `  ${String(l).padStart(2)}  ${name}${deps.length > 0 ? `  ← ${deps.join(", ")}` : ""}\n`;
    }
  }
  return text;
}

// DOT strings: quotes and backslashes escaped; `\n` between parts is Graphviz's line break.
const escapeDot = (s: string): string => s.replace(/["\\]/g, "\\$&");
const quote = (s: string): string => `"${escapeDot(s)}"`;

function dot(p: Pipeline): string {
  const lines = [`digraph ${quote(p.name)} {`, "  rankdir=LR;", "  node [shape=box];"];
  for (const t of p.tasks)
    lines.push(`  ${quote(t.name)} [label="${escapeDot(t.name)}\\n${escapeDot(t.image)}"];`);
  for (const t of p.tasks)
    for (const d of t.depends) lines.push(`  ${quote(d)} -> ${quote(t.name)};`);
  return lines.join("\n") + "\n}\n";
}

function mermaid(p: Pipeline): string {
  const id = new Map(p.tasks.map((t, i) => [t.name, `t${i}`]));
  const lines = ["graph TD"];
  for (const t of p.tasks) lines.push(`  ${id.get(t.name)}["${t.name.replace(/"/g, "#quot;")}"]`);
  for (const t of p.tasks)
    for (const d of t.depends) lines.push(`  ${id.get(d) ?? d} --> ${id.get(t.name)}`);
  return lines.join("\n") + "\n";
}

const maxPushBytes = 16 * 1024 * 1024;

/** Reads a pipeline directory for a push: regular files only, no hidden files, no links. */
async function readPipelineDir(dir: string): Promise<{ path: string; content: Buffer }[]> {
  const root = resolve(dir);
  const files: { path: string; content: Buffer }[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const e of (await readdir(at, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      if (e.name.startsWith(".")) continue;
      const full = join(at, e.name);
      const rel = relative(root, full).split(sep).join("/");
      if (e.isSymbolicLink())
        throw new Error(`${rel} is a symbolic link; odin push sends only regular files`);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile()) {
        const size = (await lstat(full)).size;
        if (size > maxPushBytes)
          throw new Error(`${rel} is ${size} bytes; the limit is ${maxPushBytes}`);
        files.push({ path: rel, content: await readFile(full) });
      }
    }
  };
  await walk(root);
  return files;
}

/** `odin push DIR`: validates the pipeline locally, then commits it to the repository. */
export async function pushCommand(
  dir: string,
  options: RepoCommandOptions & { as?: string; message?: string; fileName?: string },
  out: NodeJS.WritableStream,
): Promise<number> {
  let info;
  try {
    info = await lstat(dir);
  } catch {
    throw new Error(`${dir}: no such file or directory`);
  }
  if (info.isFile()) return pushFile(dir, options, out);
  if (!info.isDirectory())
    throw new Error(
      `${dir} is not a directory; give the pipeline's directory (the one holding main.yml)`,
    );
  const files = await readPipelineDir(dir);
  const pipeline = (options.as ?? basename(resolve(dir))).replace(/^\/+|\/+$/g, "");
  const main = files.find((f) => f.path === "main.yml");
  if (!main) throw new Error(`${dir} has no main.yml; a pipeline directory needs one`);
  const local = loadPipeline(main.content.toString("utf8"), {
    file: join(dir, "main.yml"),
    path: pipeline,
  });
  for (const p of local.problems) out.write(formatProblem(p) + "\n");
  if (!local.valid) {
    out.write(
      `not pushed: ${pipeline} is not valid; fix the errors above (odin validate ${dir})\n`,
    );
    return 1;
  }
  const channel = connect(options);
  try {
    const res = await channel.unary(RepoSync.push, {
      pipeline,
      files,
      replace: true,
      message: options.message ?? "",
      requestId: randomUUID(),
    });
    if (options.output !== "text") {
      await printData(out, options.output, {
        pipeline,
        commit: res.commit,
        changed: res.changed,
        files: files.map((f) => f.path),
      });
    } else if (res.changed) {
      out.write(
        `pushed ${pipeline} (${files.length} file${files.length === 1 ? "" : "s"}) as commit ${shortCommit(res.commit)}\n`,
      );
    } else {
      out.write(`${pipeline} is unchanged at commit ${shortCommit(res.commit)}\n`);
    }
    return 0;
  } catch (err) {
    for (const p of problemsOf(err))
      out.write(
        `${p.file ?? ""}:${p.line ?? 0}:${p.column ?? 0}: ${p.task ? `${p.task}: ` : ""}${p.message}\n`,
      );
    throw err;
  } finally {
    channel.close();
  }
}

/**
 * `odin push FILE --as PIPELINE [--file-name NAME]`: adds or replaces one file of a pipeline (the
 * original's `odin-push JOB FILE`); the pipeline's other files stay. A main.yml is validated first.
 */
async function pushFile(
  file: string,
  options: RepoCommandOptions & { as?: string; message?: string; fileName?: string },
  out: NodeJS.WritableStream,
): Promise<number> {
  if (!options.as)
    throw new Error(
      `pushing the single file ${file} needs --as PIPELINE (the pipeline directory it belongs to)`,
    );
  const name = options.fileName ?? basename(file);
  const content = await readFile(file);
  if (content.byteLength > maxPushBytes)
    throw new Error(`${file} is ${content.byteLength} bytes; the limit is ${maxPushBytes}`);
  if (name === "main.yml") {
    const local = loadPipeline(content.toString("utf8"), { file, path: options.as });
    for (const p of local.problems) out.write(formatProblem(p) + "\n");
    if (!local.valid) {
      out.write(`not pushed: ${file} is not a valid pipeline; fix the errors above\n`);
      return 1;
    }
  }
  const channel = connect(options);
  try {
    const res = await channel.unary(RepoSync.push, {
      pipeline: options.as,
      files: [{ path: name, content }],
      replace: false,
      message: options.message ?? "",
      requestId: randomUUID(),
    });
    if (options.output !== "text")
      await printData(out, options.output, {
        pipeline: options.as,
        file: name,
        commit: res.commit,
        changed: res.changed,
      });
    else
      out.write(
        res.changed
          ? `pushed ${options.as}/${name} as commit ${shortCommit(res.commit)}\n`
          : `${options.as}/${name} is unchanged\n`,
      );
    return 0;
  } finally {
    channel.close();
  }
}

/** `odin sync`: makes repo-sync fetch its remote now. */
export async function syncCommand(
  options: RepoCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const res = await channel.unary(RepoSync.sync, {});
    if (options.output !== "text") await printData(out, options.output, res);
    else if (res.changed) {
      out.write(
        `synced: now at commit ${shortCommit(res.commit)}${res.previousCommit ? ` (was ${shortCommit(res.previousCommit)})` : ""}\n`,
      );
    } else {
      out.write(`already up to date at commit ${shortCommit(res.commit)}\n`);
    }
    return 0;
  } finally {
    channel.close();
  }
}
