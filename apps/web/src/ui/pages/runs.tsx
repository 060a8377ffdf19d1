// Runs: newest first, filtered by pipeline, state and labels, a page at a time, live from
// WatchRuns (the page, then every run created or changed — its progress too — as it happens).
import { useEffect, useRef, useState } from "preact/hooks";
import { RunState, type Run, type TaskCounts } from "../../gen/odin/common/v1/run_pb.js";
import { errorText, scheduler } from "../api.js";
import { runStateClass, runStateName, span, when } from "../format.js";
import { navigate, onLinkClick, paths } from "../router.js";

const PAGE_SIZE = 50;

/** Finished tasks of a run: succeeded, failed, errored, skipped or cancelled. */
function finishedOf(c: TaskCounts): number {
  return c.succeeded + c.failed + c.error + c.skipped + c.cancelled;
}

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
  const [updates, setUpdates] = useState(0);
  const history = useRef<string[]>([]);

  useEffect(() => {
    const abort = new AbortController();
    // Durations of running runs tick.
    const clock = window.setInterval(() => setNow(Date.now()), 1000);
    (async () => {
      for (let attempt = 0; !abort.signal.aborted; attempt++) {
        try {
          const states = state ? [RunState[state.toUpperCase() as keyof typeof RunState]] : [];
          let shown: Run[] = [];
          for await (const m of scheduler.watchRuns(
            {
              pipeline,
              states: states.filter((s) => s !== undefined),
              labelSelector: label,
              pageSize: PAGE_SIZE,
              pageToken: page,
            },
            { signal: abort.signal },
          )) {
            attempt = 0;
            const e = m.event;
            if (e.case === "page") {
              shown = e.value.runs;
              setNext(e.value.nextPageToken);
              setError(undefined);
            } else if (e.case === "run") {
              const i = shown.findIndex((r) => r.id === e.value.id);
              if (i >= 0) shown = shown.map((r, k) => (k === i ? e.value : r));
              // A new run belongs on the first page only (older pages keep their place).
              else if (page === "") shown = [e.value, ...shown].slice(0, PAGE_SIZE);
            } else if (e.case === "removedRunId") {
              shown = shown.filter((r) => r.id !== e.value);
            }
            setRuns(shown);
            setUpdates((u) => u + 1);
          }
        } catch (err) {
          if (abort.signal.aborted) return;
          setError(errorText(err));
        }
        // The stream ended or broke: a fresh call gets a fresh page.
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
      }
    })().catch((err: unknown) => setError(errorText(err)));
    return () => {
      abort.abort();
      clearInterval(clock);
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
    <main class="page" data-updates={updates}>
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
              const done = r.taskCounts ? finishedOf(r.taskCounts) : undefined;
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
                    {done !== undefined && (
                      <progress
                        max={r.taskCount}
                        value={done}
                        aria-label={`${done} of ${r.taskCount} tasks finished`}
                      />
                    )}{" "}
                    {done !== undefined ? `${done}/${r.taskCount}` : `–/${r.taskCount}`}
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
