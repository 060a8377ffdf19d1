// Deep links: every page has its own URL (history API; the server answers every non-file path
// with index.html).
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

/** Goes to `url` inside the app without reloading. */
export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  for (const fn of listeners) fn();
}

/** The current location; re-renders on navigation. */
export function useLocation(): URL {
  const [, setVersion] = useState(0);
  useEffect(() => {
    const update = (): void => setVersion((v) => v + 1);
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return new URL(location.href);
}

/** Handles a link click inside the app (plain left clicks only, so new tabs still work). */
export function onLinkClick(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLElement).closest("a");
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href") ?? "/");
}

/** Path of a page: runs, a run, a task of a run, pipelines, schedules, triggers. */
export const paths = {
  runs: (query = ""): string => `/runs${query ? `?${query}` : ""}`,
  run: (id: string): string => `/runs/${encodeURIComponent(id)}`,
  task: (id: string, task: string): string =>
    `/runs/${encodeURIComponent(id)}/tasks/${encodeURIComponent(task)}`,
  pipelines: (): string => "/pipelines",
  pipeline: (path: string): string =>
    `/pipelines/${path.split("/").map(encodeURIComponent).join("/")}`,
  schedules: (): string => "/schedules",
  /** A schedule's page: its name is one path segment (a declared one's `/` and `:` escaped). */
  schedule: (name: string): string => `/schedules/${encodeURIComponent(name)}`,
  triggers: (): string => "/triggers",
};
