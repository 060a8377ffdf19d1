// Triggers: the commit triggers pipelines declare (`triggers:` in main.yml), each with its paths,
// policy and parameters, the last commit it started a run for, and its newest runs (each pinned
// to its commit). Triggers change with pushes: the page asks again every ten seconds while shown.
import { useEffect, useState } from "preact/hooks";
import type { Run } from "../../gen/odin/common/v1/run_pb.js";
import {
  TriggerPolicy,
  type ListTriggersResponse,
  type Trigger,
} from "../../gen/odin/dagscheduler/v1/dagscheduler_pb.js";
import { errorText, scheduler } from "../api.js";
import { runStateClass, runStateName, when } from "../format.js";
import { parameterText } from "../parameters.js";
import { onLinkClick, paths } from "../router.js";

const REFRESH_MS = 10_000;
/** Runs shown per trigger. */
const RECENT = 5;

/** The Triggers page (`/triggers`). */
export function TriggersPage() {
  const [list, setList] = useState<ListTriggersResponse>();
  const [runs, setRuns] = useState<Record<string, Run[]>>({});
  const [error, setError] = useState<string>();
  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const load = async (): Promise<void> => {
      try {
        const got = await scheduler.listTriggers({});
        if (stopped) return;
        setList(got);
        setError(undefined);
        // Each trigger's newest runs, selected by its runs' label.
        const each = await Promise.all(
          got.triggers.map(async (t) => {
            const res = await scheduler.listRuns({
              labelSelector: t.runSelector,
              pageSize: RECENT,
            });
            return [t.name, res.runs] as const;
          }),
        );
        if (!stopped) setRuns(Object.fromEntries(each));
      } catch (err) {
        if (stopped) return;
        setError(errorText(err));
      }
      timer = window.setTimeout(() => void load(), document.hidden ? 30_000 : REFRESH_MS);
    };
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);

  return (
    <main class="page">
      <h1>Triggers</h1>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {list === undefined ? (
        !error && <p aria-live="polite">Loading…</p>
      ) : (
        <>
          <p class="muted">
            {list.checkedCommit ? (
              <>
                Commits checked up to <span class="mono">{list.checkedCommit.slice(0, 12)}</span>
              </>
            ) : (
              "No commit checked yet"
            )}
            . A push or sync that changes a trigger's paths starts a run of its pipeline at that
            commit.
          </p>
          {list.triggers.length === 0 ? (
            <p>
              No pipeline declares a trigger. Add <code>triggers:</code> to a pipeline's main.yml.
            </p>
          ) : (
            <table class="triggers">
              <thead>
                <tr>
                  <th scope="col">Trigger</th>
                  <th scope="col">Pipeline</th>
                  <th scope="col">Paths</th>
                  <th scope="col">Policy</th>
                  <th scope="col">Parameters</th>
                  <th scope="col">Last commit</th>
                  <th scope="col">Newest runs</th>
                </tr>
              </thead>
              <tbody>
                {list.triggers.map((t) => (
                  <TriggerRow t={t} runs={runs[t.name]} />
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </main>
  );
}

function TriggerRow({ t, runs }: { t: Trigger; runs: Run[] | undefined }) {
  const params = Object.entries(t.parameters ?? {});
  return (
    <tr data-trigger={t.name}>
      <td class="mono">{t.name}</td>
      <td>
        <a href={paths.pipeline(t.pipeline)} onClick={onLinkClick}>
          {t.pipeline}
        </a>
      </td>
      <td class="labels">
        {t.paths.map((p) => (
          <code>{p}</code>
        ))}
      </td>
      <td>{t.policy === TriggerPolicy.EACH ? "each matching commit" : "newest matching commit"}</td>
      <td class="labels">
        {params.length === 0 ? (
          <span class="muted">defaults</span>
        ) : (
          params.map(([k, v]) => (
            <code>
              {k}={parameterText(v)}
            </code>
          ))
        )}
      </td>
      <td>
        {t.lastCommit ? (
          <>
            <span class="mono">{t.lastCommit.slice(0, 12)}</span>
            <div class="muted">by {t.lastAuthor}</div>
          </>
        ) : (
          <span class="muted">none yet</span>
        )}
        {t.lastError && <div class="error">{t.lastError}</div>}
      </td>
      <td>
        {runs && runs.length > 0 && (
          <ul class="trigger-runs">
            {runs.map((r) => (
              <li data-run={r.id}>
                <a href={paths.run(r.id)} onClick={onLinkClick}>
                  {r.id}
                </a>{" "}
                <span class={runStateClass(r.state)}>{runStateName(r.state)}</span>{" "}
                <span class="mono muted" title={`commit ${r.commit}`}>
                  {r.commit.slice(0, 7)}
                </span>{" "}
                <span class="muted">{when(r.createTime)}</span>
              </li>
            ))}
          </ul>
        )}
        <a
          href={paths.runs(new URLSearchParams({ label: t.runSelector }).toString())}
          onClick={onLinkClick}
        >
          {t.runsStarted} run{t.runsStarted === 1 ? "" : "s"} started
          <span class="sr-only"> by {t.name}</span>
        </a>
      </td>
    </tr>
  );
}
