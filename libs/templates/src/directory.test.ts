import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  isTemplate,
  relativeToPipeline,
  renderedPath,
  renderTemplates,
  repoPathOf,
  templateContext,
  templatesUnder,
} from "./index.js";

const file = (p: string): string => `sst2/${p}`;

describe("templates of a pipeline directory", () => {
  test("each renders with the context, undefined names empty, its path without .jinja2", () => {
    const { files, problems } = renderTemplates(
      [
        { path: "conf.yml.jinja2", content: "backend: {{ backend }}\nname: {{ name }}\n" },
        { path: "sub/run.sh.jinja2", content: new TextEncoder().encode("echo {{ nothing }}x") },
      ],
      templateContext("alice/sst2", { backend: "tf" }),
      file,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(files, [
      { path: "conf.yml", template: "conf.yml.jinja2", text: "backend: tf\nname: sst2\n" },
      { path: "sub/run.sh", template: "sub/run.sh.jinja2", text: "echo x" },
    ]);
  });

  test("a template that does not parse is a problem at its line and column", () => {
    const { files, problems } = renderTemplates(
      [{ path: "conf.yml.jinja2", content: "a: 1\nb: {{ x }\n" }],
      {},
      file,
    );
    assert.deepEqual(files, []);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.file, "sst2/conf.yml.jinja2");
    assert.equal(problems[0]!.line, 2, JSON.stringify(problems[0]));
    assert.match(problems[0]!.message, /^the template cannot be rendered: /);
  });

  test("names that reach the JavaScript runtime are refused", () => {
    for (const text of [
      "{{ range.constructor('return process')() }}",
      "{{ cycler.__proto__ }}",
      "{{ x['constructor'] }}",
    ]) {
      const { problems } = renderTemplates(
        [{ path: "a.txt.jinja2", content: text }],
        { x: {} },
        file,
      );
      assert.equal(problems.length, 1, text);
      assert.match(problems[0]!.message, /cannot be used in a template/, text);
    }
  });

  test("a rendered .yml/.yaml must be YAML, located in the template; other files are text", () => {
    const { files, problems } = renderTemplates(
      [
        { path: "a.yaml.jinja2", content: "x: 1\ny: [{{ v }}\n" },
        { path: "b.json.jinja2", content: "{ [{{ v }}" },
        { path: "c.yml.jinja2", content: "---\nx: 1\n---\ny: {{ v }}\n" },
      ],
      { v: 2 },
      file,
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.file, "sst2/a.yaml.jinja2");
    assert.match(problems[0]!.message, /the rendered a\.yaml is not valid YAML/);
    assert.ok(problems[0]!.line >= 2);
    assert.deepEqual(
      files.map((f) => f.path),
      ["b.json", "c.yml"],
      "text is not checked; several YAML documents are",
    );
  });

  test("a template that is not UTF-8 is a problem", () => {
    const { problems } = renderTemplates(
      [{ path: "a.yml.jinja2", content: new Uint8Array([0xff, 0xfe, 0x00]) }],
      {},
      file,
    );
    assert.match(problems[0]!.message, /not UTF-8/);
  });

  test("paths: templates under a directory at any depth, the root, and names", () => {
    const listed = [
      { path: "sst2/main.yml.jinja2" },
      { path: "sst2/x/conf.yml.jinja2" },
      { path: "sst2-other/a.jinja2" },
      { path: "sst2/.jinja2" },
      { path: "top.jinja2" },
    ];
    assert.deepEqual(
      templatesUnder(listed, "sst2").map((f) => f.path),
      ["sst2/main.yml.jinja2", "sst2/x/conf.yml.jinja2"],
    );
    assert.equal(templatesUnder(listed, ".").length, 4);
    assert.equal(isTemplate(".jinja2"), false);
    assert.equal(renderedPath("a/b.yml.jinja2"), "a/b.yml");
    assert.equal(relativeToPipeline("sst2", "sst2/x/y"), "x/y");
    assert.equal(relativeToPipeline("sst2", "sst22/y"), undefined);
    assert.equal(repoPathOf(".", "a"), "a");
    assert.deepEqual(templateContext(".", { a: 1 }), { a: 1 });
    assert.deepEqual(templateContext("a/b", { name: "given" }), { name: "given" });
  });
});
