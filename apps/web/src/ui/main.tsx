// The web UI's shell: session (token prompt, auth-off banner), navigation and pages.
import "./style.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import {
  errorText,
  probeSession,
  provisionalSession,
  storedToken,
  storeToken,
  type Session,
} from "./api.js";
import { PipelinePage, PipelinesPage } from "./pages/pipelines.js";
import { openRunEarly, RunPage } from "./pages/run.js";
import { RunsPage } from "./pages/runs.js";
import { SchedulesPage } from "./pages/schedules.js";
import { TriggersPage } from "./pages/triggers.js";
import { onLinkClick, useLocation } from "./router.js";

/** The sections of the navigation bar, in order: path and label. */
const sections = [
  ["runs", "Runs"],
  ["pipelines", "Pipelines"],
  ["schedules", "Schedules"],
  ["triggers", "Triggers"],
] as const;
type Section = (typeof sections)[number][0];

function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [error, setError] = useState<string>();
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    probeSession().then(setSession, (err: unknown) => setError(errorText(err)));
  }, [attempt]);
  const url = useLocation();

  if (error)
    return (
      <main class="page">
        <p role="alert" class="error">
          Cannot reach Odin: {error}
        </p>
        <button onClick={() => (setError(undefined), setAttempt((a) => a + 1))}>Try again</button>
      </main>
    );
  if (session?.needsToken) return <SignIn onDone={() => setAttempt((a) => a + 1)} />;
  // Pages start loading while the server is asked who we are (their calls fail as
  // unauthenticated, and give way to the sign-in form, if a token is needed); actions stay
  // disabled until it answers.
  const known = session ?? provisionalSession;

  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  let page;
  let current: Section = "runs";
  if (parts[0] === "runs" && parts[1]) {
    page = (
      <RunPage
        runId={parts[1]}
        task={parts[2] === "tasks" ? parts[3] : undefined}
        session={known}
      />
    );
  } else if (parts[0] === "pipelines") {
    current = "pipelines";
    page =
      parts.length > 1 ? (
        <PipelinePage path={parts.slice(1).join("/")} session={known} />
      ) : (
        <PipelinesPage />
      );
  } else if (parts[0] === "schedules") {
    current = "schedules";
    page = <SchedulesPage name={parts[1]} session={known} />;
  } else if (parts[0] === "triggers") {
    current = "triggers";
    page = <TriggersPage />;
  } else {
    page = <RunsPage query={url.searchParams} />;
  }
  return (
    <>
      <header class="top">
        <a href="/runs" class="brand" onClick={onLinkClick}>
          Odin
        </a>
        <nav aria-label="Main">
          {sections.map(([section, label]) => (
            <a
              key={section}
              href={`/${section}`}
              onClick={onLinkClick}
              aria-current={current === section ? "page" : undefined}
            >
              {label}
            </a>
          ))}
        </nav>
        <span class="who">
          {!session || session.authOff
            ? ""
            : session.canOperate
              ? "signed in (may run)"
              : "signed in (read only)"}
          {session && storedToken() !== null && !session.authOff && (
            <button class="link" onClick={() => (storeToken(null), setAttempt((a) => a + 1))}>
              Sign out
            </button>
          )}
        </span>
      </header>
      {session?.authOff && (
        <div class="banner" role="status">
          Authentication is off: anyone who can reach this address can run and cancel pipelines.
          Start the server with a tokens file to require tokens.
        </div>
      )}
      {page}
    </>
  );
}

function SignIn({ onDone }: { onDone: () => void }) {
  const [token, setToken] = useState("");
  return (
    <main class="page signin">
      <h1>Sign in to Odin</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          storeToken(token.trim());
          onDone();
        }}
      >
        <label for="token">API token</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          required
        />
        <p class="hint">
          The same token the odin command takes with --token. It stays in this browser until you
          sign out.
        </p>
        {storedToken() !== null && (
          <p role="alert" class="error">
            The server did not accept the stored token; enter another.
          </p>
        )}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

// A run's address: its stream is asked for now, while the app is drawn for the first time.
const opened = /^\/runs\/([^/]+)/.exec(location.pathname);
if (opened) openRunEarly(decodeURIComponent(opened[1]!));
render(<App />, document.getElementById("app")!);
