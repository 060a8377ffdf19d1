import jsyaml from "js-yaml";

/** How a command prints data: a human table/text, or machine-readable JSON/YAML. */
export type OutputFormat = "text" | "json" | "yaml";

/** Prints data as JSON or YAML (bigints as numbers, dates as ISO strings). */
export function printData(
  out: NodeJS.WritableStream,
  format: "json" | "yaml",
  data: unknown,
): void {
  const plain = JSON.parse(
    JSON.stringify(data, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v)),
  ) as unknown;
  out.write(
    format === "json"
      ? JSON.stringify(plain, null, 2) + "\n"
      : jsyaml.dump(plain, { noRefs: true, lineWidth: 120 }),
  );
}

/** Formats rows as an aligned table with a header. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** The first 12 characters of a commit id, as people quote them. */
export function shortCommit(commit: string): string {
  return commit.slice(0, 12);
}
