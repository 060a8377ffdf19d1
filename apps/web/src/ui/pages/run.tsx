// Run: the pipeline's DAG coloured by each task's state, live from WatchRun; the task list; the
// run's actions; the task panel of the task in the URL.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { RunState, TaskState, type Notification } from "../../gen/odin/common/v1/run_pb.js";
import { errorText, registry, requestId, scheduler, type Session } from "../api.js";
import { DagView } from "../dag-view.js";
import { runStateClass, runStateName, span, taskColors, taskStateName, when } from "../format.js";
import { layoutTasks, SHOW_EVERY_TASK, type GraphLayout } from "../graph.js";
import { parameterText } from "../parameters.js";
import { navigate, onLinkClick, paths } from "../router.js";
import { RunModel } from "../run-model.js";
import { TaskPanel } from "./task-panel.js";

const ENDED = new Set([RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED]);

/** What the Run page asks WatchRun. */
const watchRequest = (runId: string) => ({
  runId,
  taskStatesFirst: true,
  // A run too large to draw task by task is sent as its states: the graph and the counts need
  // no more, and the page reads the task runs it shows.
  maxSnapshotTaskRuns: SHOW_EVERY_TASK,
});

let early:
  | { runId: string; stream: ReturnType<typeof scheduler.watchRun>; abort: AbortController }
  | undefined;

/**
 * Opens the Run page's stream before the app first renders (when the address is a run's), so the
 * request is on its way while the page is drawn; the page takes it over.
 */
export function openRunEarly(runId: string): void {
  const abort = new AbortController();
  early = {
    runId,
    stream: scheduler.watchRun(watchRequest(runId), { signal: abort.signal }),
    abort,
  };
}

/** The early stream of `runId`, once, aborted with `signal`. */
function takeEarly(runId: string, signal: AbortSignal) {
  const taken = early;
  early = undefined;
  if (!taken) return undefined;
  if (taken.runId !== runId) {
    taken.abort.abort();
    return undefined;
  }
  signal.addEventListener("abort", () => taken.abort.abort(), { once: true });
  return taken.stream;
}

/** The Run page; `task` (from the URL) opens that task's panel. */
export function RunPage({
  runId,
  task,
  session,
}: {
  runId: string;
  task: string | undefined;
  session: Session;
}) {
  // A large run's task runs are read as they are shown (see RunModel).
  const model = useMemo(
    () => new RunModel((tasks) => scheduler.getRun({ runId, tasks }).then((res) => res.taskRuns)),
    [runId],
  );
  useEffect(() => () => model.close(), [model]);
  const [, setVersion] = useState(0);
  // The pipeline's task names in file order (the graph's node indices refer to them).
  const [names, setNames] = useState<string[]>();
  const [layout, setLayout] = useState<GraphLayout>();
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [selectedNode, setSelectedNode] = useState(-1);
  const [busy, setBusy] = useState(false);
  const [watchGeneration, setWatchGeneration] = useState(0);
  // Notifications change after the run ends (when the stream has closed): read while pending.
  const [notifications, setNotifications] = useState<Notification[]>();

  // The DAG's shape comes from the pipeline at the run's commit: only the graph (GetPipelineGraph:
  // names and dependencies as positions), asked for as soon as the stream's first part names the
  // commit — not after a render — so it arrives while the rest of the snapshot does. A task's
  // full spec is read by its panel.
  const graphOf = useRef("");
  const loadGraph = (path: string, commit: string, signal: AbortSignal): void => {
    if (graphOf.current === `${commit}:${path}`) return;
    graphOf.current = `${commit}:${path}`;
    registry.getPipelineGraph({ path, commit }, { signal }).then(
      (res) => {
        if (signal.aborted) return;
        performance.mark("odin:pipeline-loaded");
        const started = performance.now();
        const laidOut = layoutTasks(res.tasks, res.dependsCounts, res.depends);
        performance.measure("odin:layout", { start: started });
        model.setPipeline(res.tasks);
        setNames(res.tasks);
        setLayout(laidOut);
      },
      (err: unknown) => {
        graphOf.current = "";
        if (!signal.aborted) setError(`cannot read the pipeline: ${errorText(err)}`);
      },
    );
  };

  // The stream: a snapshot, then every change, until the run ends (then it is re-opened only
  // after a retry).
  useEffect(() => {
    const abort = new AbortController();
    setNotifications(undefined);
    let frame = 0;
    let shownStates = false;
    const unsubscribe = model.subscribe(() => {
      // Re-render the page (header, list) at most once per frame, and while the opening snapshot
      // arrives only for its first part (the run) and its states part; the canvas repaints itself.
      if (!model.complete && model.version > 1) {
        if (shownStates || !model.statesKnown) return;
        shownStates = true;
      }
      if (frame === 0)
        frame = requestAnimationFrame(() => {
          frame = 0;
          setVersion(model.version);
        });
    });
    (async () => {
      let attempt = 0;
      while (!abort.signal.aborted) {
        try {
          const stream =
            takeEarly(runId, abort.signal) ??
            scheduler.watchRun(watchRequest(runId), { signal: abort.signal });
          for await (const message of stream) {
            attempt = 0;
            const wasComplete = model.complete;
            const knewStates = model.statesKnown;
            model.apply(message);
            if (model.run) loadGraph(model.run.pipeline, model.run.commit, abort.signal);
            if (!knewStates && model.statesKnown) performance.mark("odin:states-known");
            if (!wasComplete && model.complete) performance.mark("odin:snapshot-complete");
          }
          if (model.run && ENDED.has(model.run.state)) {
            let shown = model.run.notifications;
            for (let i = 0; i < 90 && shown.some((n) => n.state === "pending"); i++) {
              await new Promise((r) => setTimeout(r, 2000));
              if (abort.signal.aborted) return;
              const res = await scheduler.getRun(
                { runId, taskPageSize: 1 },
                { signal: abort.signal },
              );
              shown = res.run?.notifications ?? [];
              setNotifications(shown);
            }
            return;
          }
        } catch (err) {
          if (abort.signal.aborted) return;
          setError(errorText(err));
          if (/NotFound|InvalidArgument/.test(errorText(err))) return;
        }
        // The stream broke before the run ended: a fresh call gets a fresh snapshot.
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt++)));
      }
    })().catch((err: unknown) => setError(errorText(err)));
    return () => {
      // A graph request cut short here clears graphOf (its error handler), so the next stream
      // asks again; a graph already loaded is kept.
      abort.abort();
      unsubscribe();
      cancelAnimationFrame(frame);
    };
  }, [model, runId, watchGeneration]);

  // The node of the task in the URL is the selected one.
  const graphIndex = useMemo(() => {
    const m = new Map<string, number>();
    names?.forEach((name, i) => m.set(name, i));
    return m;
  }, [names]);
  // The graph indexes tasks in pipeline order; the model by name.
  const taskRunOf = useMemo(() => {
    return (i: number) => model.taskRun(names?.[i] ?? "");
  }, [model, names]);
  // The graph's one-task nodes show attempt and duration: read those tasks' task runs.
  useEffect(() => {
    if (!layout || !names || !model.partial) return;
    model.want(
      layout.nodes.filter((n) => n.members.length === 1).map((n) => names[n.members[0]!]!),
    );
  }, [layout, names, model, model.partial]);
  useEffect(() => {
    if (!layout || task === undefined) return;
    const i = graphIndex.get(task);
    if (i !== undefined) setSelectedNode(layout.nodeOfTask[i] ?? -1);
  }, [layout, task, graphIndex]);

  const run = model.run;
  const act = async (what: "cancel" | "retry" | "remove"): Promise<void> => {
    if (what === "remove" && !confirm(`Remove run ${runId}'s objects, records and data?`)) return;
    setBusy(true);
    setNotice(undefined);
    try {
      if (what === "cancel") await scheduler.cancelRun({ runId });
      if (what === "retry") {
        await scheduler.retryRun({ runId, requestId: requestId() });
        setWatchGeneration((g) => g + 1);
      }
      if (what === "remove") {
        const res = await scheduler.deleteRun({ runId, purgeRecords: true, purgeData: true });
        setNotice(`removed ${res.deletedObjects} objects`);
        navigate(paths.runs());
        return;
      }
    } catch (err) {
      setNotice(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const counts = model.counts();
  const finished =
    (counts.get(TaskState.SUCCEEDED) ?? 0) +
    (counts.get(TaskState.FAILED) ?? 0) +
    (counts.get(TaskState.ERROR) ?? 0) +
    (counts.get(TaskState.SKIPPED) ?? 0) +
    (counts.get(TaskState.CANCELLED) ?? 0);
  const ended = run !== undefined && ENDED.has(run.state);
  const selectedMembers = layout?.nodes[selectedNode]?.members;
  const openTask =
    task ?? (selectedMembers?.length === 1 ? names?.[selectedMembers[0]!] : undefined);

  return (
    <main class="page run-page">
      <div class="run-head">
        <h1>
          Run <span class="mono">{runId}</span>
        </h1>
        {run && (
          <span class={runStateClass(run.state)} data-testid="run-state">
            {runStateName(run.state)}
          </span>
        )}
        <div class="actions">
          <button
            disabled={!session.canOperate || busy || !run || ended || run.cancelRequested}
            title={session.canOperate ? "" : "needs role operator"}
            onClick={() => void act("cancel")}
          >
            Cancel
          </button>
          <button
            disabled={!session.canOperate || busy || !ended || run?.state === RunState.SUCCEEDED}
            title={session.canOperate ? "" : "needs role operator"}
            onClick={() => void act("retry")}
          >
            Retry
          </button>
          <button
            disabled={!session.canOperate || busy || !ended}
            title={session.canOperate ? "" : "needs role operator"}
            onClick={() => void act("remove")}
          >
            Remove
          </button>
        </div>
      </div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {notice && <p role="status">{notice}</p>}
      {run && (
        <dl class="facts">
          <dt>Pipeline</dt>
          <dd>
            <a href={paths.pipeline(run.pipeline)} onClick={onLinkClick}>
              {run.pipeline}
            </a>{" "}
            <span class="mono muted">@{run.commit.slice(0, 12)}</span>
          </dd>
          <dt>Progress</dt>
          <dd data-testid="progress">
            {finished}/{run.taskCount} tasks finished
          </dd>
          {run.submittedBy && (
            <>
              <dt>Submitted by</dt>
              <dd data-testid="submitted-by">{run.submittedBy}</dd>
            </>
          )}
          <dt>Started</dt>
          <dd>{when(run.startTime ?? run.createTime)}</dd>
          <dt>Duration</dt>
          <dd>{span(run.startTime, run.endTime, Date.now())}</dd>
          {Object.keys(run.parameters ?? {}).length > 0 && (
            <>
              <dt>Parameters</dt>
              <dd class="labels" data-testid="parameters">
                {Object.entries(run.parameters ?? {}).map(([k, v]) => (
                  <>
                    <code>
                      {k}={parameterText(v)}
                    </code>{" "}
                  </>
                ))}
              </dd>
            </>
          )}
          {(notifications ?? run.notifications).length > 0 && (
            <>
              <dt>Notified</dt>
              <dd data-testid="notifications">
                {(notifications ?? run.notifications).map((n) => (
                  <div>
                    <code>{n.webhookSecret}</code> {n.state}
                    {n.attempts > 0 && ` after ${n.attempts} attempt${n.attempts === 1 ? "" : "s"}`}
                    {n.error && <span class="muted"> — {n.error}</span>}
                  </div>
                ))}
              </dd>
            </>
          )}
          {run.attempt > 1 && (
            <>
              <dt>Attempt</dt>
              <dd>{run.attempt}</dd>
            </>
          )}
          {/* A failed run, or one a task ended early, says why even without a message. */}
          {(run.message || run.reason) && (
            <>
              <dt>Why</dt>
              <dd>
                {run.reason && <code>{run.reason}</code>} {run.message}
              </dd>
            </>
          )}
        </dl>
      )}
      <div class="run-body">
        <section class="graph-area" aria-label="Graph">
          {layout ? (
            <DagView
              layout={layout}
              model={model}
              taskRunOf={taskRunOf}
              selected={selectedNode}
              onSelect={(n) => {
                setSelectedNode(n);
                const members = layout.nodes[n]?.members;
                if (members?.length === 1) {
                  const name = names?.[members[0]!];
                  if (name) navigate(paths.task(runId, name), true);
                }
              }}
              label={`DAG of ${names?.length ?? 0} tasks${layout.grouping !== "none" ? `, grouped by ${layout.grouping === "depth" ? "depth" : "shared dependencies"}` : ""}`}
            />
          ) : (
            <p aria-live="polite">Loading the graph…</p>
          )}
          <Legend />
        </section>
        <TaskList
          model={model}
          names={names}
          indexOf={graphIndex}
          only={
            selectedMembers && selectedMembers.length > 1
              ? selectedMembers.map((m) => names?.[m] ?? "")
              : undefined
          }
          runId={runId}
          current={openTask}
          version={model.version}
        />
        {openTask && (
          <TaskPanel
            key={`${runId}/${openTask}`}
            runId={runId}
            task={openTask}
            model={model}
            index={graphIndex.get(openTask)}
            inPipeline={names ? graphIndex.has(openTask) : undefined}
            pipeline={run?.pipeline}
            commit={run?.commit}
            onClose={() => {
              setSelectedNode(-1);
              navigate(paths.run(runId), true);
            }}
          />
        )}
      </div>
    </main>
  );
}

function Legend() {
  const shown = [
    TaskState.PENDING,
    TaskState.LAUNCHING,
    TaskState.RUNNING,
    TaskState.SUCCEEDED,
    TaskState.FAILED,
    TaskState.ERROR,
    TaskState.RETRYING,
    TaskState.SKIPPED,
    TaskState.CANCELLED,
  ];
  return (
    <ul class="legend" aria-label="Colours">
      {shown.map((s) => (
        <li>
          <span class="swatch" style={{ background: taskColors[s].fill }} />
          {taskStateName(s)}
        </li>
      ))}
    </ul>
  );
}

const ROW = 30;

/** Every task (or the members of the selected group), scrollable; only the visible rows exist. */
function TaskList({
  model,
  names: pipelineNames,
  indexOf,
  only,
  runId,
  current,
  version,
}: {
  model: RunModel;
  /** The pipeline's task names in file order, once the graph is read. */
  names: readonly string[] | undefined;
  /** Position of a task in `names` (and in the snapshot's states). */
  indexOf: ReadonlyMap<string, number>;
  only: string[] | undefined;
  runId: string;
  current: string | undefined;
  /** The model's version: the rows on screen are read again when it changes. */
  version: number;
}) {
  const [filter, setFilter] = useState("");
  const [top, setTop] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  const all = only ?? pipelineNames ?? model.names;
  const names = filter ? all.filter((n) => n.includes(filter)) : all;
  const height = 420;
  const first = Math.max(0, Math.floor(top / ROW) - 5);
  const last = Math.min(names.length, first + Math.ceil(height / ROW) + 10);
  const shown = names.slice(first, last);
  // The task runs of the rows on screen (a large run's are read as they are shown).
  useEffect(() => model.want(shown), [model, version, first, last, names]);
  return (
    <section class="task-list" aria-label="Tasks">
      <h2>
        Tasks{only ? ` (${only.length.toLocaleString()} in the selected group)` : ""}{" "}
        <span class="muted">{names.length.toLocaleString()}</span>
      </h2>
      <label class="sr-only" for="task-filter">
        Filter tasks by name
      </label>
      <input
        id="task-filter"
        placeholder="filter by name"
        value={filter}
        onInput={(e) => setFilter(e.currentTarget.value)}
      />
      <div
        ref={box}
        class="rows"
        style={{ height: `${height}px` }}
        onScroll={(e) => setTop(e.currentTarget.scrollTop)}
      >
        <ul style={{ height: `${names.length * ROW}px` }} role="list">
          {shown.map((name, k) => {
            const t = model.taskRun(name);
            const state = model.stateOf(name, indexOf.get(name));
            return (
              <li
                key={name}
                style={{ top: `${(first + k) * ROW}px` }}
                data-task={name}
                data-state={taskStateName(state)}
              >
                <a
                  href={paths.task(runId, name)}
                  onClick={onLinkClick}
                  aria-current={name === current ? "true" : undefined}
                >
                  <span class="swatch" style={{ background: taskColors[state].fill }} />
                  <span class="name">{name}</span>
                  <span class="muted">
                    {taskStateName(state)}
                    {t?.cachedFrom ? ` · cached from ${t.cachedFrom.runId}` : ""}
                    {t && t.attempt > 1 ? ` · attempt ${t.attempt}` : ""}
                    {t ? ` ${span(t.startTime ?? t.launchTime, t.endTime, Date.now())}` : ""}
                  </span>
                </a>
              </li>
            );
          })}
        </ul>
      </div>
    </section>
  );
}
