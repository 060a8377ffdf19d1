// Pipelines: the repository's pipelines at its newest commit; one pipeline's DAG, tasks and
// problems (file:line:col), and the Run button.
import { useEffect, useMemo, useState } from "preact/hooks";
import { Severity, type Problem } from "../../gen/odin/common/v1/problem_pb.js";
import type {
  GetPipelineResponse,
  ListPipelinesResponse,
} from "../../gen/odin/pipelineregistry/v1/pipelineregistry_pb.js";
import { errorText, registry, requestId, scheduler, type Session } from "../api.js";
import { DagView } from "../dag-view.js";
import { layoutGraph } from "../graph.js";
import { navigate, onLinkClick, paths } from "../router.js";
import {
  initialInputs,
  ParameterFields,
  submittedValues,
  type ParameterInputs,
} from "../parameters.js";

/** `file:line:col: task: message`, as `odin validate` prints it. */
function problemText(p: Problem): string {
  const where = [p.file, p.line || undefined, p.column || undefined].filter(Boolean).join(":");
  return `${where}: ${p.task ? `${p.task}: ` : ""}${p.message}`;
}

function Problems({ problems }: { problems: Problem[] }) {
  if (problems.length === 0) return null;
  return (
    <ul class="problems" aria-label="Problems">
      {problems.map((p) => (
        <li class={p.severity === Severity.WARNING ? "warning" : "error"}>
          <span class="badge">{p.severity === Severity.WARNING ? "warning" : "error"}</span>{" "}
          <code>{problemText(p)}</code>
        </li>
      ))}
    </ul>
  );
}

/** The list of pipelines. */
export function PipelinesPage() {
  const [list, setList] = useState<ListPipelinesResponse>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    registry.listPipelines({}).then(setList, (err: unknown) => setError(errorText(err)));
  }, []);
  return (
    <main class="page">
      <h1>Pipelines</h1>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {list && (
        <>
          <p class="muted">
            At commit <span class="mono">{list.commit.slice(0, 12)}</span>
          </p>
          <table>
            <thead>
              <tr>
                <th scope="col">Pipeline</th>
                <th scope="col">Name</th>
                <th scope="col">Tasks</th>
                <th scope="col">Valid</th>
              </tr>
            </thead>
            <tbody>
              {list.pipelines.map((p) => (
                <tr data-pipeline={p.path}>
                  <td>
                    <a href={paths.pipeline(p.path)} onClick={onLinkClick}>
                      {p.path}
                    </a>
                  </td>
                  <td>{p.name}</td>
                  <td>{p.taskCount}</td>
                  <td>
                    {p.valid ? "yes" : <span class="badge state-failed">no</span>}
                    {p.problems.length > 0 && <Problems problems={p.problems} />}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </main>
  );
}

/** One pipeline: its DAG, tasks and problems, and Run. */
export function PipelinePage({ path, session }: { path: string; session: Session }) {
  const [res, setRes] = useState<GetPipelineResponse>();
  const [error, setError] = useState<string>();
  const [runError, setRunError] = useState<string>();
  const [starting, setStarting] = useState(false);
  const [labels, setLabels] = useState("");
  const [selected, setSelected] = useState(-1);
  const [inputs, setInputs] = useState<ParameterInputs>({});
  useEffect(() => {
    setRes(undefined);
    registry.getPipeline({ path }).then(
      (got) => {
        setInputs(initialInputs(got.pipeline?.parameters ?? []));
        setRes(got);
      },
      (err: unknown) => setError(errorText(err)),
    );
  }, [path]);
  const params = res?.pipeline?.parameters ?? [];
  const tasks = res?.pipeline?.tasks;
  const layout = useMemo(() => (tasks ? layoutGraph(tasks) : undefined), [tasks]);

  const start = async (): Promise<void> => {
    setStarting(true);
    setRunError(undefined);
    try {
      const parsed = parseLabels(labels);
      const { run } = await scheduler.submitRun({
        pipeline: path,
        commit: res?.commit ?? "",
        labels: parsed,
        requestId: requestId(),
        parameters: submittedValues(params, inputs),
      });
      if (run) navigate(paths.run(run.id));
    } catch (err) {
      setRunError(errorText(err));
    } finally {
      setStarting(false);
    }
  };

  return (
    <main class="page">
      <h1>
        Pipeline <span class="mono">{path}</span>
      </h1>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {res && (
        <>
          <p class="muted">
            {res.pipeline?.name && <>name {res.pipeline.name} · </>}at commit{" "}
            <span class="mono">{res.commit.slice(0, 12)}</span>
          </p>
          <Problems problems={res.problems} />
          <form
            class="run-form"
            onSubmit={(e) => {
              e.preventDefault();
              void start();
            }}
          >
            <ParameterFields
              params={params}
              inputs={inputs}
              onChange={(name, value) => setInputs((cur) => ({ ...cur, [name]: value }))}
            />
            <label>
              Labels
              <input
                value={labels}
                onInput={(e) => setLabels(e.currentTarget.value)}
                placeholder="team=nlp,env=dev"
              />
            </label>
            <button
              type="submit"
              class="primary"
              disabled={!session.canOperate || !res.pipeline || starting}
              title={
                !session.canOperate
                  ? "Your token has the viewer role; running needs operator"
                  : !res.pipeline
                    ? "The pipeline has errors"
                    : ""
              }
            >
              {starting ? "Starting…" : "Run"}
            </button>
            {!session.canOperate && (
              <span class="muted">Read only: your token may not start runs.</span>
            )}
          </form>
          {runError && (
            <p role="alert" class="error">
              {runError}
            </p>
          )}
          {layout && tasks && (
            <div class="pipeline-body">
              <DagView
                layout={layout}
                selected={selected}
                onSelect={setSelected}
                label={`DAG of ${tasks.length} tasks`}
              />
              <table>
                <thead>
                  <tr>
                    <th scope="col">Task</th>
                    <th scope="col">Image</th>
                    <th scope="col">Depends on</th>
                    <th scope="col">Command</th>
                  </tr>
                </thead>
                <tbody>
                  {tasks.slice(0, 500).map((t, i) => (
                    <tr class={layout.nodeOfTask[i] === selected ? "selected" : ""}>
                      <td class="mono">{t.name}</td>
                      <td class="mono">{t.image}</td>
                      <td>{t.depends.join(", ")}</td>
                      <td class="mono">{[...t.command, ...t.args].join(" ")}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {tasks.length > 500 && (
                <p class="muted">and {(tasks.length - 500).toLocaleString()} more tasks</p>
              )}
            </div>
          )}
        </>
      )}
    </main>
  );
}

/** `a=b,c=d` → labels; throws with what is wrong. */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`label "${part}": write key=value`);
    labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return labels;
}
