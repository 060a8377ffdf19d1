import { test } from "node:test";
import assert from "node:assert/strict";
import { PipelineCatalog, validateFiles, type FileSource, type ListedFile } from "./catalog.js";

/** A repository held in memory: commits of path → text, plus counters of what was asked. */
class MemoryRepo implements FileSource {
  reads = 0;
  lists = 0;
  head: string;
  constructor(
    readonly commits: Record<string, Record<string, string>>,
    head: string,
    readonly links: string[] = [],
  ) {
    this.head = head;
  }
  currentCommit(): Promise<string> {
    return Promise.resolve(this.head);
  }
  listFiles(commit?: string): Promise<{ commit: string; files: ListedFile[] }> {
    this.lists++;
    const sha = commit ?? this.head;
    const files = Object.entries(this.commits[sha] ?? {}).map(([path, text]) => ({
      path,
      size: Buffer.byteLength(text),
      symlink: this.links.includes(path),
    }));
    return Promise.resolve({ commit: sha, files });
  }
  readFiles(commit: string, paths: readonly string[]) {
    this.reads++;
    return Promise.resolve(
      paths.map((path) => ({ path, content: Buffer.from(this.commits[commit]![path]!) })),
    );
  }
}

const good = (name: string, tasks = 1) =>
  `name: ${name}\ntasks:\n${Array.from({ length: tasks }, (_, i) => `- {name: t${i}, image: i, command: c}\n`).join("")}`;

test("lists every pipeline of the newest commit with name, task count and problems", async () => {
  const repo = new MemoryRepo(
    {
      c1: {
        "logging.json": "{}",
        "sst2/main.yml": good("sst2", 2),
        "alice/ner/main.yml": good("ner", 3),
        "alice/ner/conf.yml": "x: 1",
        "broken/main.yml": "tasks:\n- name: a\n  image: [\n",
        "linked/main.yml": "",
      },
    },
    "c1",
    ["linked/main.yml"],
  );
  const catalog = new PipelineCatalog(repo);
  const snap = await catalog.snapshot();
  assert.equal(snap.commit, "c1");
  const rows = [...snap.pipelines.values()].map((p) => [p.path, p.name, p.taskCount, p.valid]);
  assert.deepEqual(rows, [
    ["alice/ner", "ner", 3, true],
    ["broken", "", 0, false],
    ["linked", "", 0, false],
    ["sst2", "sst2", 2, true],
  ]);
  assert.match(snap.pipelines.get("broken")!.problems[0]!.message, /invalid YAML/);
  assert.equal(snap.pipelines.get("broken")!.problems[0]!.file, "broken/main.yml");
  assert.match(snap.pipelines.get("linked")!.problems[0]!.message, /symbolic link/);
});

test("a commit is parsed once; repo.synced moves the newest commit and pre-parses it", async () => {
  const repo = new MemoryRepo(
    {
      c1: { "a/main.yml": good("a") },
      c2: { "a/main.yml": good("a", 2), "b/main.yml": good("b") },
    },
    "c1",
  );
  const clock = 0;
  const catalog = new PipelineCatalog(repo, { maxStalenessMs: 1000, now: () => clock });
  await catalog.snapshot();
  await catalog.snapshot();
  assert.equal(repo.reads, 1);
  assert.equal(repo.lists, 1, "the newest commit is remembered until a sync says otherwise");
  repo.head = "c2";
  await catalog.noteSynced("c2");
  const snap = await catalog.snapshot();
  assert.equal(snap.commit, "c2");
  assert.equal(snap.pipelines.size, 2);
  assert.equal(repo.reads, 2);
  const old = await catalog.pipeline("a", "c1");
  assert.equal(old.entry?.taskCount, 1, "older commits stay readable");
  const missing = await catalog.pipeline("nope");
  assert.equal(missing.entry, undefined);
});

test("without events the newest commit is re-checked once it is older than the staleness limit", async () => {
  const repo = new MemoryRepo(
    { c1: { "a/main.yml": good("a") }, c2: { "b/main.yml": good("b") } },
    "c1",
  );
  let clock = 0;
  const catalog = new PipelineCatalog(repo, { maxStalenessMs: 1000, now: () => clock });
  assert.equal((await catalog.snapshot()).commit, "c1");
  repo.head = "c2";
  clock = 500;
  assert.equal((await catalog.snapshot()).commit, "c1", "still trusted");
  clock = 1600;
  assert.equal((await catalog.snapshot()).commit, "c2", "re-checked after the limit");
});

test("files not yet pushed are validated with positions", () => {
  const result = validateFiles("alice/new", [
    { path: "main.yml", content: Buffer.from("tasks:\n- name: a\n  image: i\n") },
  ]);
  assert.equal(result.valid, false);
  assert.deepEqual(
    result.problems.map((p) => [p.file, p.line, p.column, p.message]),
    [["alice/new/main.yml", 2, 3, 'missing required key "command"']],
  );
  assert.equal(validateFiles("x", []).problems[0]!.message, "no main.yml among the files");
});

test("a pipeline read for a run takes its parameters; listings read it on its own", async () => {
  const repo = new MemoryRepo(
    {
      c1: {
        "sweep/main.yml":
          "parameters:\n  lr: {type: number, default: 0.1}\n  model: {type: string}\ntasks:\n- {name: t, image: 'i:${{ params.model }}', command: c, args: ['--lr=${{ params.lr }}']}\n",
      },
    },
    "c1",
  );
  const catalog = new PipelineCatalog(repo);
  const listed = (await catalog.pipeline("sweep")).entry!;
  assert.equal(listed.valid, true, JSON.stringify(listed.problems));
  const run = await catalog.forRun("sweep", undefined, { model: "bert", lr: "0.5" });
  assert.deepEqual(run.result!.pipeline!.tasks[0]!.args, ["--lr=0.5"]);
  assert.equal(run.result!.pipeline!.tasks[0]!.image, "i:bert");
  assert.deepEqual(run.result!.parameters, { lr: 0.5, model: "bert" });
  const missing = await catalog.forRun("sweep", undefined, {});
  assert.equal(missing.result!.valid, false);
  assert.match(missing.result!.problems[0]!.message, /"model" has no default/);
  assert.equal(missing.result!.problems[0]!.file, "sweep/main.yml");
  assert.equal(missing.result!.problems[0]!.line, 3);
});

test("main.yml.jinja2 is rendered with the run's context (undefined names empty), as the original did", async () => {
  const template = [
    "name: {{ name }}",
    "tasks:",
    "{% for i in range(count | default(2)) %}",
    "- name: train-{{ i }}",
    "  image: {{ image | default('busybox') }}",
    "  command: echo",
    "  args: ['{{ backend }}', '{{ missing }}']",
    "{% endfor %}",
  ].join("\n");
  const repo = new MemoryRepo(
    { c1: { "tpl/main.yml.jinja2": template, "tpl/main.yml": "tasks: []\n" } },
    "c1",
  );
  const catalog = new PipelineCatalog(repo);
  const listed = (await catalog.pipeline("tpl")).entry!;
  assert.equal(listed.valid, true, JSON.stringify(listed.problems));
  assert.equal(listed.name, "tpl", "name defaults to the directory's name");
  assert.equal(listed.taskCount, 2);
  const run = (await catalog.forRun("tpl", undefined, { backend: "tf", count: 3 })).result!;
  assert.deepEqual(
    run.pipeline!.tasks.map((t) => `${t.name} ${t.image} ${t.args.join(",")}`),
    ["train-0 busybox tf,", "train-1 busybox tf,", "train-2 busybox tf,"],
  );
  assert.deepEqual(run.parameters, { backend: "tf", count: 3 });
});

test("template problems point into the template; its code cannot reach the runtime", async () => {
  const repo = new MemoryRepo(
    {
      c1: {
        "bad/main.yml.jinja2": "tasks:\n- name: a\n  image: {{ image }\n",
        "escape/main.yml.jinja2":
          "tasks:\n- {name: a, image: \"{{ range.constructor('return process')() }}\", command: c}\n",
        "invalid/main.yml.jinja2":
          "{% for i in [1, 2] %}\n# {{ i }}\n{% endfor %}\ntasks:\n- {name: a, image: i, command: c, num_gpus: lots}\n",
      },
    },
    "c1",
  );
  const catalog = new PipelineCatalog(repo);
  const bad = (await catalog.pipeline("bad")).entry!;
  assert.equal(bad.valid, false);
  assert.equal(bad.problems[0]!.file, "bad/main.yml.jinja2");
  assert.equal(bad.problems[0]!.line, 3);
  assert.match(bad.problems[0]!.message, /^the template cannot be rendered: /);
  const escape = (await catalog.pipeline("escape")).entry!;
  assert.equal(escape.valid, false);
  assert.match(escape.problems[0]!.message, /"constructor" cannot be used in a template/);
  const invalid = (await catalog.pipeline("invalid")).entry!;
  assert.match(invalid.problems[0]!.message, /num_gpus.*\(rendered line \d+: "- \{name: a/);
});

test("validateFiles checks a template and parameters the way a run would read them", () => {
  const files = (main: string, name = "main.yml") => [{ path: name, content: Buffer.from(main) }];
  const r = validateFiles(
    "p",
    files(
      "parameters: {n: {type: int}}\ntasks:\n- {name: a, image: i, command: c, retries: '${{ params.n }}'}\n",
    ),
    { n: "x" },
  );
  assert.match(r.problems[0]!.message, /parameter n is a whole number \(int\); "x" is not/);
  const t = validateFiles(
    "p",
    files("tasks:\n- {name: {{ task }}, image: i, command: c}\n", "main.yml.jinja2"),
    {
      task: "hello",
    },
  );
  assert.equal(t.valid, true, JSON.stringify(t.problems));
  assert.equal(t.pipeline!.tasks[0]!.name, "hello");
});

test("a pipeline's other templates are checked, with the run's context, at their line and column", async () => {
  const main = "tasks:\n- {name: a, image: i, command: cat, args: ['${WORK_PATH}/conf.yml']}\n";
  const repo = new MemoryRepo(
    {
      c1: {
        "ok/main.yml": main,
        "ok/conf.yml.jinja2": "lr: {{ lr }}\nname: {{ name }}\n",
        "ok/sub/main.yml.jinja2": "tasks:\n- {name: b, image: i, command: c}\n",
        "syntax/main.yml": main,
        "syntax/conf.yml.jinja2": "a: 1\nb: {{ lr }\n",
        "yaml/main.yml.jinja2": main,
        "yaml/conf.yml.jinja2": "a: 1\nb: [{{ lr }}\n",
        "linked/main.yml": main,
        "linked/conf.yml.jinja2": "a: 1\n",
      },
    },
    "c1",
    ["linked/conf.yml.jinja2"],
  );
  const catalog = new PipelineCatalog(repo);
  const ok = (await catalog.pipeline("ok")).entry!;
  assert.equal(ok.valid, true, JSON.stringify(ok.problems));
  assert.deepEqual(
    ok.templates?.map((t) => t.path),
    ["conf.yml.jinja2", "sub/main.yml.jinja2"],
    "at any depth; its own main.yml.jinja2 is the pipeline",
  );
  const sub = (await catalog.pipeline("ok/sub")).entry!;
  assert.equal(sub.valid, true);
  assert.equal(sub.templates, undefined);

  const syntax = (await catalog.pipeline("syntax")).entry!;
  assert.equal(syntax.valid, false);
  assert.equal(syntax.problems[0]!.file, "syntax/conf.yml.jinja2");
  assert.equal(syntax.problems[0]!.line, 2);
  assert.match(syntax.problems[0]!.message, /^the template cannot be rendered: /);
  // A run is refused the same way (SubmitRun's error), whatever its values.
  const run = (await catalog.forRun("syntax", undefined, {})).result!;
  assert.equal(run.valid, false);
  assert.equal(run.problems[0]!.file, "syntax/conf.yml.jinja2");

  // The rendered YAML is read with the run's values: an empty value is YAML, "1" with a missing
  // bracket is not.
  const yaml = (await catalog.pipeline("yaml")).entry!;
  assert.equal(yaml.valid, false);
  assert.match(yaml.problems[0]!.message, /the rendered conf\.yml is not valid YAML/);

  const linked = (await catalog.pipeline("linked")).entry!;
  assert.equal(linked.valid, false);
  assert.match(linked.problems[0]!.message, /symbolic link/);
});

test("a template that renders only with some values is refused for the run that gives them", async () => {
  const repo = new MemoryRepo(
    {
      c1: {
        "p/main.yml":
          "parameters: {mode: {default: a}}\ntasks:\n- {name: a, image: i, command: c}\n",
        "p/conf.yml.jinja2": "{% if mode == 'broken' %}x: [{% endif %}\nok: 1\n",
      },
    },
    "c1",
  );
  const catalog = new PipelineCatalog(repo);
  assert.equal((await catalog.pipeline("p")).entry!.valid, true);
  assert.equal((await catalog.forRun("p", undefined, { mode: "a" })).result!.valid, true);
  const broken = (await catalog.forRun("p", undefined, { mode: "broken" })).result!;
  assert.equal(broken.valid, false);
  assert.equal(broken.problems[0]!.file, "p/conf.yml.jinja2");
});

test("validateFiles checks the other templates among the files", () => {
  const r = validateFiles("p", [
    { path: "main.yml", content: Buffer.from("tasks:\n- {name: a, image: i, command: c}\n") },
    { path: "conf/x.yml.jinja2", content: Buffer.from("a: {% for %}\n") },
  ]);
  assert.equal(r.valid, false);
  assert.equal(r.problems[0]!.file, "p/conf/x.yml.jinja2");
  assert.equal(r.problems[0]!.line, 1);
});
