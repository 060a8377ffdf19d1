// Terminal styling: colour only on a terminal, never when NO_COLOR is set or output is piped.

/** Whether to colour output written to `out`. */
export function useColor(out: NodeJS.WritableStream): boolean {
  return (
    Boolean((out as { isTTY?: boolean }).isTTY) &&
    !process.env.NO_COLOR &&
    process.env.TERM !== "dumb"
  );
}

const codes = {
  red: 31,
  green: 32,
  yellow: 33,
  blue: 34,
  magenta: 35,
  cyan: 36,
  gray: 90,
  bold: 1,
} as const;

/** A painter that colours when `enabled`. */
export function painter(enabled: boolean): (color: keyof typeof codes, text: string) => string {
  return (color, text) => (enabled ? `\u001b[${codes[color]}m${text}\u001b[0m` : text);
}

/** The colour of a run or task state. */
export function stateColor(state: string): keyof typeof codes {
  switch (state) {
    case "SUCCEEDED":
      return "green";
    case "FAILED":
    case "ERROR":
      return "red";
    case "RUNNING":
    case "LAUNCHING":
      return "cyan";
    case "RETRYING":
      return "yellow";
    case "SKIPPED":
    case "CANCELLED":
      return "gray";
    default:
      return "blue";
  }
}

/** `1h 02m`, `3m 05s`, `4.2s`, `310ms`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
