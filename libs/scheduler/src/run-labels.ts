// The labels that say which schedule or commit trigger started a run. Their values must be valid
// Kubernetes label values (what a label selector can name: letters, digits, `-`, `_`, `.`, at most
// 63) and must name one schedule or trigger, so `odin status -l schedule=…` selects its runs and
// nothing else. A declared schedule's name (`team/sst2:nightly`) and a trigger's pipeline path are
// not label values; they are written `team.sst2.nightly`.
import { isLabelValue, maxNameLength, nameHash } from "@odin/pipeline-spec";
import type { RunRecord } from "./records.js";

/** The run label naming the schedule that started a run. */
export const scheduleLabel = "schedule";
/** The run label naming the commit trigger that started a run. */
export const triggerLabel = "trigger";
/** The run label holding the commit a triggered run is pinned to. */
export const commitLabel = "commit";

/**
 * A pipeline path and a name in it as one label value: the path's segments and the name joined by
 * `.` (`team/sst2` + `nightly` → `team.sst2.nightly`). The name (a DNS label) has no `.`, so the
 * last part is the name; a segment holding `.` or `_`, or a value longer than 63, would make the
 * readable form ambiguous or invalid, and is written `<readable prefix>_<hash of path:name>`
 * instead. Readable values hold a `.` and no `_`, hashed ones a `_`: neither is ever a DNS label,
 * the name of a created schedule.
 */
export function pipelineLabelValue(pipeline: string, name: string): string {
  const segments = pipeline.split("/");
  const readable = [...segments, name].join(".");
  if (isLabelValue(readable) && segments.every((s) => /^[A-Za-z0-9][A-Za-z0-9-]*$/.test(s)))
    return readable;
  return hashed(readable, `${pipeline}:${name}`);
}

/** `<readable, cut to fit>_<hash of key>`: a valid label value holding a `_`. */
function hashed(readable: string, key: string): string {
  const hash = nameHash(key);
  const prefix = readable
    .replace(/[^A-Za-z0-9.-]+/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, maxNameLength - hash.length - 1)
    .replace(/[^A-Za-z0-9]+$/, "");
  return prefix ? `${prefix}_${hash}` : `h_${hash}`;
}

/**
 * The `schedule` label value of a schedule's runs: a created schedule's name as is (a DNS label),
 * a declared one's (`<pipeline path>:<name>`) as {@link pipelineLabelValue}.
 */
export function scheduleLabelValue(schedule: string): string {
  const colon = schedule.lastIndexOf(":");
  if (colon >= 0) return pipelineLabelValue(schedule.slice(0, colon), schedule.slice(colon + 1));
  return isLabelValue(schedule) ? schedule : hashed(schedule, schedule);
}

/** The `trigger` label value of a trigger's runs (`train.code` for train's trigger `code`). */
export function triggerLabelValue(pipeline: string, trigger: string): string {
  return pipelineLabelValue(pipeline, trigger);
}

/** The label selector of a schedule's runs (`schedule=sst2.nightly`). */
export function scheduleRunSelector(schedule: string): string {
  return `${scheduleLabel}=${scheduleLabelValue(schedule)}`;
}

/** The label selector of a trigger's runs (`trigger=train.code`). */
export function triggerRunSelector(pipeline: string, trigger: string): string {
  return `${triggerLabel}=${triggerLabelValue(pipeline, trigger)}`;
}

/**
 * A run record as read from the store, with the labels of runs started by older versions written
 * as they are now: `schedule=<pipeline path>:<name>` (no selector could name it) and a declared
 * schedule too long for a label (which got none) become `schedule=<label value>`; a trigger's
 * `trigger=<name>` (the same in every pipeline) becomes `trigger=<pipeline>.<name>`. Only runs a
 * schedule or trigger submitted are touched (told by `submitted_by`), never labels a caller gave.
 */
export function upgradeRunLabels(record: RunRecord): RunRecord {
  const labels = record.labels ?? {};
  const by = record.submittedBy ?? "";
  if (by.startsWith("schedule:")) {
    const schedule = by.slice("schedule:".length);
    const value = labels[scheduleLabel];
    if ((value === undefined || value === schedule) && scheduleLabelValue(schedule) !== value)
      return { ...record, labels: { ...labels, [scheduleLabel]: scheduleLabelValue(schedule) } };
  } else if (by.startsWith("commit:")) {
    const value = labels[triggerLabel];
    // A trigger's own name is a DNS label (no `.` or `_`); the values written now never are.
    if (value !== undefined && labels[commitLabel] && /^[a-z0-9-]+$/.test(value))
      return {
        ...record,
        labels: { ...labels, [triggerLabel]: triggerLabelValue(record.pipeline, value) },
      };
  }
  return record;
}
