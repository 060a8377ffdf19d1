// A run's rendered pipeline directory: the original Odin copied a templated job directory for each
// run and rendered its `*.jinja2` files there. Here the copy is planned from git (what the commit
// holds, links and all, checked before anything is written) and laid out next to the checkouts
// under `renders/<commit>/<holder>`: the commit's files hard-linked from its immutable checkout,
// the renderings written, everything read-only — the run's `WORK_PATH`.
import { createHash } from "node:crypto";
import { copyFile, link, lstat, mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { formatProblem, type Problem } from "@odin/pipeline-spec";
import { InvalidArgumentError, FailedPreconditionError } from "@odin/service-kit";
import {
  isTemplate,
  maxTemplateBytes,
  relativeToPipeline,
  renderTemplates,
  repoPathOf,
  templateContext,
  type RenderedFile,
} from "@odin/templates";

/** Most entries a rendered pipeline directory may hold (files and links, at any depth). */
export const maxRenderEntries = 10_000;

/** Most bytes copied into one rendered directory where hard links are not possible. */
export const maxRenderCopyBytes = 1024 * 1024 * 1024;

/** One entry of a commit's tree, as `git ls-tree -r -l` lists it. */
export interface TreeEntry {
  /** Repository-relative path. */
  path: string;
  /** `100644`, `100755`, `120000` (a symbolic link) … */
  mode: string;
  /** The blob's object id. */
  oid: string;
  size: number;
}

/** What a run's rendered directory holds, checked and ready to be written. */
export interface RenderPlan {
  /** The pipeline directory (repository-relative, `.` for the root). */
  pipeline: string;
  /** Files linked from the checkout: path relative to the pipeline directory, and in the repository. */
  files: { path: string; repoPath: string }[];
  /** Symbolic links: path relative to the pipeline directory, target relative to the repository root. */
  links: { path: string; target: string }[];
  /** The renderings, each replacing a file of the same name. */
  rendered: RenderedFile[];
  /** `sha256:` of the content (paths, blob ids, link targets, renderings). */
  digest: string;
}

/**
 * Plans the rendering of a pipeline directory of a commit: undefined when it holds no template.
 * `read` gives blobs' contents by object id. Throws InvalidArgumentError (with the problems, each
 * at `file:line:col`) when a template does not render, is a link or too large, or when a link of
 * the directory points outside the repository; FailedPreconditionError when the directory is too
 * large to lay out for every run.
 */
export async function planRender(input: {
  pipeline: string;
  commit: string;
  tree: readonly TreeEntry[];
  parameters: Readonly<Record<string, unknown>>;
  read: (oids: readonly string[]) => Promise<Buffer[]>;
}): Promise<RenderPlan | undefined> {
  const { pipeline } = input;
  const entries = input.tree
    .map((e) => ({ ...e, rel: relativeToPipeline(pipeline, e.path) }))
    .filter((e): e is TreeEntry & { rel: string } => e.rel !== undefined);
  const templates = entries.filter((e) => isTemplate(e.rel));
  if (templates.length === 0) return undefined;
  const where = `pipeline ${pipeline} at commit ${input.commit.slice(0, 12)}`;
  if (entries.length > maxRenderEntries) {
    throw new FailedPreconditionError(
      `${where} holds ${entries.length} files; a templated pipeline's directory is laid out again for every run, so it may hold at most ${maxRenderEntries} — keep data elsewhere (DATA_PATH) or the templates in a smaller directory`,
    );
  }
  const problems: Problem[] = [];
  const problem = (file: string, message: string): void => {
    problems.push({ severity: "error", file, line: 0, column: 0, message });
  };
  const readable = templates.filter((t) => {
    if (t.mode === "120000") {
      problem(t.path, "the template is a symbolic link; templates must be regular files");
      return false;
    }
    if (t.size > maxTemplateBytes) {
      problem(t.path, `the template is ${t.size} bytes; the limit is ${maxTemplateBytes}`);
      return false;
    }
    return true;
  });
  const linkEntries = entries.filter((e) => e.mode === "120000" && !isTemplate(e.rel));
  const contents = await input.read([...readable, ...linkEntries].map((e) => e.oid));
  const links: RenderPlan["links"] = [];
  linkEntries.forEach((e, i) => {
    const text = contents[readable.length + i]!.toString("utf8");
    const target = posix.normalize(posix.join(posix.dirname(e.path), text));
    if (text.startsWith("/") || target === ".." || target.startsWith("../")) {
      problem(
        e.path,
        `a symbolic link to ${JSON.stringify(text)}, outside the repository: a templated pipeline's directory may link only to files of the repository`,
      );
    } else {
      links.push({ path: e.rel, target });
    }
  });
  const { files: rendered, problems: renderProblems } = renderTemplates(
    readable.map((t, i) => ({ path: t.rel, content: contents[i]! })),
    templateContext(pipeline, input.parameters),
    (rel) => repoPathOf(pipeline, rel),
  );
  problems.push(...renderProblems);
  // A rendering may replace a file, not a directory the commit holds files in.
  const dirs = new Set<string>();
  for (const e of entries) {
    for (let d = posix.dirname(e.rel); d !== "."; d = posix.dirname(d)) dirs.add(d);
  }
  for (const r of rendered) {
    if (dirs.has(r.path))
      problem(
        repoPathOf(pipeline, r.template),
        `renders to ${r.path}, which is a directory of the pipeline; rename one of them`,
      );
  }
  if (problems.length > 0) {
    throw new InvalidArgumentError(
      `${where} cannot be rendered: ${formatProblem(problems[0]!)}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ""}`,
      { problems },
    );
  }
  const renderedPaths = new Set(rendered.map((r) => r.path));
  const files = entries
    .filter((e) => e.mode !== "120000" && !renderedPaths.has(e.rel))
    .map((e) => ({ path: e.rel, repoPath: e.path, oid: e.oid }));
  const keptLinks = links.filter((l) => !renderedPaths.has(l.path));
  const material: [string, string][] = [
    ...files.map((f): [string, string] => [f.path, `blob ${f.oid}`]),
    ...keptLinks.map((l): [string, string] => [l.path, `link ${l.target}`]),
    ...rendered.map((r): [string, string] => [
      r.path,
      `text ${createHash("sha256").update(r.text).digest("hex")}`,
    ]),
  ].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    pipeline,
    files: files.map(({ path, repoPath }) => ({ path, repoPath })),
    links: keptLinks,
    rendered,
    digest: `sha256:${createHash("sha256").update(JSON.stringify(material)).digest("hex")}`,
  };
}

/**
 * Writes a planned directory at `dest` (which must not exist) through a temporary sibling renamed
 * into place, so a reader sees all of it or nothing: files hard-linked from `checkout` (copied
 * where the filesystem cannot link; absent when the checkout lacks them, as `export-ignore`
 * files are), links pointing at their target in the checkout, renderings written. The caller
 * makes it read-only (`seal`) before the rename.
 */
export async function writeRender(
  plan: RenderPlan,
  checkout: string,
  dest: string,
  seal: (dir: string) => Promise<void>,
  unseal: (dir: string) => Promise<void>,
): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(dirname(dest), { recursive: true });
  await mkdir(tmp, { recursive: true });
  try {
    const at = (rel: string): string => join(tmp, ...rel.split("/"));
    let copied = 0;
    for (const f of plan.files) {
      const from = join(checkout, ...f.repoPath.split("/"));
      await mkdir(dirname(at(f.path)), { recursive: true });
      try {
        await link(from, at(f.path));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") continue;
        const size = (await lstat(from)).size;
        copied += size;
        if (copied > maxRenderCopyBytes) {
          throw new FailedPreconditionError(
            `pipeline ${plan.pipeline}: the filesystem cannot hard-link (${code}) and its files pass ${maxRenderCopyBytes} bytes; keep data elsewhere (DATA_PATH)`,
          );
        }
        await copyFile(from, at(f.path));
      }
    }
    for (const l of plan.links) {
      await mkdir(dirname(at(l.path)), { recursive: true });
      // A link within the pipeline directory stays within the rendered one (and so reaches a
      // rendering); any other goes to the checkout.
      const inside = relativeToPipeline(plan.pipeline, l.target);
      await symlink(
        inside !== undefined
          ? posix.relative(posix.dirname(l.path), inside)
          : join(checkout, ...l.target.split("/")),
        at(l.path),
      );
    }
    for (const r of plan.rendered) {
      await mkdir(dirname(at(r.path)), { recursive: true });
      await rm(at(r.path), { force: true });
      await writeFile(at(r.path), r.text, { mode: 0o444 });
    }
    await seal(tmp);
    await rename(tmp, dest);
  } catch (err) {
    await unseal(tmp).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
    // Another replica laid out the same holder's directory first.
    if (
      await lstat(dest).then(
        () => true,
        () => false,
      )
    )
      return;
    throw err;
  }
}
