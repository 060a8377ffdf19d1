"""odin-client against a real `odin server` with authentication on.

Run by tests/e2e (python-client.test.ts), which starts the server and sets:
  ODIN_SERVER            the server's address
  ODIN_TEST_TOKENS       JSON {"admin": …, "operator": …, "viewer": …}
  ODIN_TEST_REPO         the pipelines directory the server serves (holds tests/pipelines' pipelines)
  ODIN_TEST_ODIN_ARGV    JSON argv that runs the odin CLI (to start a second server)
  ODIN_TEST_TLS_SERVER   localhost:PORT of a repo-sync serving mutual TLS
  ODIN_TEST_TLS_DIR      its cert.pem (also the CA and a client certificate) and key.pem
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Dict, List

import odin_client
from odin_client import (
    AlreadyExists,
    Client,
    FailedPrecondition,
    InvalidArgument,
    InvalidPipeline,
    NotFound,
    PermissionDenied,
    RunCancelled,
    RunFailed,
    RunState,
    RunStatus,
    TaskRun,
    TaskState,
    Unauthenticated,
    Unavailable,
    WaitTimeout,
    Webhook,
)

TOKENS: Dict[str, str] = json.loads(os.environ.get("ODIN_TEST_TOKENS", "{}"))
SERVER = os.environ.get("ODIN_SERVER", "")
REPO = Path(os.environ.get("ODIN_TEST_REPO", "."))
# Every run here ends within seconds on an idle machine; the bound only stops a hung test.
WAIT = 120.0


def operator() -> Client:
    return Client(SERVER, TOKENS["operator"])


def write_pipeline(directory: Path, text: str, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.yml").write_text(text)
    for name, content in files.items():
        (directory / name).write_text(content)
    return directory


class ConnectionTest(unittest.TestCase):
    def test_reads_server_and_token_from_the_environment_like_the_cli(self) -> None:
        saved = {k: os.environ.get(k) for k in ("ODIN_SERVER", "ODIN_TOKEN", "ODIN_URL", "ODIN_PORT")}
        try:
            os.environ["ODIN_SERVER"] = SERVER
            os.environ["ODIN_TOKEN"] = TOKENS["viewer"]
            with Client() as odin:
                self.assertEqual(odin.server, SERVER)
                self.assertIn("diamond", [p.path for p in odin.pipelines()])
            del os.environ["ODIN_SERVER"]
            self.assertEqual(Client().server, odin_client.DEFAULT_SERVER)
            self.assertEqual(Client(server="example:1").server, "example:1")
            # The original Odin's variables, as the CLI reads them.
            os.environ["ODIN_URL"] = "https://odin.example:9003/api"
            os.environ["ODIN_PORT"] = "7"
            self.assertEqual(Client().server, "odin.example:7")
            host, port = SERVER.rsplit(":", 1)
            os.environ["ODIN_URL"], os.environ["ODIN_PORT"] = host, port
            with Client() as odin:
                self.assertIn("diamond", [p.path for p in odin.pipelines()])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_no_token_is_unauthenticated_with_a_hint(self) -> None:
        saved = os.environ.pop("ODIN_TOKEN", None)
        try:
            with self.assertRaises(Unauthenticated) as caught:
                Client(SERVER).pipelines()
        finally:
            if saved is not None:
                os.environ["ODIN_TOKEN"] = saved
        self.assertIn("ODIN_TOKEN", str(caught.exception))
        self.assertIsInstance(caught.exception, odin_client.OdinError)

    def test_an_unknown_token_is_unauthenticated_and_never_echoed(self) -> None:
        secret = "not-a-real-token-4711"
        with self.assertRaises(Unauthenticated) as caught:
            Client(SERVER, secret).pipelines()
        self.assertNotIn(secret, str(caught.exception))

    def test_a_viewer_reads_but_may_not_run(self) -> None:
        viewer = Client(SERVER, TOKENS["viewer"])
        self.assertTrue(viewer.pipelines())
        with self.assertRaises(PermissionDenied) as caught:
            viewer.run("diamond")
        self.assertIn("permission denied", str(caught.exception))
        with self.assertRaises(PermissionDenied):
            viewer.push(REPO / "diamond", path="viewer/diamond")

    def test_a_token_with_whitespace_is_refused_locally(self) -> None:
        with self.assertRaises(ValueError) as caught:
            Client(SERVER, "abc def")
        self.assertNotIn("abc def", str(caught.exception))

    def test_no_server_is_unavailable_naming_the_address(self) -> None:
        port = free_port()
        with self.assertRaises(Unavailable) as caught:
            Client(f"127.0.0.1:{port}", retries=1).pipelines()
        message = str(caught.exception)
        self.assertIn(f"127.0.0.1:{port}", message)
        self.assertIn("ODIN_SERVER", message)

    def test_unavailable_calls_are_retried_until_the_server_comes_up(self) -> None:
        port = free_port()
        result: Dict[str, Any] = {}
        # Enough retries (backoff capped at 5 s) for a server to start on a busy machine.
        client = Client(f"127.0.0.1:{port}", TOKENS["viewer"], retries=40)

        def call() -> None:
            try:
                result["pipelines"] = client.pipelines()
            except Exception as e:  # reported below
                result["error"] = e

        caller = threading.Thread(target=call)
        caller.start()
        # The first attempt has failed once the caller is sleeping before its first retry.
        time.sleep(0.3)
        self.assertNotIn("pipelines", result, "the call cannot succeed before the server exists")
        argv = json.loads(os.environ["ODIN_TEST_ODIN_ARGV"])
        tokens = Path(os.environ["ODIN_TEST_TOKENS_FILE"])
        with tempfile.TemporaryDirectory() as data:
            server = subprocess.Popen(
                argv + ["server", "--host", "127.0.0.1", "--port", str(port), "--http-port", "0",
                        "--data", data,
                        "--repo", str(REPO), "--tokens", str(tokens)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                caller.join(timeout=WAIT * 2)
            finally:
                server.terminate()
                server.wait(timeout=30)
        self.assertNotIn("error", result)
        self.assertIn("diamond", [p.path for p in result["pipelines"]])


class TlsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.server = os.environ["ODIN_TEST_TLS_SERVER"]
        self.dir = Path(os.environ["ODIN_TEST_TLS_DIR"])

    def test_tls_with_a_ca_and_a_client_certificate(self) -> None:
        cert = self.dir / "cert.pem"
        key = self.dir / "key.pem"
        clients = [
            Client(self.server, TOKENS["operator"], ca=cert, cert=cert, key=key),  # paths
            Client(self.server, TOKENS["operator"], ca=cert.read_text(), cert=cert.read_text(), key=key.read_text()),
            Client(self.server, TOKENS["operator"], ca=cert.read_bytes(), cert=cert.read_bytes(), key=key.read_bytes()),
        ]
        for odin in clients:
            with odin:
                self.assertRegex(odin.sync().commit, r"^[0-9a-f]{40}$")

    def test_tls_refusals_are_unavailable_with_a_reason(self) -> None:
        cert = self.dir / "cert.pem"
        with self.assertRaises(Unavailable):
            Client(self.server, TOKENS["operator"], retries=0).sync()  # plaintext to a TLS port
        with self.assertRaises(Unavailable):
            Client(self.server, TOKENS["operator"], tls=True, retries=0).sync()  # system roots
        with self.assertRaises(Unavailable):
            Client(self.server, TOKENS["operator"], ca=cert, retries=0).sync()  # no client certificate
        with self.assertRaises(ValueError):
            Client(self.server, ca=cert, cert=cert)  # a certificate without its key


class PipelinesTest(unittest.TestCase):
    def setUp(self) -> None:
        self.odin = Client(SERVER, TOKENS["viewer"])

    def test_pipelines_lists_every_pipeline_with_validity(self) -> None:
        listed = {p.path: p for p in self.odin.pipelines()}
        self.assertTrue({"diamond", "failing", "flaky", "broken"} <= set(listed))
        self.assertEqual(listed["diamond"].task_count, 4)
        self.assertTrue(listed["diamond"].valid)
        self.assertFalse(listed["broken"].valid)
        self.assertRegex(listed["diamond"].commit, r"^[0-9a-f]{40}$")
        self.assertEqual([p.path for p in self.odin.pipelines("diamond")], ["diamond"])
        self.assertEqual(self.odin.pipelines("dia"), [], "a prefix is a directory, not any start of a path")

    def test_pipeline_is_normalized(self) -> None:
        p = self.odin.pipeline("diamond")
        self.assertEqual(p.name, "diamond")
        self.assertEqual([t.name for t in p.tasks], ["prepare", "left", "right", "report"])
        self.assertEqual(p.task("report").depends, ("left", "right"))
        self.assertEqual(p.task("prepare").resource_type, "Pod")
        self.assertTrue(p.fail_fast)
        with self.assertRaises(KeyError):
            p.task("nope")

    def test_unknown_pipeline_is_not_found(self) -> None:
        with self.assertRaises(NotFound) as caught:
            self.odin.pipeline("no/such/pipeline")
        self.assertIn("no/such/pipeline", str(caught.exception))

    def test_invalid_pipeline_raises_with_positioned_problems(self) -> None:
        with self.assertRaises(InvalidPipeline) as caught:
            self.odin.pipeline("broken")
        problems = caught.exception.problems
        self.assertTrue(problems)
        self.assertEqual(problems[0].file, "broken/main.yml")
        self.assertGreater(problems[0].line, 0)
        self.assertIn("broken/main.yml:", str(caught.exception))

    def test_validate_checks_a_local_directory_on_the_server(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            good = write_pipeline(Path(tmp) / "good", "tasks:\n- name: a\n  image: busybox\n  command: [echo, hi]\n")
            verdict = self.odin.validate(good)
            self.assertTrue(verdict)
            self.assertIsNotNone(verdict.pipeline)
            assert verdict.pipeline is not None
            self.assertEqual(verdict.pipeline.path, "good")
            bad = write_pipeline(
                Path(tmp) / "bad",
                "tasks:\n- name: a\n  image: busybox\n  args: ['${RUNPATH}']\n- name: b\n  image: x\n  depends: nope\n",
            )
            verdict = self.odin.validate(bad, path="team/bad")
            self.assertFalse(verdict)
            self.assertIsNone(verdict.pipeline)
            errors = [p for p in verdict.problems if p.severity == "error"]
            self.assertTrue(any("RUNPATH" in p.message and p.line == 4 and p.column > 0 for p in errors), verdict)
            self.assertTrue(all(p.file == "team/bad/main.yml" for p in errors), verdict)
            self.assertIn("team/bad/main.yml:4:", str(verdict))
            with self.assertRaises(FileNotFoundError):
                self.odin.validate(Path(tmp) / "missing")
            (Path(tmp) / "empty").mkdir()
            with self.assertRaises(FileNotFoundError) as caught:
                self.odin.validate(Path(tmp) / "empty")
            self.assertIn("main.yml", str(caught.exception))


class RepositoryTest(unittest.TestCase):
    def test_push_commits_a_directory_that_then_runs(self) -> None:
        odin = operator()
        with tempfile.TemporaryDirectory() as tmp:
            local = write_pipeline(
                Path(tmp) / "hello",
                "name: hello\ntasks:\n- name: greet\n  image: busybox\n  command: sh\n"
                "  args: [-c, 'cat ${WORK_PATH}/greeting.txt']\n",
                **{"greeting.txt": "hello from a pushed file\n", ".hidden": "not sent\n"},
            )
            pushed = odin.push(local, "Add hello", path="python/hello")
            self.assertTrue(pushed.changed)
            self.assertRegex(pushed.commit, r"^[0-9a-f]{40}$")
            self.assertEqual(sorted(pushed.files), ["greeting.txt", "main.yml"])
            self.assertEqual((REPO / "python" / "hello" / "greeting.txt").read_text(), "hello from a pushed file\n")
            again = odin.push(local, "Add hello", path="python/hello")
            self.assertFalse(again.changed)
            self.assertIn("python/hello", [p.path for p in odin.pipelines("python/")])
            run = odin.run("python/hello")
            run.wait(timeout=WAIT)
            self.assertEqual(list(run.logs()), ["hello from a pushed file"])

    def test_push_of_an_invalid_pipeline_raises_with_problems_and_commits_nothing(self) -> None:
        odin = operator()
        before = odin.pipelines()[0].commit
        with tempfile.TemporaryDirectory() as tmp:
            local = write_pipeline(Path(tmp) / "bad", "tasks:\n- name: a\n  command: [echo]\n")
            with self.assertRaises(InvalidPipeline) as caught:
                odin.push(local, path="python/bad")
        problems = caught.exception.problems
        self.assertTrue(problems, "problems travel in the odin-problems-bin trailer")
        self.assertTrue(any(p.file == "python/bad/main.yml" and p.line > 0 and "image" in p.message for p in problems),
                        problems)
        self.assertIn("python/bad/main.yml:", str(caught.exception))
        self.assertFalse((REPO / "python" / "bad").exists())
        self.assertEqual(odin.pipelines()[0].commit, before)

    def test_push_refuses_symbolic_links(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = write_pipeline(Path(tmp) / "linked", "tasks:\n- name: a\n  image: busybox\n")
            (local / "secret").symlink_to("/etc/passwd")
            with self.assertRaises(ValueError) as caught:
                operator().push(local)
            self.assertIn("secret is a symbolic link", str(caught.exception))

    def test_sync_picks_up_a_changed_repository(self) -> None:
        odin = operator()
        first = odin.sync()
        write_pipeline(REPO / "python" / "synced", "tasks:\n- name: a\n  image: busybox\n  command: [true]\n")
        after = odin.sync()
        self.assertTrue(after.changed)
        self.assertEqual(after.previous_commit, first.commit)
        self.assertNotEqual(after.commit, first.commit)
        self.assertFalse(odin.sync().changed)
        self.assertIn("python/synced", [p.path for p in odin.pipelines("python/")])


class RunsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.odin = operator()

    def test_a_run_followed_to_the_end(self) -> None:
        run = self.odin.run("diamond", labels={"suite": "python", "case": "followed"})
        self.assertRegex(run.id, r"^diamond-[a-z0-9]{8}$")
        self.assertEqual(run.labels, {"suite": "python", "case": "followed"})
        changes = list(run.watch())
        last = changes[-1]
        self.assertIsInstance(last, RunStatus)
        assert isinstance(last, RunStatus)
        self.assertEqual(last.state, RunState.SUCCEEDED)
        done = [c.task for c in changes if isinstance(c, TaskRun) and c.state == TaskState.SUCCEEDED]
        self.assertEqual(sorted(done), ["left", "prepare", "report", "right"])
        self.assertLess(done.index("prepare"), done.index("left"))
        self.assertEqual(done[-1], "report")
        self.assertEqual(len(done), len(set(done)), "each change is reported once")
        status = run.wait(timeout=WAIT)  # at once: the run has ended
        self.assertEqual(status.state, "SUCCEEDED")
        self.assertEqual(run.state, RunState.SUCCEEDED)
        self.assertIsNotNone(status.duration)
        tasks = run.tasks
        self.assertEqual(list(tasks), ["prepare", "left", "right", "report"])
        self.assertTrue(all(t.state == TaskState.SUCCEEDED and t.exit_code == 0 for t in tasks.values()))
        self.assertEqual(run.outputs("prepare"), {"words": 7})
        self.assertEqual(run.outputs("report"), {})
        with self.assertRaises(NotFound):
            run.outputs("nope")

    def test_a_runs_files_listed_read_and_downloaded(self) -> None:
        run = self.odin.run("diamond", labels={"suite": "python", "case": "files"})
        run.wait(timeout=WAIT)
        top = {f.path: f.type for f in run.files()}
        self.assertEqual(top.get("shared"), "directory")
        tree = {f.path: f for f in run.files("shared", recursive=True)}
        self.assertEqual(sorted(tree), ["shared/count", "shared/left", "shared/right"])
        self.assertEqual(tree["shared/count"].size, 2)
        self.assertIsNotNone(tree["shared/count"].modify_time)
        self.assertEqual(run.read("shared/count"), b"7\n")
        self.assertEqual(run.read("shared/left"), b"left: 7 words\n")
        with self.assertRaises(odin_client.InvalidArgument):
            run.read("shared")  # a directory
        with self.assertRaises(NotFound):
            run.read("shared/nope")
        with self.assertRaises(odin_client.InvalidArgument):
            run.files("../../etc")
        with tempfile.TemporaryDirectory() as to:
            written = run.download("shared", to)
            self.assertEqual(sorted(p.relative_to(to).as_posix() for p in written),
                             ["shared/count", "shared/left", "shared/right"])
            self.assertEqual((Path(to) / "shared" / "right").read_text(), "right: prepare reported 7 words\n")
            everything = run.download(to=Path(to) / "all")
            self.assertIn(f"{run.id}/shared/count",
                          [p.relative_to(Path(to) / "all").as_posix() for p in everything])
        with self.assertRaises(odin_client.ResourceExhausted):
            run.download("shared", tempfile.gettempdir(), max_bytes=3)

    def test_a_failing_run_raises_naming_its_failed_tasks(self) -> None:
        run = self.odin.run("failing")
        with self.assertRaises(RunFailed) as caught:
            run.wait(timeout=WAIT)
        e = caught.exception
        self.assertNotIsInstance(e, RunCancelled)
        self.assertEqual([t.task for t in e.failed_tasks], ["breaks"])
        self.assertEqual(e.failed_tasks[0].exit_code, 2)
        self.assertEqual(e.run.state, RunState.FAILED)
        message = str(e)
        self.assertIn(f"run {run.id} FAILED", message)
        self.assertIn("breaks", message)
        self.assertIn("exit 2", message)
        self.assertEqual(run.tasks["never-runs"].state, TaskState.SKIPPED)
        self.assertEqual(list(run.logs(task="breaks")), ["something went wrong"])

    def test_logs_of_every_task_and_of_one(self) -> None:
        run = self.odin.run("diamond")
        run.wait(timeout=WAIT)
        lines = list(run.logs())
        self.assertEqual([line.task for line in lines][0], "prepare")
        self.assertIn(f"prepare: {run.id}--prepare counted 7 words in words.txt", lines)
        self.assertIn("right: prepare reported 7 words", lines)
        self.assertEqual(lines[-1], f"report: done (run {run.id})")
        self.assertEqual(lines[-1].task, "report")
        self.assertEqual(list(run.logs(task="right")), ["right: prepare reported 7 words"])
        self.assertEqual(list(run.logs(task="report", tail=1)), [f"report: done (run {run.id})"])
        with self.assertRaises(NotFound):
            list(run.logs(task="nope"))

    def test_logs_followed_across_tasks_started_later_and_retried_attempts(self) -> None:
        run = self.odin.run("flaky")
        # Started right after submit: the tasks have not printed (or even started) yet.
        lines = [(line.task, str(line)) for line in run.logs(follow=True)]
        self.assertEqual(
            lines,
            [
                ("sometimes", "first attempt: failing on purpose"),
                ("sometimes", "second attempt: fine"),
                ("after", "sometimes succeeded on a retry"),
            ],
        )
        self.assertEqual(run.state, RunState.SUCCEEDED)
        self.assertEqual(run.tasks["sometimes"].attempt, 2)

    def test_logs_follow_of_one_task_while_it_prints(self) -> None:
        run = self.odin.run("ticker")
        got: List[str] = []
        for line in run.logs(task="tick", follow=True):
            got.append(str(line))
        self.assertEqual(got, ["tick 1", "tick 2", "tick 3"])
        self.assertEqual(run.wait(timeout=WAIT).state, RunState.SUCCEEDED)

    def test_leaving_a_follow_early_stops_it(self) -> None:
        run = self.odin.run("slow")
        for line in run.logs(follow=True):
            self.assertEqual(line, "started")
            break
        run.cancel()
        with self.assertRaises(RunCancelled):
            run.wait(timeout=WAIT)

    def test_cancel_stops_a_run_and_wait_says_so(self) -> None:
        run = self.odin.run("slow")
        with self.assertRaises(WaitTimeout) as caught:
            run.wait(timeout=0.5)
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertIn(run.id, str(caught.exception))
        self.assertFalse(run.state.finished, "the run goes on after a wait timed out")
        status = run.cancel("enough")
        self.assertTrue(status.cancel_requested or status.state == RunState.CANCELLED)
        with self.assertRaises(RunCancelled) as cancelled:
            run.wait(timeout=WAIT)
        self.assertIsInstance(cancelled.exception, RunFailed)
        self.assertIn("enough", str(cancelled.exception))
        self.assertEqual(run.state, RunState.CANCELLED)
        self.assertEqual(run.cancel().state, RunState.CANCELLED, "cancelling again changes nothing")

    def test_retry_runs_the_failed_tasks_again(self) -> None:
        run = self.odin.run("retry-me")
        with self.assertRaises(RunFailed):
            run.wait(timeout=WAIT)
        first = run.tasks["once"]
        self.assertIs(run.retry(), run)
        self.assertEqual(run.last.attempt, 2)
        self.assertEqual(run.wait(timeout=WAIT).state, RunState.SUCCEEDED)
        self.assertEqual(run.tasks["once"].attempt, first.attempt + 1)
        with self.assertRaises(FailedPrecondition):
            run.retry()  # it succeeded

    def test_runs_are_found_by_id_and_by_labels(self) -> None:
        marker = f"m{time.monotonic_ns()}"
        a = self.odin.run("diamond", labels={"find": marker, "which": "a"})
        b = self.odin.run("diamond", labels={"find": marker, "which": "b"})
        self.assertEqual(self.odin.get_run(a.id).id, a.id)
        self.assertEqual(self.odin.get_run(f"{a.id}--prepare").id, a.id)
        self.assertEqual({r.id for r in self.odin.runs(labels={"find": marker})}, {a.id, b.id})
        self.assertEqual([r.id for r in self.odin.runs(labels={"find": marker, "which": "b"})], [b.id])
        self.assertEqual(len(list(self.odin.runs(labels={"find": marker}, limit=1))), 1)
        for r in (a, b):
            r.wait(timeout=WAIT)
        self.assertEqual({r.id for r in self.odin.runs(states=["succeeded"], selector=f"find={marker}")},
                         {a.id, b.id})
        self.assertEqual(list(self.odin.runs(states=[RunState.FAILED], labels={"find": marker})), [])
        with self.assertRaises(ValueError):
            list(self.odin.runs(states=["DONE"]))
        with self.assertRaises(NotFound):
            self.odin.get_run("diamond-00000000")

    def test_delete_with_purge_forgets_the_run(self) -> None:
        run = self.odin.run("diamond")
        run.wait(timeout=WAIT)
        run.delete(purge=True)
        with self.assertRaises(NotFound):
            self.odin.get_run(run.id)

    def test_an_invalid_pipeline_cannot_run(self) -> None:
        with self.assertRaises(InvalidPipeline) as caught:
            self.odin.run("broken")
        self.assertTrue(caught.exception.problems)
        with self.assertRaises(NotFound):
            self.odin.run("no-such-pipeline")

    def test_params_reach_the_tasks_typed_and_are_recorded(self) -> None:
        run = self.odin.run("params", params={"lr": 0.5, "epochs": "4", "layers": [64, 32]})
        self.assertEqual(run.parameters, {"lr": 0.5, "epochs": 4, "layers": [64, 32], "fast": False})
        run.wait(timeout=WAIT)
        self.assertEqual(run.outputs("train"), {"lr": 0.5, "epochs": 4, "layers": [64, 32]})
        again = self.odin.get_run(run.id)
        self.assertEqual(again.parameters["epochs"], 4)
        with self.assertRaises(InvalidPipeline) as caught:
            self.odin.run("params", params={"lr": "fast", "batch": 3})
        messages = "\n".join(p.message for p in caught.exception.problems)
        self.assertIn('parameter lr is a number; "fast" is not', messages)
        self.assertIn('parameter "batch" was given, but the pipeline does not declare it', messages)
        with self.assertRaises(TypeError):
            self.odin.run("params", params={"lr": {"nested": 1}})


class SchedulesTest(unittest.TestCase):
    def setUp(self) -> None:
        self.odin = operator()

    def test_a_schedule_made_listed_paused_resumed_and_deleted(self) -> None:
        made = self.odin.create_schedule(
            "py-every-second",
            "params",
            "* * * * * *",
            params={"epochs": "2"},
            concurrency="forbid",
            notify=["team", "oncall:failed"],
        )
        self.addCleanup(lambda: self._delete("py-every-second"))
        self.assertEqual((made.name, made.pipeline, made.cron, made.timezone), ("py-every-second", "params", "* * * * * *", "UTC"))
        self.assertEqual(made.parameters, {"epochs": 2})
        self.assertEqual((made.catchup, made.concurrency, made.paused, made.declared), ("skip", "forbid", False, False))
        self.assertEqual(
            made.notify,
            (Webhook("team", ("succeeded", "failed", "cancelled")), Webhook("oncall", ("failed",))),
        )
        self.assertEqual([str(w) for w in made.notify], ["team", "oncall:failed"])
        self.assertIsNotNone(made.next_tick)
        self.assertIn("py-every-second", [s.name for s in self.odin.schedules("params")])

        # Its first tick starts a run with its parameters, labelled with its name.
        deadline = time.monotonic() + WAIT
        listed = made
        while not listed.last_run_id:
            self.assertLess(time.monotonic(), deadline, "the schedule started no run")
            time.sleep(0.2)
            listed = next(s for s in self.odin.schedules() if s.name == "py-every-second")
        run = self.odin.get_run(listed.last_run_id)
        self.assertEqual(run.parameters["epochs"], 2)
        self.assertEqual(run.labels.get("schedule"), "py-every-second")
        self.assertIsNotNone(listed.last_tick)

        paused = self.odin.pause_schedule("py-every-second")
        self.assertTrue(paused.paused)
        self.assertIsNone(paused.next_tick)
        resumed = self.odin.resume_schedule("py-every-second")
        self.assertFalse(resumed.paused)
        self.assertIsNotNone(resumed.next_tick)
        self.odin.pause_schedule("py-every-second")
        self.odin.delete_schedule("py-every-second")
        self.assertNotIn("py-every-second", [s.name for s in self.odin.schedules()])
        with self.assertRaises(NotFound):
            self.odin.pause_schedule("py-every-second")

    def test_bad_schedules_are_refused_with_what_is_wrong(self) -> None:
        with self.assertRaises(InvalidArgument) as caught:
            self.odin.create_schedule("py-bad", "params", "61 * * * *")
        self.assertIn('cron "61 * * * *" is not valid', str(caught.exception))
        with self.assertRaises(InvalidPipeline) as bad_params:
            self.odin.create_schedule("py-bad", "params", "0 2 * * *", params={"lr": "fast"})
        self.assertIn("parameter lr is a number", str(bad_params.exception))
        with self.assertRaises(InvalidArgument) as bad_state:
            self.odin.create_schedule("py-bad", "params", "0 2 * * *", notify=["team:finished"])
        self.assertIn('"finished" is not a state a run ends in', str(bad_state.exception))
        with self.assertRaises(ValueError) as url:
            self.odin.create_schedule("py-bad", "params", "0 2 * * *", notify=["https://hooks.example/T0/SECRET"])
        self.assertNotIn("SECRET", str(url.exception))
        with self.assertRaises(ValueError):
            self.odin.create_schedule("py-bad", "params", "0 2 * * *", concurrency="never")
        self.odin.create_schedule("py-twice", "params", "0 2 * * *", paused=True)
        self.addCleanup(lambda: self._delete("py-twice"))
        with self.assertRaises(AlreadyExists):
            self.odin.create_schedule("py-twice", "params", "0 3 * * *")
        with self.assertRaises(PermissionDenied):
            Client(SERVER, TOKENS["viewer"]).create_schedule("py-viewer", "params", "0 2 * * *")
        with self.assertRaises(NotFound):
            self.odin.delete_schedule("py-no-such-schedule")

    def _delete(self, name: str) -> None:
        try:
            self.odin.delete_schedule(name)
        except NotFound:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    unittest.main()
