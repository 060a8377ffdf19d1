// odin data (a run's files under RUN_PATH) and odin gpus (the cluster's GPU inventory): both
// answered by k8s-launcher, the service that mounts the data volume and watches the cluster.
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, isAbsolute, join, posix } from "node:path";
import { K8sLauncherServiceService as Launcher, k8slauncher } from "@odin/proto";
import { connect } from "../connection.js";
import { CommandError, ExitCode } from "../exit.js";
import { printData, table } from "../output.js";
import type { RunCommandOptions } from "./runs.js";

const typeName = (t: k8slauncher.RunFileType): string =>
  k8slauncher.runFileTypeToJSON(t).replace("RUN_FILE_TYPE_", "").toLowerCase();

function fileJson(f: k8slauncher.RunFile): Record<string, unknown> {
  return {
    path: f.path,
    type: typeName(f.type),
    size: Number(f.size),
    modifyTime: f.modifyTime?.toISOString(),
  };
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** Options of `odin data`. */
export interface DataCommandOptions extends RunCommandOptions {
  recursive?: boolean;
  download?: boolean;
  to?: string;
  maxBytes?: number;
}

/** `odin data RUN [PATH]`: lists a run's files, or downloads them with `--download`. */
export async function dataCommand(
  runId: string,
  path: string | undefined,
  options: DataCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    if (options.download) return await download(channel, runId, path ?? "", options, out);
    const res = await channel.unary(Launcher.listRunFiles, {
      runId,
      path: path ?? "",
      recursive: options.recursive ?? false,
    });
    if (options.output !== "text") {
      await printData(out, options.output, {
        runPath: res.runPath,
        files: res.files.map(fileJson),
        truncated: res.truncated,
      });
      return ExitCode.ok;
    }
    if (res.files.length === 0) {
      out.write(`${path || "RUN_PATH"} of run ${runId} is empty (${res.runPath})\n`);
      return ExitCode.ok;
    }
    out.write(
      table(
        ["PATH", "TYPE", "SIZE", "MODIFIED"],
        res.files.map((f) => [
          f.type === k8slauncher.RunFileType.RUN_FILE_TYPE_DIRECTORY ? `${f.path}/` : f.path,
          typeName(f.type),
          f.type === k8slauncher.RunFileType.RUN_FILE_TYPE_FILE ? bytes(Number(f.size)) : "-",
          f.modifyTime?.toISOString().slice(0, 19).replace("T", " ") ?? "-",
        ]),
      ),
    );
    if (res.truncated) out.write(`(more entries not shown; list a subdirectory)\n`);
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}

/**
 * Downloads into `--to DIR` (default `.`), each file at its path relative to the parent of the
 * path asked for (`train` → `DIR/train/…`; the whole RUN_PATH → `DIR/<run>/…`); `--to -` writes a
 * single file to stdout.
 */
async function download(
  channel: ReturnType<typeof connect>,
  runId: string,
  path: string,
  options: DataCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const toStdout = options.to === "-";
  const dest = options.to ?? ".";
  const asked = posix.normalize(path.replace(/\\/g, "/")).replace(/^\.\/?$/, "");
  const base = asked === "" ? "" : posix.dirname(asked) === "." ? "" : posix.dirname(asked);
  let current: WriteStream | NodeJS.WritableStream | undefined;
  let count = 0;
  let total = 0;
  const written: string[] = [];
  const finish = async () => {
    if (current && current !== out) {
      const stream = current as WriteStream;
      await new Promise<void>((resolve, reject) => stream.end(() => resolve()).on("error", reject));
    }
  };
  for await (const msg of channel.stream(Launcher.downloadRunFiles, {
    runId,
    path,
    maxBytes: BigInt(options.maxBytes ?? 0),
  })) {
    if (msg.file) {
      await finish();
      count++;
      if (toStdout) {
        if (count > 1)
          throw new CommandError(
            `${path || "RUN_PATH"} is a directory; --to - writes one file (use --to DIR)`,
            ExitCode.usage,
          );
        current = out;
      } else {
        // The server's paths are checked again here: nothing is written outside --to.
        const rel = asked === "" ? posix.join(runId, msg.file.path) : msg.file.path;
        const local = base ? posix.relative(base, rel) : rel;
        if (isAbsolute(local) || local.split("/").includes("..") || local === "")
          throw new CommandError(`refusing to write ${JSON.stringify(msg.file.path)}`);
        const target = join(dest, ...local.split("/"));
        await mkdir(dirname(target), { recursive: true });
        current = createWriteStream(target);
        written.push(target);
      }
    }
    if (msg.data.length > 0 && current) {
      total += msg.data.length;
      const stream = current as NodeJS.WritableStream;
      if (!stream.write(msg.data)) await new Promise((r) => stream.once("drain", r));
    }
  }
  await finish();
  if (!toStdout) {
    if (options.output !== "text")
      await printData(out, options.output, { files: written, bytes: total });
    else
      out.write(
        `downloaded ${count} file${count === 1 ? "" : "s"} (${bytes(total)}) into ${dest}\n`,
      );
  }
  return ExitCode.ok;
}

/** `odin gpus`: the cluster's nodes with GPUs, allocated and free, and the Odin tasks on them. */
export async function gpusCommand(
  options: RunCommandOptions & { all?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  const channel = connect(options);
  try {
    const res = await channel.unary(Launcher.listGpuNodes, { allNodes: options.all ?? false });
    if (options.output !== "text") {
      await printData(out, options.output, k8slauncher.ListGpuNodesResponse.toJSON(res));
      return ExitCode.ok;
    }
    if (res.note) {
      out.write(`no GPUs: ${res.note}\n`);
      return ExitCode.ok;
    }
    if (res.nodes.length === 0) {
      out.write("no node of the cluster has GPU capacity (nvidia.com/gpu)\n");
      return ExitCode.ok;
    }
    out.write(
      table(
        ["NODE", "GPU", "TYPE", "ALLOCATABLE", "ALLOCATED", "FREE", "STATUS", "ODIN TASKS"],
        res.nodes.map((n) => [
          n.name,
          String(n.capacity),
          n.gpuType || "-",
          String(n.allocatable),
          String(n.allocated),
          String(n.free),
          `${n.ready ? "Ready" : "NotReady"}${n.unschedulable ? ",Cordoned" : ""}`,
          n.tasks.map((t) => `${t.runId}--${t.task}(${t.gpus})`).join(" ") || "-",
        ]),
      ),
    );
    return ExitCode.ok;
  } finally {
    channel.close();
  }
}
