// Schedules: a pipeline run on a cron schedule, declared in `main.yml` (`schedules:`) or created
// with `odin schedule create`. The cron grammar, time zones and the tick arithmetic are croner's
// (a maintained parser without dependencies; time zones through the runtime's Intl data, so
// daylight-saving changes follow the IANA database Node ships with).
import { Cron } from "croner";
import type { NotifyTarget } from "./model.js";
import type { ParameterValue } from "./parameters.js";

/** After downtime: `skip` the ticks missed, or run `once` for all of them. */
export const catchupPolicies = ["skip", "once"] as const;
export type CatchupPolicy = (typeof catchupPolicies)[number];

/** While the schedule's last run is active: start another (`allow`), skip the tick (`forbid`), or cancel it and start (`replace`). */
export const concurrencyPolicies = ["allow", "forbid", "replace"] as const;
export type ConcurrencyPolicy = (typeof concurrencyPolicies)[number];

/** How late a tick may still start under `catchup: skip` (a scheduler busy or restarting). */
export const tickGraceMs = 60_000;

/** A schedule's name (declared or created): a DNS label, so it reads the same in labels and keys. */
export const scheduleNamePattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** One schedule of a pipeline. */
export interface ScheduleSpec {
  name: string;
  /** Five fields (minute hour day-of-month month day-of-week), or six with leading seconds. */
  cron: string;
  /** IANA time zone the fields are read in (`UTC` by default). */
  timezone: string;
  /** Values of the pipeline's parameters for each run (typed; unset ones take their defaults). */
  parameters: Record<string, ParameterValue>;
  catchup: CatchupPolicy;
  concurrency: ConcurrencyPolicy;
  /** Webhooks its runs post to when they end, besides the pipeline's `notify:`; absent when none. */
  notify?: NotifyTarget[];
}

/** Why a time zone is not one, or undefined when it is an IANA zone the runtime knows. */
export function checkTimezone(timezone: string): string | undefined {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    return undefined;
  } catch {
    return `time zone "${timezone}" is not an IANA time zone; write one such as UTC, Europe/Berlin or America/New_York`;
  }
}

/** Why a cron expression is not one, or undefined when it is (5 fields, or 6 with seconds first). */
export function checkCron(cron: string): string | undefined {
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6)
    return `cron "${cron}" has ${fields} field${fields === 1 ? "" : "s"}; write five: minute hour day-of-month month day-of-week (e.g. "0 2 * * *"), or six with seconds first`;
  try {
    new Cron(cron, { paused: true, mode: "5-or-6-parts" });
    return undefined;
  } catch (err) {
    const why = (err as Error).message.replace(/^CronPattern:\s*/, "");
    return `cron "${cron}" is not valid: ${why}`;
  }
}

/** The cron ticks of a schedule, in epoch milliseconds. Throws on an expression `checkCron` refuses. */
export class CronTicks {
  private readonly cron: Cron;

  constructor(cron: string, timezone: string) {
    this.cron = new Cron(cron, { paused: true, mode: "5-or-6-parts", timezone });
  }

  /** The first tick strictly after `after`, or undefined when there is none. */
  next(after: number): number | undefined {
    return this.cron.nextRun(new Date(after))?.getTime();
  }

  /** The newest tick in (`after`, `until`], or undefined when none fell in it. */
  newestDue(after: number, until: number): number | undefined {
    const last = this.previous(until);
    return last !== undefined && last > after ? last : undefined;
  }

  /** The last tick at or before `at`, or undefined when there is none. */
  previous(at: number): number | undefined {
    // croner lists ticks before the reference's whole second; ticks fall on whole seconds.
    return this.cron.previousRuns(1, new Date(at + 1000))[0]?.getTime();
  }
}
