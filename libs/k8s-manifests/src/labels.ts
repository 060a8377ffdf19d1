import {
  attemptLabel,
  isLabelValue,
  managedByLabel,
  managedByValue,
  runLabel,
  taskLabel,
  toDnsLabel,
} from "@odin/pipeline-spec";

// The keys themselves are defined once, in @odin/pipeline-spec; this module builds selectors.
export {
  attemptLabel,
  cancelledAnnotation,
  commitAnnotation,
  managedByLabel,
  managedByValue,
  legacyPendingTimeoutAnnotation,
  pendingTimeoutAnnotation,
  pipelineAnnotation,
  runLabel,
  shardLabel,
  taskIdAnnotation,
  taskLabel,
} from "@odin/pipeline-spec";

/**
 * A value usable as a label value: itself when valid, else shortened with a hash the same way
 * object names are. Run ids and task names that passed validation are always used as is.
 */
export function labelValue(value: string): string {
  return isLabelValue(value) ? value : toDnsLabel(value);
}

/** Which Odin objects to find: every one, a run's, a task's in a run, or one attempt's. */
export interface SelectorScope {
  runId?: string;
  task?: string;
  attempt?: number;
}

/** Odin's identifying labels for one scope, in a fixed order. */
export function odinLabels(scope: SelectorScope): Record<string, string> {
  const labels: Record<string, string> = { [managedByLabel]: managedByValue };
  if (scope.runId !== undefined) labels[runLabel] = labelValue(scope.runId);
  if (scope.task !== undefined) labels[taskLabel] = labelValue(scope.task);
  if (scope.attempt !== undefined) labels[attemptLabel] = String(scope.attempt);
  return labels;
}

/**
 * The label selector (`k=v,k=v`) matching the objects and pods of a scope, for list and watch
 * calls; `selectorFor({})` matches everything Odin created.
 */
export function selectorFor(scope: SelectorScope = {}): string {
  return Object.entries(odinLabels(scope))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}
