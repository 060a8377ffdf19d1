// Run parameters: declarations, `${{ params.NAME }}` uses, values given per run, and every way
// they can be wrong (reported with file:line:col before a run starts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { loadPipeline } from "./load.js";
import { coerceParameter, scanParameters } from "./parameters.js";
import { substituteVariables } from "./variables.js";

const sweep = `name: sweep
parameters:
  lr: {type: number, default: 0.001, description: learning rate}
  epochs: 3
  model:
    type: string
  gpus: {type: int, default: 1}
  fast: {type: bool, default: false}
  extra: {type: list, default: [--seed, 7]}
tasks:
- name: train
  image: "registry/train:\${{ params.model }}"
  command: python
  args:
  - train.py
  - --lr=\${{ params.lr }}
  - --epochs
  - \${{ params.epochs }}
  - --out=\${RUN_PATH}/\${{ params.model }}
  num_gpus: \${{ params.gpus }}
  env:
    FAST: \${{ params.fast }}
- name: eval
  image: busybox
  command: echo
  args: \${{ params.extra }}
  depends: train
`;

describe("parameters", () => {
  test("given values are typed by their declaration and substituted in every task field", () => {
    const r = loadPipeline(sweep, {
      parameters: { lr: "0.01", model: "bert", gpus: "2", fast: "yes" },
    });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.parameters, {
      epochs: 3,
      extra: ["--seed", 7],
      fast: true,
      gpus: 2,
      lr: 0.01,
      model: "bert",
    });
    const [train, evaluate] = r.pipeline!.tasks;
    assert.equal(train!.image, "registry/train:bert");
    assert.deepEqual(train!.args, [
      "train.py",
      "--lr=0.01",
      "--epochs",
      "3",
      "--out=${RUN_PATH}/bert",
    ]);
    assert.equal(train!.numGpus, 2);
    assert.deepEqual(train!.env, { FAST: "true" });
    assert.deepEqual(evaluate!.args, ["--seed", "7"]);
    assert.deepEqual(
      r.pipeline!.parameters!.map((p) => `${p.name}:${p.type}:${JSON.stringify(p.default)}`),
      [
        "lr:number:0.001",
        "epochs:int:3",
        "model:string:undefined",
        "gpus:int:1",
        "fast:bool:false",
        'extra:list:["--seed",7]',
      ],
    );
    assert.equal(r.pipeline!.parameters![0]!.description, "learning rate");
  });

  test("checked on its own, a required parameter stands in with a sample and nothing is missing", () => {
    const r = loadPipeline(sweep);
    assert.equal(r.valid, true, JSON.stringify(r.problems));
    assert.equal(r.parameters.model, undefined);
    assert.equal(r.pipeline!.tasks[0]!.image, "registry/train:model");
  });

  test("a value's $ stays literal where processing variables are substituted", () => {
    const r = loadPipeline(sweep, { parameters: { model: "a$b", lr: 1 } });
    const train = r.pipeline!.tasks[0]!;
    assert.equal(substituteVariables(train.args[4]!, { RUN_PATH: "/r" }), "--out=/r/a$b");
    assert.equal(train.image, "registry/train:a$b");
  });

  test("$${{ is literal text, as $$ is", () => {
    const r = loadPipeline(
      "parameters: {x: 1}\ntasks:\n- {name: a, image: i, command: sh, args: ['echo $${{ params.x }}']}\n",
    );
    assert.deepEqual(r.problems, []);
    assert.equal(substituteVariables(r.pipeline!.tasks[0]!.args[0]!, {}), "echo ${{ params.x }}");
  });

  test("unknown, missing and ill-typed parameters are errors at their line and column", () => {
    const text = `parameters:
  epochs: {type: int}
  lr: {type: number, default: 0.1}
tasks:
- name: a
  image: i
  command: run
  args: ["--epochs=\${{ params.epoch }}", "\${{ lr }}"]
`;
    const r = loadPipeline(text, { parameters: { lr: "fast", batch: 3 } });
    assert.equal(r.valid, false);
    const lines = r.problems.map((p) => `${p.line}:${p.column} ${p.message}`);
    assert.deepEqual(lines, [
      '1:1 parameter "batch" was given, but the pipeline does not declare it; it declares epochs, lr',
      '2:11 parameter "epochs" has no default and no value was given; pass one: --set epochs=…',
      '3:7 parameter lr is a number; "fast" is not',
      '8:10 "${{ params.epoch }}" uses parameter "epoch", which the pipeline does not declare (did you mean "epochs"?); declare it under "parameters:"',
      '8:42 "${{ lr }}" is not a parameter use; write ${{ params.NAME }} (or $${{ for a literal "${{")',
    ]);
    assert.equal(r.problems[3]!.task, "a");
  });

  test("a pipeline without parameters refuses a value, naming what to do", () => {
    const r = loadPipeline("tasks:\n- {name: a, image: i, command: c}\n", {
      parameters: { x: 1 },
    });
    assert.match(r.problems[0]!.message, /declares no parameters; declare it under "parameters:"/);
  });

  test("bad declarations: a name, a type, a default of the wrong type", () => {
    const r = loadPipeline(`parameters:
  bad-name: 1
  t: {type: float}
  n: {type: int, default: "3"}
  l: {type: list, default: 2}
tasks:
- {name: a, image: i, command: c}
`);
    assert.deepEqual(
      r.problems.map((p) => `${p.line} ${p.message}`),
      [
        '2 parameter name "bad-name" must be letters, digits and "_", starting with a letter or "_" (at most 63)',
        '3 parameter "t": type must be one of string, int, number, bool, list, not "float"',
        '4 parameter n is int; the default "3" is a string',
        "5 parameter l is a list; 2 is not",
      ],
    );
  });

  test("the list form of declarations, as Argo writes them, works too", () => {
    const r = loadPipeline(
      "parameters:\n- {name: x, type: int, default: 2}\ntasks:\n- {name: a, image: i, command: c, retries: '${{ params.x }}'}\n",
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.pipeline!.tasks[0]!.retries, 2);
  });

  test("a whole-value use in a typed field is checked as that field", () => {
    const r = loadPipeline(
      "parameters: {g: {type: string, default: lots}}\ntasks:\n- {name: a, image: i, command: c, num_gpus: '${{ params.g }}'}\n",
    );
    assert.match(
      r.problems[0]!.message,
      /num_gpus" must be a whole number 0 or more, not a string/,
    );
  });

  test("with allowUndeclared (a template's context) undeclared values are ignored", () => {
    const r = loadPipeline("tasks:\n- {name: a, image: i, command: c}\n", {
      parameters: { backend: "tf" },
      allowUndeclared: true,
    });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.parameters, {});
  });

  test("coercion from --set text", () => {
    const spec = (type: "int" | "number" | "bool" | "list" | "string") => ({ name: "p", type });
    assert.deepEqual(coerceParameter(spec("int"), "42"), { value: 42 });
    assert.deepEqual(coerceParameter(spec("int"), "4.2"), {
      error: 'parameter p is a whole number (int); "4.2" is not',
    });
    assert.deepEqual(coerceParameter(spec("number"), "1e-3"), { value: 0.001 });
    assert.deepEqual(coerceParameter(spec("bool"), "False"), { value: false });
    assert.deepEqual(coerceParameter(spec("list"), "a, b"), { value: ["a", "b"] });
    assert.deepEqual(coerceParameter(spec("list"), '[1, "x"]'), { value: [1, "x"] });
    assert.deepEqual(coerceParameter(spec("string"), 7), { value: "7" });
    assert.ok("error" in coerceParameter(spec("string"), { a: 1 }));
  });

  test("scanning keeps $$ and splits text from uses", () => {
    assert.deepEqual(scanParameters("a$$b${{params.x}}c").pieces, [
      { text: "a$$b" },
      { param: "x" },
      { text: "c" },
    ]);
    assert.match(scanParameters("${{ params.x").error!, /is not a parameter use/);
  });
});
