// Notification targets given outside a pipeline file — a schedule's `--notify NAME[:states]` or
// CreateScheduleRequest.notify — checked as `notify:` entries are, and merged with a pipeline's.
import {
  notifyStates,
  webhookSecretNamePattern,
  type NotifyState,
  type NotifyTarget,
} from "./model.js";

/** Whether text looks like a webhook URL (or a Slack hook host): never repeated in a message. */
export function looksLikeUrl(text: string): boolean {
  return /:\/\/|^hooks\./.test(text);
}

/**
 * Why `secret` is not a webhook secret's name (without repeating a URL), or undefined when it is;
 * `what` is where it was given, `how` how to give a name there.
 */
export function webhookSecretProblem(
  secret: string,
  what = "a webhook",
  how = "give that name",
): string | undefined {
  if (webhookSecretNamePattern.test(secret)) return undefined;
  return looksLikeUrl(secret)
    ? `${what} must name a secret, not hold a URL: put the URL in the odin-webhooks Secret (or the server's webhooks file) under a name and ${how}`
    : `webhook secret name "${secret.slice(0, 80)}" must be letters, digits, "-", "_" and ".", starting and ending with a letter or digit (at most 63)`;
}

/** Why a word is not a state a notification can be asked for, or undefined when it is one. */
export function notifyStateProblem(word: string): string | undefined {
  if ((notifyStates as readonly string[]).includes(word.toUpperCase())) return undefined;
  // Quote only what could be a state's name: the word may be part of a pasted URL.
  const quoted = /^[A-Za-z]{1,20}$/.test(word) ? `"${word}"` : "that";
  return `${quoted} is not a state a run ends in; "on" takes ${notifyStates.map((s) => s.toLowerCase()).join(", ")}`;
}

/**
 * A notification target from a secret's name and end states (any case; none = every end state),
 * or why it is not one.
 */
export function notifyTarget(
  webhookSecret: string,
  on: readonly string[],
): { target: NotifyTarget } | { error: string } {
  const bad = webhookSecretProblem(webhookSecret);
  if (bad !== undefined) return { error: bad };
  const states: NotifyState[] = [];
  for (const word of on) {
    const problem = notifyStateProblem(word);
    if (problem !== undefined) return { error: `webhook ${webhookSecret}: ${problem}` };
    const state = word.toUpperCase() as NotifyState;
    if (!states.includes(state)) states.push(state);
  }
  return { target: { webhookSecret, on: states.length > 0 ? states : notifyStates } };
}

/**
 * `NAME` or `NAME:state,state` (the CLI's `--notify`) as a target, or why it is not one. A URL
 * given instead of a name is refused without being repeated.
 */
export function parseNotifyTarget(text: string): { target: NotifyTarget } | { error: string } {
  if (looksLikeUrl(text))
    return { error: webhookSecretProblem(text, "--notify", "write --notify NAME[:states]")! };
  const colon = text.indexOf(":");
  const name = colon < 0 ? text : text.slice(0, colon);
  const states = colon < 0 ? [] : text.slice(colon + 1).split(",");
  if (colon >= 0 && states.every((s) => s.trim() === ""))
    return { error: `--notify ${name}: give the states after ":" (e.g. ${name}:failed,cancelled)` };
  return notifyTarget(
    name.trim(),
    states.map((s) => s.trim()).filter((s) => s !== ""),
  );
}

/**
 * The targets of several lists as one: a webhook named more than once is one target posted for
 * the union of its states (so it is posted once per run end), in first-named order.
 */
export function mergeNotifyTargets(
  ...lists: (readonly NotifyTarget[] | undefined)[]
): NotifyTarget[] {
  const merged = new Map<string, Set<NotifyState>>();
  for (const list of lists)
    for (const t of list ?? []) {
      const states = merged.get(t.webhookSecret) ?? new Set<NotifyState>();
      for (const s of t.on) states.add(s);
      merged.set(t.webhookSecret, states);
    }
  return [...merged].map(([webhookSecret, states]) => ({
    webhookSecret,
    // In the canonical order, so equal targets compare equal.
    on: notifyStates.filter((s) => states.has(s)),
  }));
}
