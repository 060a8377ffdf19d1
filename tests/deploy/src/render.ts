// Rendering deploy/'s kustomize overlays with kubectl and reading the result as plain objects.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import jsyaml from "js-yaml";

/** The repository root (this file is in tests/deploy/dist/). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** deploy/ in the repository. */
export const deployDir = join(repoRoot, "deploy");

/** The overlays every check runs on. */
export const overlays = ["dev", "prod"] as const;

/** One of {@link overlays}. */
export type Overlay = (typeof overlays)[number];

/** The namespace every overlay puts Odin in. */
export const odinNamespace = "odin";

/** A rendered Kubernetes object, as parsed from YAML. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** The kubectl to render with: `KUBECTL` when set, else the one on PATH. */
export function kubectlBinary(): string {
  return process.env.KUBECTL || "kubectl";
}

/** Thrown when kubectl cannot be run at all (as opposed to a kustomization it refuses). */
export class KubectlMissingError extends Error {
  override readonly name = "KubectlMissingError";
}

/**
 * `kubectl kustomize <dir>` → its YAML. Fails with a message saying how to install kubectl when
 * it is missing: these tests never skip.
 */
export function kustomize(dir: string): string {
  const kubectl = kubectlBinary();
  try {
    return execFileSync(kubectl, ["kustomize", dir], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new KubectlMissingError(
        `cannot render ${dir}: ${kubectl} not found. Install kubectl (Debian: apt-get install -y kubernetes-client; .ci/run does it) or set KUBECTL to its path.`,
        { cause: err },
      );
    }
    throw new Error(`${kubectl} kustomize ${dir} failed:\n${e.stderr ?? String(err)}`, {
      cause: err,
    });
  }
}

/** Parses a multi-document YAML stream; every non-empty document must be a mapping. */
export function parseDocuments(yamlText: string, source: string): unknown[] {
  let docs: unknown[];
  try {
    docs = jsyaml.loadAll(yamlText);
  } catch (err) {
    throw new Error(`${source}: not valid YAML: ${err instanceof Error ? err.message : ""}`, {
      cause: err,
    });
  }
  return docs.filter((d) => d !== null && d !== undefined);
}

/** Renders one overlay and parses it. */
export function renderOverlay(overlay: string): unknown[] {
  const dir = join(deployDir, "overlays", overlay);
  return parseDocuments(kustomize(dir), `kubectl kustomize deploy/overlays/${overlay}`);
}
