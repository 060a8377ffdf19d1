// The task panel: one task of a run — its state and history, why it ended, what it was given,
// what it reported, its Kubernetes object, its logs (followed live, every pod) and events.
import { useEffect, useRef, useState } from "preact/hooks";
import { TaskState } from "../../gen/odin/common/v1/run_pb.js";
import type { Task } from "../../gen/odin/common/v1/pipeline_pb.js";
import type { LogLine, ObjectEvent } from "../../gen/odin/k8slauncher/v1/k8slauncher_pb.js";
import { errorText, launcher, registry } from "../api.js";
import { ms, span, taskStateName, when } from "../format.js";
import type { RunModel } from "../run-model.js";
import { onLinkClick, paths } from "../router.js";

const MAX_LINES = 5000;

/** The panel of `task` in run `runId`. */
export function TaskPanel({
  runId,
  task,
  model,
  index,
  inPipeline,
  pipeline,
  commit,
  onClose,
}: {
  runId: string;
  task: string;
  model: RunModel;
  /** The task's position in the pipeline; undefined until its graph is read or when it has none. */
  index: number | undefined;
  /** Whether the run's pipeline has this task; undefined until its graph is read. */
  inPipeline: boolean | undefined;
  /** The run's pipeline path and commit, to read this task's spec from. */
  pipeline: string | undefined;
  commit: string | undefined;
  onClose: () => void;
}) {
  const [spec, setSpec] = useState<Task>();
  useEffect(() => {
    if (!pipeline || !commit) return;
    let stopped = false;
    registry.getPipeline({ path: pipeline, commit, tasks: [task] }).then(
      (res) => !stopped && setSpec(res.pipeline?.tasks[0]),
      () => undefined,
    );
    return () => {
      stopped = true;
    };
  }, [pipeline, commit, task]);
  const t = model.taskRun(task);
  // Known before the task run is read: every task's state came with the snapshot.
  const state = model.stateOf(task, index);
  // A large run's task run is read when its panel opens.
  useEffect(() => model.want([task]), [model, task, model.partial]);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [task]);
  const outputs = parseOutputs(t?.outputsJson ?? "");

  return (
    <aside class="task-panel" aria-labelledby="task-title" data-testid="task-panel">
      <div class="panel-head">
        <h2 id="task-title" tabIndex={-1} ref={heading}>
          {task}
        </h2>
        <button onClick={onClose} title="Close the task panel">
          Close
        </button>
      </div>
      {!t ? (
        inPipeline === false || (model.complete && !model.partial && inPipeline !== true) ? (
          <p>Not a task of this run.</p>
        ) : (
          <p aria-live="polite">{taskStateName(state)} · loading the details…</p>
        )
      ) : (
        <>
          <dl class="facts">
            <dt>State</dt>
            <dd>
              {taskStateName(t.state)}
              {t.attempt > 0 && ` · attempt ${t.attempt}`}
            </dd>
            {t.cachedFrom && (
              <>
                <dt>Cached from</dt>
                <dd data-testid="cached-from">
                  run{" "}
                  <a href={paths.task(t.cachedFrom.runId, task)} onClick={onLinkClick}>
                    {t.cachedFrom.runId}
                  </a>
                  {t.cachedFrom.attempt > 1 && ` · attempt ${t.cachedFrom.attempt}`} (not run again;
                  its result was reused)
                </dd>
              </>
            )}
            {t.reason && (
              <>
                <dt>Reason</dt>
                <dd>
                  <code>{t.reason}</code> {t.message}
                </dd>
              </>
            )}
            {t.exitCode !== undefined && (
              <>
                <dt>Exit code</dt>
                <dd>{t.exitCode}</dd>
              </>
            )}
            <dt>Object</dt>
            <dd class="mono">{t.objectName || "—"}</dd>
            <dt>Task id</dt>
            <dd class="mono">{t.taskId}</dd>
            <dt>Launched</dt>
            <dd>{when(t.launchTime) || "—"}</dd>
            <dt>Ran</dt>
            <dd>
              {when(t.startTime) || "—"}{" "}
              {t.startTime && `(${span(t.startTime, t.endTime, Date.now())})`}
            </dd>
            {t.nextAttemptTime && (
              <>
                <dt>Next attempt</dt>
                <dd>{when(t.nextAttemptTime)}</dd>
              </>
            )}
          </dl>
          <h3>State history</h3>
          <ol class="history" data-testid="history">
            {t.history.length === 0 && <li class="muted">not launched yet</li>}
            {t.history.map((h) => (
              <li>
                <time dateTime={h.time ? new Date(ms(h.time) ?? 0).toISOString() : undefined}>
                  {when(h.time)}
                </time>{" "}
                {taskStateName(h.state)}
                {h.attempt > 0 ? ` (attempt ${h.attempt})` : ""}
              </li>
            ))}
          </ol>
          {t.launched && (
            <>
              <h3>Launched with</h3>
              <p class="hint">
                Attempt {t.attempt} as started: variables and ^task.outputs substituted; values of
                secret-looking variables hidden.
              </p>
              <ol class="argv" aria-label="Launched command and arguments" data-testid="launched">
                {[...t.launched.command, ...t.launched.args].map((arg) => (
                  <li>
                    <pre class="code">{arg}</pre>
                  </li>
                ))}
              </ol>
              {Object.keys(t.launched.env).length > 0 && (
                <pre class="code">
                  {Object.entries(t.launched.env)
                    .map(([k, v]) => `${k}=${v}`)
                    .join("\n")}
                </pre>
              )}
            </>
          )}
          {outputs.length > 0 && (
            <>
              <h3>Outputs</h3>
              <dl class="facts">
                {outputs.map(([k, v]) => (
                  <>
                    <dt class="mono">{k}</dt>
                    <dd class="mono">{v}</dd>
                  </>
                ))}
              </dl>
            </>
          )}
          {spec && (
            <>
              <h3>Command</h3>
              <p class="hint">
                As written in main.yml at {commit?.slice(0, 12)}; processing variables and
                ^task.outputs are substituted at launch.
              </p>
              <ol class="argv" aria-label="Command and arguments">
                {spec.command.length === 0 && <li class="muted">(the image's entrypoint)</li>}
                {[...spec.command, ...spec.args].map((arg) => (
                  <li>
                    <pre class="code">{arg}</pre>
                  </li>
                ))}
              </ol>
              <p class="mono muted">image {spec.image}</p>
              {Object.keys(spec.env).length > 0 && (
                <pre class="code">
                  {Object.entries(spec.env)
                    .map(([k, v]) => `${k}=${v}`)
                    .join("\n")}
                </pre>
              )}
            </>
          )}
          <Logs
            runId={runId}
            task={task}
            attempt={t.attempt}
            running={t.state === TaskState.RUNNING || t.state === TaskState.LAUNCHING}
          />
          <Events runId={runId} task={task} attempt={t.attempt} state={t.state} />
        </>
      )}
    </aside>
  );
}

function parseOutputs(json: string): [string, string][] {
  if (!json) return [];
  try {
    const value = JSON.parse(json) as Record<string, unknown>;
    return Object.entries(value).map(([k, v]) => [
      k,
      typeof v === "string" ? v : JSON.stringify(v),
    ]);
  } catch {
    return [["(unparsed)", json]];
  }
}

/** The attempt's log lines, followed while it runs; every pod's, each line naming its pod when there are several. */
function Logs({
  runId,
  task,
  attempt,
  running,
}: {
  runId: string;
  task: string;
  attempt: number;
  running: boolean;
}) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [error, setError] = useState<string>();
  const [following, setFollowing] = useState(false);
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    if (attempt === 0) return;
    const abort = new AbortController();
    const got: LogLine[] = [];
    setLines([]);
    setError(undefined);
    setFollowing(running);
    (async () => {
      try {
        for await (const batch of launcher.streamLogs(
          { runId, task, attempt, follow: running },
          { signal: abort.signal },
        )) {
          got.push(...batch.lines);
          if (got.length > MAX_LINES) got.splice(0, got.length - MAX_LINES);
          setLines(got.slice());
        }
      } catch (err) {
        if (!abort.signal.aborted) setError(errorText(err));
      } finally {
        if (!abort.signal.aborted) setFollowing(false);
      }
    })().catch(() => undefined);
    return () => abort.abort();
    // A task that starts running while open is followed from then on.
  }, [runId, task, attempt, running]);
  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines]);
  const pods = new Set(lines.map((l) => l.pod));
  return (
    <section aria-labelledby="logs-title">
      <h3 id="logs-title">
        Logs {following && <span class="badge state-running">following</span>}
      </h3>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {attempt === 0 ? (
        <p class="muted">Not launched yet.</p>
      ) : (
        <pre
          class="logs"
          ref={box}
          tabIndex={0}
          role="log"
          aria-label="Log lines"
          data-testid="logs"
        >
          {lines.length === 0
            ? "(no lines yet)"
            : lines.map((l) => (pods.size > 1 ? `[${l.pod}] ${l.line}` : l.line)).join("\n")}
        </pre>
      )}
    </section>
  );
}

/** Kubernetes events of the attempt's objects and pods, read again when the state changes. */
function Events({
  runId,
  task,
  attempt,
  state,
}: {
  runId: string;
  task: string;
  attempt: number;
  state: TaskState;
}) {
  const [events, setEvents] = useState<ObjectEvent[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    if (attempt === 0) return;
    let stopped = false;
    launcher.listTaskEvents({ runId, task, attempt }).then(
      (res) => !stopped && setEvents(res.events),
      (err: unknown) => !stopped && setError(errorText(err)),
    );
    return () => {
      stopped = true;
    };
  }, [runId, task, attempt, state]);
  return (
    <section aria-labelledby="events-title">
      <h3 id="events-title">Events</h3>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {events && events.length === 0 && <p class="muted">No events.</p>}
      {events && events.length > 0 && (
        <table class="events">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Type</th>
              <th scope="col">Reason</th>
              <th scope="col">Object</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr class={e.type === "Warning" ? "warning" : ""}>
                <td>{when(e.time)}</td>
                <td>{e.type}</td>
                <td>{e.reason}</td>
                <td class="mono">
                  {e.objectKind}/{e.objectName}
                </td>
                <td>
                  {e.message}
                  {e.count > 1 ? ` (×${e.count})` : ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
