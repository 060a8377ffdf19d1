// The Python client (clients/python, distribution odin-client) as a user gets it: built as a wheel
// and installed with Debian's pip into a virtual environment of /usr/bin/python3, type-checked,
// then its tests and its sweep example run against a real `odin server` with authentication on.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { cp, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  repoRoot,
  startOdinServer,
  startService,
  tempDir,
  writeTokens,
  type OdinServer,
  type ServiceProcess,
} from "@odin/test-stack";

const clientDir = join(repoRoot, "clients", "python");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  file: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("Python client odin-client against odin server", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let server: OdinServer;
  let tokens: Awaited<ReturnType<typeof writeTokens>>;
  let python: string;
  let repo: string;
  let tlsRepoSync: ServiceProcess;
  let tlsDir: string;

  before(async () => {
    dir = await tempDir("odin-e2e-python-");
    repo = join(dir.path, "pipelines");
    await mkdir(repo);
    await cp(join(repoRoot, "examples", "pipelines"), repo, { recursive: true });
    await cp(join(clientDir, "tests", "pipelines"), repo, { recursive: true });
    tokens = await writeTokens(dir.path);
    server = await startOdinServer(
      [
        "--host",
        "127.0.0.1",
        "--data",
        join(dir.path, "data"),
        "--repo",
        repo,
        "--tokens",
        tokens.file,
      ],
      {},
    );
    // repo-sync alone serving mutual TLS, for the client's TLS options: a self-signed certificate
    // for localhost serves as CA, server and client certificate at once.
    tlsDir = join(dir.path, "tls");
    await mkdir(tlsDir);
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-keyout",
        join(tlsDir, "key.pem"),
        "-out",
        join(tlsDir, "cert.pem"),
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
      ],
      { stdio: "ignore" },
    );
    // Its remote: a plain local repository with one commit (repo-sync clones it).
    const remote = join(dir.path, "tls-remote");
    await mkdir(join(remote, "hello"), { recursive: true });
    await writeFile(join(remote, "hello", "main.yml"), "tasks:\n- name: a\n  image: busybox\n");
    const git = (...args: string[]): Buffer =>
      execFileSync("git", ["-C", remote, "-c", "user.name=x", "-c", "user.email=x@y", ...args]);
    git("init", "-q", "--initial-branch=main");
    git("add", "-A");
    git("commit", "-qm", "hello");
    tlsRepoSync = await startService("repo-sync", {
      ODIN_REPO_URL: remote,
      ODIN_ROOT_PATH: join(dir.path, "tls-root"),
      ODIN_SYNC_INTERVAL_SECONDS: "0",
      ODIN_TOKENS_FILE: tokens.file,
      ODIN_TLS_CERT: join(tlsDir, "cert.pem"),
      ODIN_TLS_KEY: join(tlsDir, "key.pem"),
      ODIN_TLS_CA: join(tlsDir, "cert.pem"),
    });
    // A virtual environment of Debian's Python that sees Debian's grpcio and protobuf, as README
    // tells users to make one (Debian's pip refuses to install into the system's Python).
    const venv = join(dir.path, "venv");
    const made = await run("/usr/bin/python3", ["-m", "venv", "--system-site-packages", venv]);
    assert.equal(made.code, 0, made.stderr);
    python = join(venv, "bin", "python");
  });

  after(async () => {
    await server?.stop();
    await tlsRepoSync?.stop();
    await dir?.cleanup();
  });

  test("pip builds a wheel and installs the package offline, its dependencies met by Debian's", async () => {
    const wheels = join(dir.path, "wheels");
    const built = await run(
      python,
      [
        "-m",
        "pip",
        "wheel",
        "--no-build-isolation",
        "--no-index",
        "--no-deps",
        "-w",
        wheels,
        clientDir,
      ],
      { timeoutMs: 300_000 },
    );
    assert.equal(built.code, 0, built.stderr + built.stdout);
    const [wheel] = await readdir(wheels);
    assert.match(wheel ?? "", /^odin_client-0\.1\.0-py3-none-any\.whl$/);
    const listing = await run(python, [
      "-c",
      "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
      join(wheels, wheel!),
    ]);
    assert.match(listing.stdout, /^odin_client\/py\.typed$/m);
    assert.match(
      listing.stdout,
      /^odin_client\/_proto\/odin\/dagscheduler\/v1\/dagscheduler_pb2_grpc\.py$/m,
    );
    // README's install command, dependencies included (found among Debian's packages, no index).
    const installed = await run(
      python,
      ["-m", "pip", "install", "--no-build-isolation", "--no-index", clientDir],
      { timeoutMs: 300_000 },
    );
    assert.equal(installed.code, 0, installed.stderr + installed.stdout);
    // Imported from the installed package (not the source tree), with its typing marker.
    const probe = await run(
      python,
      [
        "-c",
        "import odin_client, pathlib; p = pathlib.Path(odin_client.__file__).parent; " +
          "print(p); print((p / 'py.typed').exists()); print(odin_client.Client.__doc__.splitlines()[0])",
      ],
      { cwd: dir.path },
    );
    assert.equal(probe.code, 0, probe.stderr);
    assert.match(probe.stdout, /site-packages\/odin_client\nTrue\nA connection to Odin\.\n/);
  });

  test("the package and its example type-check with mypy --strict", async (t) => {
    const mypy = await run("/usr/bin/python3", ["-m", "mypy", "--version"]);
    if (mypy.code !== 0) {
      // .ci/run installs Debian's mypy; a developer machine without it still runs the rest.
      t.skip("mypy is not installed (apt-get install -y mypy)");
      return;
    }
    const checked = await run(
      "/usr/bin/python3",
      ["-m", "mypy", "src/odin_client", "examples", "tests"],
      { cwd: clientDir, timeoutMs: 300_000 },
    );
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.match(checked.stdout, /^Success: no issues found/m);
  });

  test("the client's tests pass against the server", async (t) => {
    const result = await run(python, [join(clientDir, "tests", "run.py")], {
      cwd: dir.path,
      timeoutMs: 600_000,
      env: {
        ODIN_SERVER: server.address,
        ODIN_TEST_REPO: repo,
        ODIN_TEST_TOKENS: JSON.stringify({
          admin: tokens.admin,
          operator: tokens.operator,
          viewer: tokens.viewer,
        }),
        ODIN_TEST_TOKENS_FILE: tokens.file,
        ODIN_TEST_TLS_SERVER: tlsRepoSync.address.replace(/^127\.0\.0\.1:/, "localhost:"),
        ODIN_TEST_TLS_DIR: tlsDir,
        ODIN_TEST_ODIN_ARGV: JSON.stringify([
          process.execPath,
          join(repoRoot, "apps", "cli", "dist", "main.js"),
        ]),
      },
    });
    const reports = result.stdout
      .split("\n")
      .filter((l) => l.startsWith("ODIN-TEST "))
      .map(
        (l) =>
          JSON.parse(l.slice("ODIN-TEST ".length)) as { name: string; ok: boolean; detail: string },
      );
    // One node test per Python test, so each shows (and counts) on its own.
    for (const r of reports) {
      await t.test(r.name, () => assert.ok(r.ok, r.detail));
    }
    assert.ok(
      reports.length >= 20,
      `expected the whole suite to report:\n${result.stdout}\n${result.stderr}`,
    );
    assert.equal(result.code, 0, result.stdout.split("\n").slice(-3).join("\n") + result.stderr);
  });

  test("the sweep example runs several runs, waits for them and prints a table from their outputs", async () => {
    const result = await run(python, [join(clientDir, "examples", "sweep.py")], {
      cwd: dir.path,
      timeoutMs: 600_000,
      env: { ODIN_SERVER: server.address, ODIN_TOKEN: tokens.operator },
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^LR\s+RUN\s+STATE\s+LOSS\s+ACCURACY$/m);
    const rows = result.stdout.match(
      /^0\.\d+\s+sweep-[a-z0-9]{8}\s+SUCCEEDED\s+\d\.\d{4}\s+\d\.\d{3}$/gm,
    );
    assert.equal(rows?.length, 4, result.stdout);
    // loss = 0.2 + (lr - 0.05)² × 10, computed by the task; accuracy = 1 - loss by the next one.
    assert.match(result.stdout, /^0\.3\s+\S+\s+SUCCEEDED\s+0\.8250\s+0\.175$/m);
    assert.match(result.stdout, /^best: lr=0\.03 \(accuracy 0\.796\)$/m);
  });
});
