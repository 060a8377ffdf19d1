// `odin kube-sim [--port N]`: runs a simulator in the foreground for manual use, writing a
// kubeconfig into a fresh temp dir (and nowhere else) and removing it on exit.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type ScriptRule, parseScriptAnnotation } from "./scripts.js";
import { type KubeSimOptions, startKubeSim } from "./server.js";

/** Where `runKubeSimCli` writes and how it is stopped (defaults: process streams and signals). */
export interface KubeSimCliIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Stops the simulator when aborted (in addition to SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Called once the simulator listens, with its URL and kubeconfig path. */
  onReady?: (info: { url: string; kubeconfigPath: string }) => void;
}

/** `NAME=N[:PRODUCT]` of `--gpu-node`. */
export function parseGpuNode(text: string): { name: string; gpus: number; product?: string } {
  const m = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)=(\d+)(?::(\S+))?$/.exec(text);
  if (!m)
    throw new Error(`--gpu-node must be NAME=N[:PRODUCT] (a DNS name, a GPU count), got "${text}"`);
  return { name: m[1]!, gpus: Number(m[3]), ...(m[4] ? { product: m[4] } : {}) };
}

const USAGE = `Usage: odin kube-sim [options]

Runs kube-sim, a Kubernetes API simulator, until interrupted (Ctrl-C).

Options:
  --port N            port to listen on (default: a free port)
  --host ADDR         address to listen on (default 127.0.0.1)
  --token T           require "Authorization: Bearer T" (default: accept any)
  --run-ms A[-B]      run time of unscripted pods in ms, fixed or a range (default 0-20)
  --start-ms N        time from scheduling to Running in ms (default 0)
  --script GLOB=JSON  script pods whose image matches GLOB, e.g. '*fail*={"exitCode":3}'
                      (repeatable; same JSON as the kube-sim/script annotation)
  --gpu-node NAME=N[:PRODUCT]
                      a node with N GPUs (nvidia.com/gpu), e.g. gpu-1=8:NVIDIA-A100-SXM4-80GB
                      (repeatable); GPU pods go to the first with enough free
  -h, --help          show this help
`;

function parseRunMs(text: string): number | [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (m?.[1] === undefined) throw new Error(`--run-ms must be N or A-B, got "${text}"`);
  const a = Number(m[1]);
  return m[2] === undefined ? a : [a, Math.max(a, Number(m[2]))];
}

function parseScriptOption(text: string): ScriptRule {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new Error(`--script must be GLOB=JSON, got "${text}"`);
  try {
    return { image: text.slice(0, eq), ...parseScriptAnnotation(text.slice(eq + 1)) };
  } catch (error) {
    throw new Error(`--script ${text.slice(0, eq)}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Runs kube-sim from command-line arguments until SIGINT/SIGTERM (or `io.signal`); resolves
 * with the process exit code.
 */
export async function runKubeSimCli(
  argv: readonly string[],
  io: KubeSimCliIo = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const options: KubeSimOptions = {};
  const rules: ScriptRule[] = [];
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: "string" },
        host: { type: "string" },
        token: { type: "string" },
        "run-ms": { type: "string" },
        "start-ms": { type: "string" },
        script: { type: "string", multiple: true },
        "gpu-node": { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help === true) {
      stdout.write(USAGE);
      return 0;
    }
    if (values.port !== undefined) {
      const port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new Error(`--port must be 0-65535, got "${values.port}"`);
      options.port = port;
    }
    if (values.host !== undefined) options.host = values.host;
    if (values.token !== undefined) options.token = values.token;
    if (values["run-ms"] !== undefined) options.defaultRunMs = parseRunMs(values["run-ms"]);
    if (values["start-ms"] !== undefined) {
      const ms = Number(values["start-ms"]);
      if (!Number.isInteger(ms) || ms < 0)
        throw new Error(`--start-ms must be a non-negative integer`);
      options.defaultStartMs = ms;
    }
    for (const s of values.script ?? []) rules.push(parseScriptOption(s));
    const gpuNodes = (values["gpu-node"] ?? []).map(parseGpuNode);
    if (gpuNodes.length > 0) options.gpuNodes = gpuNodes;
  } catch (error) {
    stderr.write(`kube-sim: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }

  let sim;
  try {
    sim = await startKubeSim(options);
  } catch (error) {
    stderr.write(`kube-sim: cannot listen: ${(error as Error).message}\n`);
    return 1;
  }
  for (const rule of rules) sim.script(rule);
  const dir = await mkdtemp(join(tmpdir(), "kube-sim-"));
  const kubeconfigPath = join(dir, "kubeconfig");
  await writeFile(kubeconfigPath, `${sim.kubeConfig().exportConfig()}\n`, { mode: 0o600 });
  stdout.write(
    [
      `kube-sim listening on ${sim.url}`,
      `kubeconfig: ${kubeconfigPath}`,
      ``,
      `  export KUBECONFIG=${kubeconfigPath}`,
      `  curl -s ${sim.url}/api/v1/pods            # what has been created`,
      ``,
      `Press Ctrl-C to stop.`,
      ``,
    ].join("\n"),
  );
  io.onReady?.({ url: sim.url, kubeconfigPath });

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      io.signal?.removeEventListener("abort", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    if (io.signal?.aborted === true) stop();
    else io.signal?.addEventListener("abort", stop);
  });
  await sim.close();
  await rm(dir, { recursive: true, force: true });
  stdout.write("kube-sim stopped\n");
  return 0;
}
