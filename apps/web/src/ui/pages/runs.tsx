// Runs: newest first, filtered by pipeline, state and labels, a page at a time (ListRuns' own
// paging), kept current while the page is open.
import { useEffect, useRef, useState } from "preact/hooks";
import { RunState, TaskState, type Run } from "../../gen/odin/common/v1/run_pb.js";
import { errorText, scheduler } from "../api.js";
import { runStateClass, runStateName, span, when } from "../format.js";
import { navigate, onLinkClick, paths } from "../router.js";

const PAGE_SIZE = 50;
// ListRuns answers for the page only; the page is asked again this often while it is shown.
const REFRESH_MS = 2000;
const ENDED = new Set([RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED]);

/** How many of a run's tasks have finished, by run id; ended runs never change, so they are kept. */
const progressCache = new Map<string, { done: number; total: number }>();

/** The Runs page. `query`: pipeline, state, label, page (a ListRuns page token). */
export function RunsPage({ query }: { query: URLSearchParams }) {
  const pipeline = query.get("pipeline") ?? "";
  const state = query.get("state") ?? "";
  const label = query.get("label") ?? "";
  const page = query.get("page") ?? "";
  const [runs, setRuns] = useState<Run[]>();
  const [next, setNext] = useState("");
  const [error, setError] = useState<string>();
  const [now, setNow] = useState(Date.now());
  const [progress, setProgress] = useState(0);
  const history = useRef<string[]>([]);

  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const load = async (): Promise<void> => {
      try {
        const states = state ? [RunState[state.toUpperCase() as keyof typeof RunState]] : [];
        const res = await scheduler.listRuns({
          pipeline,
          states: states.filter((s) => s !== undefined),
          labelSelector: label,
          pageSize: PAGE_SIZE,
          pageToken: page,
        });
        if (stopped) return;
        setRuns(res.runs);
        setNext(res.nextPageToken);
        setError(undefined);
        setNow(Date.now());
        void fillProgress(res.runs, () => !stopped).then(
          () => !stopped && setProgress((p) => p + 1),
        );
      } catch (err) {
        if (!stopped) setError(errorText(err));
      }
      if (!stopped) timer = window.setTimeout(() => void load(), REFRESH_MS);
    };
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [pipeline, state, label, page]);

  const go = (changes: Record<string, string>): void => {
    const q = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) {
      if (v) q.set(k, v);
      else q.delete(k);
    }
    navigate(paths.runs(q.toString()));
  };

  return (
    <main class="page" data-progress={progress}>
      <h1>Runs</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          const field = (name: string): string => {
            const v = f.get(name);
            return typeof v === "string" ? v : "";
          };
          history.current = [];
          go({
            pipeline: field("pipeline").trim(),
            state: field("state"),
            label: field("label").trim(),
            page: "",
          });
        }}
      >
        <label>
          Pipeline
          <input name="pipeline" defaultValue={pipeline} placeholder="e.g. alice/sst2" />
        </label>
        <label>
          State
          <select name="state" defaultValue={state}>
            <option value="">any</option>
            {[
              RunState.PENDING,
              RunState.RUNNING,
              RunState.SUCCEEDED,
              RunState.FAILED,
              RunState.CANCELLED,
            ].map((s) => (
              <option value={runStateName(s)}>{runStateName(s)}</option>
            ))}
          </select>
        </label>
        <label>
          Labels
          <input name="label" defaultValue={label} placeholder="team=nlp,env!=dev" />
        </label>
        <button type="submit">Filter</button>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {runs === undefined ? (
        !error && <p aria-live="polite">Loading…</p>
      ) : runs.length === 0 ? (
        <p>
          No runs{pipeline || state || label ? " match these filters" : " yet"}. Start one from{" "}
          <a href="/pipelines" onClick={onLinkClick}>
            Pipelines
          </a>
          .
        </p>
      ) : (
        <table class="runs">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Pipeline</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">Started</th>
              <th scope="col">Duration</th>
              <th scope="col">Labels</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => {
              const p = progressCache.get(r.id);
              return (
                <tr key={r.id} data-run={r.id}>
                  <td>
                    <a href={paths.run(r.id)} onClick={onLinkClick}>
                      {r.id}
                    </a>
                  </td>
                  <td>
                    <a href={paths.pipeline(r.pipeline)} onClick={onLinkClick}>
                      {r.pipeline}
                    </a>
                  </td>
                  <td>
                    <span class={runStateClass(r.state)}>{runStateName(r.state)}</span>
                    {r.attempt > 1 && <span class="muted"> attempt {r.attempt}</span>}
                  </td>
                  <td>
                    {p ? (
                      <progress
                        max={p.total}
                        value={p.done}
                        aria-label={`${p.done} of ${p.total} tasks finished`}
                      />
                    ) : null}{" "}
                    {p ? `${p.done}/${p.total}` : `–/${r.taskCount}`}
                  </td>
                  <td>{when(r.startTime ?? r.createTime)}</td>
                  <td>{span(r.startTime, r.endTime, now)}</td>
                  <td class="labels">
                    {Object.entries(r.labels).map(([k, v]) => (
                      <code>
                        {k}={v}
                      </code>
                    ))}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        <button disabled={page === ""} onClick={() => go({ page: history.current.pop() ?? "" })}>
          ← Newer
        </button>
        <button
          disabled={next === ""}
          onClick={() => {
            history.current.push(page);
            go({ page: next });
          }}
        >
          Older →
        </button>
      </nav>
    </main>
  );
}

/** Counts finished tasks of the shown runs (GetRun's task pages), at most two runs at a time. */
async function fillProgress(runs: Run[], live: () => boolean): Promise<void> {
  const todo = runs.filter((r) => !(ENDED.has(r.state) && progressCache.has(r.id)));
  const worker = async (): Promise<void> => {
    for (let r = todo.shift(); r && live(); r = todo.shift()) {
      if (r.state === RunState.SUCCEEDED) {
        progressCache.set(r.id, { done: r.taskCount, total: r.taskCount });
        continue;
      }
      let done = 0;
      let token = "";
      do {
        const page = await scheduler.getRun({ runId: r.id, taskPageToken: token });
        done += page.taskRuns.filter((t) => FINISHED.has(t.state)).length;
        token = page.nextTaskPageToken;
      } while (token && live());
      progressCache.set(r.id, { done, total: r.taskCount });
    }
  };
  await Promise.all([worker(), worker()]).catch(() => undefined);
}

const FINISHED = new Set([
  TaskState.SUCCEEDED,
  TaskState.FAILED,
  TaskState.ERROR,
  TaskState.SKIPPED,
  TaskState.CANCELLED,
]);
