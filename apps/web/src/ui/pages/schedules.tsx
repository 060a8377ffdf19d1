// Schedules: every cron schedule, declared in a pipeline's `schedules:` or created, with its next
// tick, last run, state, policies, parameters and webhooks (by name; their URLs are secrets the
// server never sends); one schedule's page with its recent runs. Operators create, pause, resume
// and delete; viewers read. ListSchedules is a unary call: the page asks again every few
// seconds while it is shown, and just after the soonest tick.
import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import type { JsonObject } from "@bufbuild/protobuf";
import type { Run } from "../../gen/odin/common/v1/run_pb.js";
import type { Parameter } from "../../gen/odin/common/v1/pipeline_pb.js";
import type { PipelineSummary } from "../../gen/odin/pipelineregistry/v1/pipelineregistry_pb.js";
import {
  CatchupPolicy,
  ConcurrencyPolicy,
  type Schedule,
} from "../../gen/odin/dagscheduler/v1/dagscheduler_pb.js";
import { errorText, registry, requestId, scheduler, type Session } from "../api.js";
import { fromNow, ms, runStateClass, runStateName, when } from "../format.js";
import {
  initialInputs,
  ParameterFields,
  parameterText,
  submittedValues,
  type ParameterInputs,
} from "../parameters.js";
import { navigate, onLinkClick, paths } from "../router.js";

/** Longest wait between two listings while the page is shown. */
const REFRESH_MS = 5000;

/** `skip`, `forbid`: a policy (its enum name) as main.yml and the CLI write it. */
function policyName(name: string | undefined, unset: string): string {
  return name === undefined || name === "UNSPECIFIED" ? unset : name.toLowerCase();
}

/** `a=1 b=x`, as `odin status` prints parameters. */
function ParametersText({ values }: { values: JsonObject | undefined }) {
  const entries = Object.entries(values ?? {});
  if (entries.length === 0) return <span class="muted">defaults</span>;
  return (
    <span class="labels">
      {entries.map(([k, v]) => (
        <code>
          {k}={parameterText(v)}
        </code>
      ))}
    </span>
  );
}

/** Webhook names and the end states each is posted for (never a URL: the server sends none). */
function NotifyText({ s }: { s: Schedule }) {
  if (s.notify.length === 0) return <span class="muted">pipeline's only</span>;
  return (
    <span class="labels">
      {s.notify.map((n) => (
        <code>
          {n.webhookSecret}
          {n.on.length > 0 && n.on.length < 3 ? `:${n.on.join(",")}` : ""}
        </code>
      ))}
    </span>
  );
}

/** The Runs page filtered to a schedule's runs. */
function runsOf(s: Schedule): string {
  return paths.runs(new URLSearchParams({ label: s.runSelector }).toString());
}

/** Every schedule, asked for again every few seconds (and just after the soonest tick). */
function useSchedules(): {
  schedules: Schedule[] | undefined;
  error: string | undefined;
  now: number;
  replace: (s: Schedule) => void;
  remove: (name: string) => void;
  refresh: () => void;
} {
  const [schedules, setSchedules] = useState<Schedule[]>();
  const [error, setError] = useState<string>();
  const [now, setNow] = useState(Date.now());
  const [asked, setAsked] = useState(0);
  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const load = async (): Promise<void> => {
      let wait = REFRESH_MS;
      try {
        const { schedules: got } = await scheduler.listSchedules({});
        if (stopped) return;
        setSchedules(got);
        setError(undefined);
        // The soonest tick's run shows up just after it.
        const soonest = Math.min(
          ...got.filter((s) => !s.paused).map((s) => ms(s.nextTick) ?? Infinity),
        );
        wait = Math.max(2000, Math.min(REFRESH_MS, soonest + 700 - Date.now()));
      } catch (err) {
        if (stopped) return;
        setError(errorText(err));
      }
      // A hidden tab asks less often.
      timer = window.setTimeout(() => void load(), document.hidden ? 30_000 : wait);
    };
    void load();
    const clock = window.setInterval(() => setNow(Date.now()), 1000);
    const visible = (): void => {
      if (!document.hidden) {
        clearTimeout(timer);
        void load();
      }
    };
    document.addEventListener("visibilitychange", visible);
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearInterval(clock);
      document.removeEventListener("visibilitychange", visible);
    };
  }, [asked]);
  return {
    schedules,
    error,
    now,
    replace: (s) =>
      setSchedules((cur) => {
        const list = (cur ?? []).filter((x) => x.name !== s.name);
        return [...list, s].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      }),
    remove: (name) => setSchedules((cur) => cur?.filter((x) => x.name !== name)),
    refresh: () => setAsked((a) => a + 1),
  };
}

/** Pause or resume, and delete (created schedules only: a declared one lives in main.yml). */
function ScheduleActions({
  s,
  onChanged,
  onRemoved,
  onError,
}: {
  s: Schedule;
  onChanged: (s: Schedule) => void;
  onRemoved: () => void;
  onError: (message: string | undefined) => void;
}) {
  const [busy, setBusy] = useState(false);
  const act = async (what: "pause" | "resume" | "delete"): Promise<void> => {
    if (what === "delete" && !confirm(`Delete schedule ${s.name}? Its runs stay.`)) return;
    setBusy(true);
    onError(undefined);
    try {
      if (what === "delete") {
        await scheduler.deleteSchedule({ name: s.name });
        onRemoved();
      } else {
        const res =
          what === "pause"
            ? await scheduler.pauseSchedule({ name: s.name })
            : await scheduler.resumeSchedule({ name: s.name });
        if (res.schedule) onChanged(res.schedule);
      }
    } catch (err) {
      onError(`${s.name}: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="actions">
      <button disabled={busy} onClick={() => void act(s.paused ? "resume" : "pause")}>
        {s.paused ? "Resume" : "Pause"}
        <span class="sr-only"> {s.name}</span>
      </button>
      {!s.declared && (
        <button disabled={busy} onClick={() => void act("delete")}>
          Delete<span class="sr-only"> {s.name}</span>
        </button>
      )}
    </span>
  );
}

function StateBadge({ s }: { s: Schedule }) {
  return (
    <span class={s.paused ? "badge state-cancelled" : "badge state-running"}>
      {s.paused ? "paused" : "active"}
    </span>
  );
}

/** The Schedules page (`/schedules`), or one schedule's (`/schedules/<name>`). */
export function SchedulesPage({ name, session }: { name?: string; session: Session }) {
  const { schedules, error, now, replace, remove, refresh } = useSchedules();
  const [actionError, setActionError] = useState<string>();
  const errors = (
    <>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {actionError && (
        <p role="alert" class="error">
          {actionError}
        </p>
      )}
    </>
  );
  if (name !== undefined)
    return (
      <ScheduleDetail
        name={name}
        schedule={schedules?.find((s) => s.name === name)}
        loaded={schedules !== undefined}
        now={now}
        session={session}
        errors={errors}
        actions={(s) => (
          <ScheduleActions
            s={s}
            onChanged={replace}
            onRemoved={() => (remove(s.name), navigate(paths.schedules()))}
            onError={setActionError}
          />
        )}
      />
    );
  return (
    <main class="page">
      <h1>Schedules</h1>
      {errors}
      {session.canOperate ? (
        <CreateSchedule
          onCreated={(s) => {
            replace(s);
            refresh();
            navigate(paths.schedule(s.name));
          }}
        />
      ) : (
        <p class="muted">
          Read only: your token may not create, pause, resume or delete schedules.
        </p>
      )}
      {schedules === undefined ? (
        !error && <p aria-live="polite">Loading…</p>
      ) : schedules.length === 0 ? (
        <p>
          No schedules yet. Declare one in a pipeline's <code>schedules:</code>
          {session.canOperate ? " or create one above" : ""}.
        </p>
      ) : (
        <table class="schedules">
          <thead>
            <tr>
              <th scope="col">Schedule</th>
              <th scope="col">Pipeline</th>
              <th scope="col">Cron</th>
              <th scope="col">Next tick</th>
              <th scope="col">Last run</th>
              <th scope="col">State</th>
              <th scope="col">Policies</th>
              <th scope="col">Parameters</th>
              <th scope="col">Notifies</th>
              {session.canOperate && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {schedules.map((s) => (
              <tr key={s.name} data-schedule={s.name} data-state={s.paused ? "paused" : "active"}>
                <td>
                  <a href={paths.schedule(s.name)} onClick={onLinkClick}>
                    {s.name}
                  </a>
                  {s.declared && <div class="muted">declared in main.yml</div>}
                </td>
                <td>
                  <a href={paths.pipeline(s.pipeline)} onClick={onLinkClick}>
                    {s.pipeline}
                  </a>
                </td>
                <td>
                  <code>{s.cron}</code>
                  <div class="muted">{s.timezone}</div>
                </td>
                <td title={when(s.nextTick)}>{s.paused ? "" : fromNow(s.nextTick, now)}</td>
                <td>
                  {s.lastRunId ? (
                    <a href={paths.run(s.lastRunId)} onClick={onLinkClick}>
                      {s.lastRunId}
                    </a>
                  ) : (
                    <span class="muted">none yet</span>
                  )}
                  <div>
                    <a href={runsOf(s)} onClick={onLinkClick}>
                      All runs<span class="sr-only"> of {s.name}</span>
                    </a>
                  </div>
                </td>
                <td>
                  <StateBadge s={s} />
                  {s.skippedTicks > 0 && <div class="muted">{s.skippedTicks} skipped</div>}
                  {s.lastError && <div class="error">{s.lastError}</div>}
                </td>
                <td>
                  catch-up {policyName(CatchupPolicy[s.catchup], "skip")}
                  <br />
                  concurrency {policyName(ConcurrencyPolicy[s.concurrency], "allow")}
                </td>
                <td>
                  <ParametersText values={s.parameters} />
                </td>
                <td>
                  <NotifyText s={s} />
                </td>
                {session.canOperate && (
                  <td>
                    <ScheduleActions
                      s={s}
                      onChanged={replace}
                      onRemoved={() => remove(s.name)}
                      onError={setActionError}
                    />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}

/** One schedule: what it is, where it stands, its newest runs. */
function ScheduleDetail({
  name,
  schedule: s,
  loaded,
  now,
  session,
  errors,
  actions,
}: {
  name: string;
  schedule: Schedule | undefined;
  loaded: boolean;
  now: number;
  session: Session;
  errors: ComponentChildren;
  actions: (s: Schedule) => ComponentChildren;
}) {
  const [runs, setRuns] = useState<Run[]>();
  const selector = s?.runSelector ?? "";
  const lastRun = s?.lastRunId ?? "";
  useEffect(() => {
    if (!selector) return;
    let stopped = false;
    scheduler.listRuns({ labelSelector: selector, pageSize: 10 }).then(
      (res) => stopped || setRuns(res.runs),
      () => undefined,
    );
    return () => {
      stopped = true;
    };
    // A new last run: read the newest runs again.
  }, [selector, lastRun]);
  return (
    <main class="page" data-schedule={name}>
      <p>
        <a href={paths.schedules()} onClick={onLinkClick}>
          ← All schedules
        </a>
      </p>
      <div class="run-head">
        <h1>
          Schedule <span class="mono">{name}</span>
        </h1>
        {s && <StateBadge s={s} />}
        {s && session.canOperate && actions(s)}
      </div>
      {errors}
      {!loaded ? (
        <p aria-live="polite">Loading…</p>
      ) : !s ? (
        <p role="alert" class="error">
          No schedule {name}: it was deleted, or never made.
        </p>
      ) : (
        <>
          <dl class="facts">
            <dt>Pipeline</dt>
            <dd>
              <a href={paths.pipeline(s.pipeline)} onClick={onLinkClick}>
                {s.pipeline}
              </a>
            </dd>
            <dt>Cron</dt>
            <dd>
              <code>{s.cron}</code> in {s.timezone}
            </dd>
            <dt>Next tick</dt>
            <dd data-testid="next-tick">
              {s.paused ? "none while paused" : `${when(s.nextTick)} (${fromNow(s.nextTick, now)})`}
            </dd>
            <dt>Last run</dt>
            <dd data-testid="last-run">
              {s.lastRunId ? (
                <>
                  <a href={paths.run(s.lastRunId)} onClick={onLinkClick}>
                    {s.lastRunId}
                  </a>{" "}
                  <span class="muted">tick {when(s.lastTick)}</span>
                </>
              ) : (
                "none yet"
              )}
            </dd>
            {(s.skippedTicks > 0 || s.lastError) && (
              <>
                <dt>Skipped ticks</dt>
                <dd>
                  {s.skippedTicks}
                  {s.lastError && <div class="error">{s.lastError}</div>}
                </dd>
              </>
            )}
            <dt>Policies</dt>
            <dd>
              catch-up {policyName(CatchupPolicy[s.catchup], "skip")}, concurrency{" "}
              {policyName(ConcurrencyPolicy[s.concurrency], "allow")}
            </dd>
            <dt>Parameters</dt>
            <dd>
              <ParametersText values={s.parameters} />
            </dd>
            <dt>Notifies</dt>
            <dd>
              <NotifyText s={s} />
            </dd>
            <dt>Made</dt>
            <dd>
              {s.declared ? `declared in ${s.pipeline}/main.yml` : `by ${s.createdBy}`},{" "}
              {when(s.createTime)}
            </dd>
            <dt>Runs selected by</dt>
            <dd>
              <code>{s.runSelector}</code>
            </dd>
          </dl>
          <h2>Newest runs</h2>
          {runs === undefined ? (
            <p aria-live="polite">Loading…</p>
          ) : runs.length === 0 ? (
            <p>No runs yet.</p>
          ) : (
            <ul class="schedule-runs">
              {runs.map((r) => (
                <li data-run={r.id}>
                  <a href={paths.run(r.id)} onClick={onLinkClick}>
                    {r.id}
                  </a>{" "}
                  <span class={runStateClass(r.state)}>{runStateName(r.state)}</span>{" "}
                  <span class="muted">{when(r.createTime)}</span>
                </li>
              ))}
            </ul>
          )}
          <p>
            <a href={runsOf(s)} onClick={onLinkClick} data-testid="schedule-runs">
              All runs of {s.name}
            </a>
          </p>
        </>
      )}
    </main>
  );
}

/** A field of the create form an error can be about ("": the form as a whole). */
type FormField = "name" | "pipeline" | "cron" | "timezone" | "notify" | "parameters" | "";

/** An input's label above it, its help and, when there is one, the error about it below. */
function Field({
  id,
  label,
  help,
  error,
  children,
}: {
  id: string;
  label: string;
  help?: string;
  error?: string | false;
  children: ComponentChildren;
}) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {help && (
        <small id={`${id}-help`} class="muted">
          {help}
        </small>
      )}
      {error && (
        <span id="create-error" role="alert" class="error">
          {error}
        </span>
      )}
    </div>
  );
}

/** Which field a CreateSchedule error is about, from the server's message. */
function fieldOf(message: string): FormField {
  if (/schedule name|schedule \S+ exists/.test(message)) return "name";
  if (/cron /.test(message)) return "cron";
  if (/time zone/.test(message)) return "timezone";
  if (/^notify|webhook/.test(message)) return "notify";
  if (/parameter/.test(message)) return "parameters";
  if (/pipeline/.test(message)) return "pipeline";
  return "";
}

/**
 * Webhooks as `odin schedule create --notify` takes them, separated by spaces: `team-slack
 * oncall:failed,cancelled` (a name alone posts on every end). The server checks the names and states.
 */
export function notifyTargets(text: string): { webhookSecret: string; on: string[] }[] {
  return text
    .split(/[\s;]+/)
    .filter(Boolean)
    .map((t) => {
      const colon = t.indexOf(":");
      return colon < 0
        ? { webhookSecret: t, on: [] }
        : {
            webhookSecret: t.slice(0, colon),
            on: t
              .slice(colon + 1)
              .split(",")
              .filter(Boolean),
          };
    });
}

/** The create form: name, pipeline, cron, time zone, policies, webhooks, paused and the pipeline's parameters. */
function CreateSchedule({ onCreated }: { onCreated: (s: Schedule) => void }) {
  const [pipelines, setPipelines] = useState<PipelineSummary[]>();
  const [name, setName] = useState("");
  const [pipeline, setPipeline] = useState("");
  const [cron, setCron] = useState("");
  const [timezone, setTimezone] = useState("");
  const [catchup, setCatchup] = useState(CatchupPolicy.SKIP);
  const [concurrency, setConcurrency] = useState(ConcurrencyPolicy.ALLOW);
  const [notify, setNotify] = useState("");
  const [paused, setPaused] = useState(false);
  const [params, setParams] = useState<readonly Parameter[]>([]);
  const [inputs, setInputs] = useState<ParameterInputs>({});
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    registry.listPipelines({}).then(
      (res) => setPipelines(res.pipelines.filter((p) => p.valid)),
      (err: unknown) => setError(errorText(err)),
    );
  }, []);
  useEffect(() => {
    setParams([]);
    if (!pipeline) return;
    let stopped = false;
    registry.getPipeline({ path: pipeline }).then(
      (res) => {
        if (stopped) return;
        const declared = res.pipeline?.parameters ?? [];
        setInputs(initialInputs(declared));
        setParams(declared);
      },
      (err: unknown) => stopped || setError(errorText(err)),
    );
    return () => {
      stopped = true;
    };
  }, [pipeline]);
  // The browser's IANA zones, offered as the time zone is typed (UTC is not always among them).
  const zones = useMemo(() => [...new Set(["UTC", ...Intl.supportedValuesOf("timeZone")])], []);

  const create = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const res = await scheduler.createSchedule({
        name: name.trim(),
        pipeline,
        cron: cron.trim(),
        timezone: timezone.trim(),
        catchup,
        concurrency,
        notify: notifyTargets(notify),
        paused,
        parameters: submittedValues(params, inputs),
        requestId: requestId(),
      });
      if (res.schedule) onCreated(res.schedule);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const field = error ? fieldOf(error) : "";
  /** What describes an input: its help, and the error when it is about it. */
  const described = (id: string, of: FormField, help: boolean) => {
    const ids = [help ? `${id}-help` : "", error && field === of ? "create-error" : ""]
      .filter(Boolean)
      .join(" ");
    return {
      id,
      "aria-describedby": ids || undefined,
      "aria-invalid": error && field === of ? true : undefined,
    };
  };

  return (
    <details class="create-schedule" open={pipelines !== undefined && pipelines.length > 0}>
      <summary>Create a schedule</summary>
      <form
        class="run-form"
        aria-label="Create a schedule"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <Field
          id="schedule-name"
          label="Name"
          error={field === "name" && error}
          help="lower-case letters, digits, -"
        >
          <input
            {...described("schedule-name", "name", true)}
            value={name}
            required
            maxLength={63}
            placeholder="nightly-eu"
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </Field>
        <Field id="schedule-pipeline" label="Pipeline" error={field === "pipeline" && error}>
          <select
            {...described("schedule-pipeline", "pipeline", false)}
            value={pipeline}
            required
            onChange={(e) => setPipeline(e.currentTarget.value)}
          >
            <option value="">choose…</option>
            {(pipelines ?? []).map((p) => (
              <option value={p.path}>{p.path}</option>
            ))}
          </select>
        </Field>
        <Field
          id="schedule-cron"
          label="Cron"
          error={field === "cron" && error}
          help="minute hour day month weekday; six fields: seconds first"
        >
          <input
            {...described("schedule-cron", "cron", true)}
            value={cron}
            required
            class="mono"
            placeholder="0 2 * * *"
            onInput={(e) => setCron(e.currentTarget.value)}
          />
        </Field>
        <Field
          id="schedule-timezone"
          label="Time zone"
          error={field === "timezone" && error}
          help="IANA name; empty: UTC"
        >
          <input
            {...described("schedule-timezone", "timezone", true)}
            value={timezone}
            placeholder="UTC"
            list="time-zones"
            onInput={(e) => setTimezone(e.currentTarget.value)}
          />
        </Field>
        <datalist id="time-zones">
          {zones.map((z) => (
            <option value={z} />
          ))}
        </datalist>
        <label>
          Catch-up
          <select
            name="catchup"
            value={String(catchup)}
            onChange={(e) => setCatchup(Number(e.currentTarget.value))}
          >
            <option value={String(CatchupPolicy.SKIP)}>skip missed ticks</option>
            <option value={String(CatchupPolicy.ONCE)}>run missed ticks once</option>
          </select>
        </label>
        <label>
          Concurrency
          <select
            name="concurrency"
            value={String(concurrency)}
            onChange={(e) => setConcurrency(Number(e.currentTarget.value))}
          >
            <option value={String(ConcurrencyPolicy.ALLOW)}>allow overlapping runs</option>
            <option value={String(ConcurrencyPolicy.FORBID)}>forbid: skip while one runs</option>
            <option value={String(ConcurrencyPolicy.REPLACE)}>replace the running one</option>
          </select>
        </label>
        <Field
          id="schedule-notify"
          label="Webhooks"
          error={field === "notify" && error}
          help="secret names, space-separated; name:failed,cancelled for some ends only"
        >
          <input
            {...described("schedule-notify", "notify", true)}
            value={notify}
            class="mono"
            placeholder="team-slack oncall:failed"
            onInput={(e) => setNotify(e.currentTarget.value)}
          />
        </Field>
        <label class="check">
          <input
            type="checkbox"
            name="paused"
            checked={paused}
            onChange={(e) => setPaused(e.currentTarget.checked)}
          />
          Create paused
        </label>
        <ParameterFields
          params={params}
          inputs={inputs}
          onChange={(n, value) => setInputs((cur) => ({ ...cur, [n]: value }))}
        />
        {error && (field === "parameters" || field === "") && (
          <p id="create-error" role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Creating…" : "Create"}
        </button>
      </form>
    </details>
  );
}
