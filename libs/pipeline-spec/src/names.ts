import { createHash, randomBytes } from "node:crypto";

/** Longest Kubernetes object name or label value Odin produces (a DNS-1123 label). */
export const maxNameLength = 63;

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** True for a valid DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters. */
export function isDnsLabel(s: string): boolean {
  return s.length <= maxNameLength && dnsLabel.test(s);
}

/** True for a valid DNS-1123 subdomain (dot-separated labels, at most 253 characters). */
export function isDnsSubdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split(".").every((part) => dnsLabel.test(part));
}

/** True for a valid Kubernetes label value. */
export function isLabelValue(s: string): boolean {
  return s.length <= maxNameLength && labelValue.test(s);
}

/** Pattern a pipeline `name` must match (as in the original Odin). */
export const pipelineNamePattern = /^[a-z0-9][a-z0-9-.]*$/;

/** Length of the random part of a run id. */
export const runIdSuffixLength = 8;

/** Longest pipeline name that still leaves room for `-<random>` in a 63-character run id. */
export const maxPipelineNameLength = maxNameLength - 1 - runIdSuffixLength;

/** Default pipeline name when `main.yml` has none (as in the original Odin). */
export const defaultPipelineName = "flow";

const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A fresh run id (`PIPE_ID`): `<pipeline name>-<8 random lower-case alphanumerics>`. A `.` in the
 * pipeline name becomes `-`, so the id is a DNS-1123 label and a single NATS subject token.
 */
export function newRunId(
  pipelineName: string,
  random: Uint8Array = randomBytes(runIdSuffixLength),
): string {
  let suffix = "";
  for (let i = 0; i < runIdSuffixLength; i++)
    suffix += alphabet[(random[i] ?? 0) % alphabet.length];
  return `${pipelineName.replace(/\./g, "-")}-${suffix}`;
}

/** The task id (`TASK_ID`) of a task in a run: `<run id>--<task name>`. */
export function taskId(runId: string, taskName: string): string {
  return `${runId}--${taskName}`;
}

/** Short stable hash used to keep shortened names distinct. */
export function nameHash(s: string, length = 10): string {
  return createHash("sha256").update(s).digest("hex").slice(0, length);
}

/**
 * Makes any string a valid DNS-1123 label, deterministically. A valid label is returned as is;
 * anything else is lower-cased, has other characters replaced with '-', and is cut to leave room
 * for a hash of the whole input, so distinct inputs stay distinct.
 */
export function toDnsLabel(s: string, max = maxNameLength): string {
  return isDnsLabel(s) && s.length <= max ? s : hashedLabel(s, s, max);
}

function hashedLabel(readable: string, key: string, max: number): string {
  const hash = nameHash(key);
  const prefix = readable
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, max - hash.length - 1)
    .replace(/-+$/, "");
  return prefix.length > 0 ? `${prefix}-${hash}` : hash;
}

/**
 * The Kubernetes object name for one attempt of a task. Attempt 1 is the task id itself when it
 * is a valid name (as in the original Odin); later attempts, and ids that are too long or hold
 * other characters, get a readable prefix and a hash. The same run, task and attempt always give
 * the same name, so a repeated launch finds the object it already created.
 */
export function objectName(runId: string, taskName: string, attempt = 1): string {
  const id = taskId(runId, taskName);
  if (attempt <= 1) return toDnsLabel(id);
  return hashedLabel(`${id}-${attempt}`, `${id}#${attempt}`, maxNameLength);
}
