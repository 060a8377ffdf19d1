"""A run of a pipeline: a handle that asks the server for the run's current state when read."""

from __future__ import annotations

import os
import posixpath
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, Union

import grpc

from ._models import LogLine, RunFile, RunState, RunStatus, TaskRun, TaskState, _time
from ._proto.odin.common.v1 import run_pb2
from ._proto.odin.dagscheduler.v1 import dagscheduler_pb2
from ._proto.odin.k8slauncher.v1 import k8slauncher_pb2
from .errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    RunCancelled,
    RunFailed,
    Unavailable,
    WaitTimeout,
    from_rpc_error,
)

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Run"]

# Task states whose attempt has a log worth reading (the attempt was started).
_STARTED = (TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.ERROR,
            TaskState.RETRYING, TaskState.CANCELLED)


class Run:
    """A run of a pipeline on the server.

    ``id``, ``pipeline``, ``commit`` and ``labels`` are fixed; ``state``, ``tasks`` and
    :meth:`status` ask the server each time they are read. Obtain one from
    :meth:`Client.run`, :meth:`Client.get_run` or :meth:`Client.runs`.
    """

    def __init__(self, client: "Client", run: run_pb2.Run) -> None:
        self._client = client
        first = RunStatus.from_proto(run)
        self.id: str = first.id
        """Run id (``PIPE_ID``)."""
        self.pipeline: str = first.pipeline
        """The pipeline's path in the repository."""
        self.commit: str = first.commit
        """The commit the run is pinned to."""
        self.labels: Dict[str, str] = first.labels
        """Labels given at submit."""
        self.parameters: Dict[str, Any] = first.parameters
        """The run's parameter values (given ones as their declared type, else defaults)."""
        self.last: RunStatus = first
        """The run as last seen by this handle (no server call); :meth:`status` refreshes it."""

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.last.state.value}>"

    # -- reading ----------------------------------------------------------------------------------

    def status(self) -> RunStatus:
        """The run now: state, attempt, times, reason."""
        res = self._client._unary(
            self._client._scheduler.GetRun, dagscheduler_pb2.GetRunRequest(run_id=self.id, task_page_size=1)
        )
        self.last = RunStatus.from_proto(res.run)
        return self.last

    @property
    def state(self) -> RunState:
        """The run's state now (asks the server)."""
        return self.status().state

    @property
    def tasks(self) -> Dict[str, TaskRun]:
        """Every task of the run now, by name, in pipeline file order (asks the server)."""
        tasks: Dict[str, TaskRun] = {}
        token = ""
        while True:
            res = self._client._unary(
                self._client._scheduler.GetRun,
                dagscheduler_pb2.GetRunRequest(run_id=self.id, task_page_size=5000, task_page_token=token),
            )
            self.last = RunStatus.from_proto(res.run)
            for t in res.task_runs:
                tasks[t.task] = TaskRun.from_proto(t)
            token = res.next_task_page_token
            if not token:
                return tasks

    def task(self, name: str) -> TaskRun:
        """One task of the run now; :class:`~odin_client.errors.NotFound` naming the run's tasks if none."""
        tasks = self.tasks
        if name not in tasks:
            raise NotFound(f"run {self.id} has no task {name!r}; its tasks: {', '.join(tasks)}")
        return tasks[name]

    def outputs(self, task: str) -> Dict[str, Any]:
        """The outputs ``task`` reported (``$TASK_PATH/outputs.json``, or its termination message on
        Kubernetes), as a dict; empty until it reports any."""
        return self.task(task).outputs

    # -- following --------------------------------------------------------------------------------

    def _events(self, deadline: Optional[float] = None,
                on_call: Optional[Callable[[Any], None]] = None) -> Iterator[Union[RunStatus, TaskRun]]:
        """WatchRun as RunStatus and TaskRun values, snapshot first, until the run ends.

        A stream lost (UNAVAILABLE, or ended while the run has not: the server restarting) is
        opened again, up to the client's retries in a row; the fresh snapshot repeats states
        already seen, which callers dedupe. ``deadline`` (time.monotonic) bounds the whole watch
        with DeadlineExceeded.
        """
        failures = 0
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            call = self._client._scheduler.WatchRun(
                dagscheduler_pb2.WatchRunRequest(run_id=self.id), metadata=self._client._metadata, timeout=timeout
            )
            if on_call is not None:
                on_call(call)
            try:
                for message in call:
                    failures = 0
                    kind = message.WhichOneof("event")
                    if kind == "snapshot":
                        if message.snapshot.HasField("run"):
                            yield self._seen(message.snapshot.run)
                        for t in message.snapshot.task_runs:
                            yield TaskRun.from_proto(t)
                    elif kind == "run":
                        yield self._seen(message.run)
                    elif kind == "task_run":
                        yield TaskRun.from_proto(message.task_run)
                if self.last.state.finished:
                    return
                lost = f"the watch of run {self.id} ended while it was {self.last.state.value}; wait again"
                if failures >= self._client.retries:
                    raise Unavailable(lost)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or failures >= self._client.retries:
                    raise from_rpc_error(e, self._client.server) from None
            finally:
                call.cancel()
            time.sleep(self._client._backoff(failures))
            failures += 1

    def _seen(self, run: run_pb2.Run) -> RunStatus:
        self.last = RunStatus.from_proto(run)
        return self.last

    def watch(self) -> Iterator[Union[RunStatus, TaskRun]]:
        """Yields the run's state changes until it ends: first its current state (the run, then
        every task that has left PENDING), then each change as it happens — a :class:`RunStatus`
        when the run's state changes, a :class:`TaskRun` when a task's state or attempt does.
        Reconnects when the server restarts. Stop early with ``break``."""
        seen: Dict[str, Tuple[Any, ...]] = {}
        for value in self._events():
            if isinstance(value, RunStatus):
                key: Tuple[Any, ...] = (value.state, value.attempt, value.cancel_requested)
                name = ""
            else:
                if value.state == TaskState.PENDING and value.task not in seen:
                    seen[value.task] = (value.state, value.attempt)
                    continue
                key = (value.state, value.attempt)
                name = value.task
            if seen.get(name) != key:
                seen[name] = key
                yield value

    def wait(self, timeout: Optional[float] = None) -> RunStatus:
        """Blocks until the run ends and returns it when it SUCCEEDED.

        Raises :class:`~odin_client.errors.RunFailed` naming the failed tasks (with their exit
        codes and reasons; ``failed_tasks`` holds them) when it FAILED,
        :class:`~odin_client.errors.RunCancelled` when it was cancelled, and
        :class:`~odin_client.errors.WaitTimeout` when ``timeout`` seconds pass first (the run goes
        on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        tasks: Dict[str, TaskRun] = {}
        try:
            for value in self._events(deadline):
                if isinstance(value, TaskRun):
                    tasks[value.task] = value
        except DeadlineExceeded:
            raise WaitTimeout(
                f"run {self.id} still {self.last.state.value} after {timeout:g} s; it goes on — wait again, or cancel()"
            ) from None
        run = self.last
        if run.state == RunState.SUCCEEDED:
            return run
        failed = [t for t in tasks.values() if t.state in (TaskState.FAILED, TaskState.ERROR)]
        counts: Dict[str, int] = {}
        for t in tasks.values():
            counts[t.state.value.lower()] = counts.get(t.state.value.lower(), 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        detail = "".join(f"\n  {t}" for t in failed)
        if run.state == RunState.CANCELLED:
            raise RunCancelled(f"run {self.id} was cancelled ({run.message or run.reason}): {summary}",
                               run=run, failed_tasks=failed)
        names = ", ".join(t.task for t in failed) or "none recorded"
        raise RunFailed(
            f"run {self.id} FAILED — failed task{'s' if len(failed) != 1 else ''}: {names} ({summary}){detail}"
            + (f"\n  logs: run.logs(task={failed[0].task!r}) or odin logs {failed[0].task_id}" if failed else ""),
            run=run,
            failed_tasks=failed,
        )

    # -- logs -------------------------------------------------------------------------------------

    def _log_stream(self, task: str, attempt: int, follow: bool, tail: Optional[int],
                    on_call: Optional[Callable[[Any], None]] = None) -> Iterator[LogLine]:
        req = k8slauncher_pb2.StreamLogsRequest(run_id=self.id, task=task, attempt=attempt, follow=follow)
        if tail is not None:
            req.tail_lines.value = tail
            req.tail_lines.SetInParent()
        for res in self._client._stream(self._client._launcher.StreamLogs, req, on_call=on_call):
            for line in res.lines:
                yield LogLine(line.line, task=task, pod=line.pod, container=line.container,
                              time=_time(line, "time"))

    def logs(self, task: Optional[str] = None, follow: bool = False, *, tail: Optional[int] = None) -> Iterator[LogLine]:
        """Yields the log lines of one task, or of every task (``task=None``).

        Without ``follow``: what has been printed so far (the latest attempt of each task that
        started, in pipeline order), then stops. With ``follow``: also every line printed from now
        on — including tasks that start later and retried attempts — until the run (or ``task``)
        ends. ``tail`` starts each task at its last that many lines. Each line is a ``str`` with
        ``.task``, ``.pod``, ``.container`` and ``.time``. Stop early with ``break``.
        """
        if not follow:
            tasks = self.tasks
            if task is not None and task not in tasks:
                raise NotFound(f"run {self.id} has no task {task!r}; its tasks: {', '.join(tasks)}")
            for t in tasks.values():
                if (task is None or t.task == task) and t.attempt > 0 and t.state in _STARTED:
                    yield from self._log_stream(t.task, 0, False, tail)
            return
        if task is not None:
            self.task(task)  # NotFound naming the run's tasks, before following anything
        yield from self._follow_logs(task, tail)

    def _follow_logs(self, only: Optional[str], tail: Optional[int]) -> Iterator[LogLine]:
        """Follows every started attempt of the run's tasks (or of `only`) until the run ends.

        One thread per attempt streams its log into a queue; the run's watch says when attempts
        start, so tasks launched later and retries are followed too.
        """
        lines: "queue.Queue[Union[LogLine, BaseException, None]]" = queue.Queue()
        stop = threading.Event()
        opened: Set[Tuple[str, int]] = set()
        # Producers not finished: the watcher, plus one per started attempt. The watcher counts a
        # pump before starting it and before its own end marker, so the count never reaches 0 early.
        producers = [1]
        lock = threading.Lock()
        calls: List[Any] = []  # every open stream, cancelled when the consumer stops

        def register(call: Any) -> None:
            with lock:
                calls.append(call)
            if stop.is_set():
                call.cancel()

        def pump(name: str, attempt: int) -> None:
            try:
                for line in self._log_stream(name, attempt, True, tail, on_call=register):
                    if stop.is_set():
                        return
                    lines.put(line)
            except NotFound:
                pass  # the attempt left no log (e.g. it never got a process)
            except BaseException as e:  # handed to the consumer, which raises it
                if not stop.is_set():
                    lines.put(e)
            finally:
                lines.put(None)

        def watcher() -> None:
            try:
                for value in self._events(on_call=register):
                    if stop.is_set():
                        return
                    if not isinstance(value, TaskRun) or (only is not None and value.task != only):
                        continue
                    key = (value.task, value.attempt)
                    if value.attempt > 0 and value.state in _STARTED and key not in opened:
                        opened.add(key)
                        with lock:
                            producers[0] += 1
                        threading.Thread(target=pump, args=key, daemon=True).start()
            except BaseException as e:
                if not stop.is_set():
                    lines.put(e)
            finally:
                lines.put(None)

        threading.Thread(target=watcher, daemon=True).start()
        try:
            while True:
                item = lines.get()
                if item is None:
                    with lock:
                        producers[0] -= 1
                        if producers[0] == 0:
                            return
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            with lock:
                for call in calls:
                    call.cancel()

    # -- data -------------------------------------------------------------------------------------

    def files(self, path: str = "", *, recursive: bool = False) -> List[RunFile]:
        """Lists the run's files under its ``RUN_PATH`` (each task writes under ``<RUN_PATH>/<task>``),
        or under ``path`` inside it; ``recursive`` lists a directory's whole tree. A file named by
        ``path`` is listed alone. Paths leading out of ``RUN_PATH`` raise
        :class:`~odin_client.errors.InvalidArgument`."""
        res = self._client._unary(
            self._client._launcher.ListRunFiles,
            k8slauncher_pb2.ListRunFilesRequest(run_id=self.id, path=path, recursive=recursive),
        )
        return [RunFile.from_proto(f) for f in res.files]

    def _download(self, path: str, max_bytes: Optional[int]) -> Iterator[Tuple[RunFile, bytes]]:
        req = k8slauncher_pb2.DownloadRunFilesRequest(run_id=self.id, path=path, max_bytes=max_bytes or 0)
        current: Optional[RunFile] = None
        chunks: List[bytes] = []
        for msg in self._client._stream(self._client._launcher.DownloadRunFiles, req):
            if msg.HasField("file"):
                if current is not None:
                    yield current, b"".join(chunks)
                current, chunks = RunFile.from_proto(msg.file), []
            if msg.data:
                chunks.append(msg.data)
        if current is not None:
            yield current, b"".join(chunks)

    def read(self, path: str, *, max_bytes: Optional[int] = None) -> bytes:
        """The content of one file under the run's ``RUN_PATH`` (``"train/metrics.json"``).
        A directory raises :class:`~odin_client.errors.InvalidArgument` (use :meth:`download`); more
        than ``max_bytes`` (default: the server's limit, 1 GiB) raises
        :class:`~odin_client.errors.ResourceExhausted` before anything is sent."""
        got = list(self._download(path, max_bytes))
        if len(got) != 1 or got[0][0].path != posixpath.normpath(path.strip("/")):
            raise InvalidArgument(f"{path or 'RUN_PATH'} of run {self.id} is a directory; use run.download()")
        return got[0][1]

    def download(self, path: str = "", to: Union[str, "os.PathLike[str]"] = ".", *,
                 max_bytes: Optional[int] = None) -> List[Path]:
        """Downloads a file or a directory under the run's ``RUN_PATH`` (default: all of it) into the
        directory ``to``, as ``odin data --download`` does: each file at its path relative to the
        parent of ``path`` (``"train"`` → ``to/train/…``; all of ``RUN_PATH`` → ``to/<run id>/…``).
        Returns the files written. More than ``max_bytes`` (default: the server's limit, 1 GiB)
        raises :class:`~odin_client.errors.ResourceExhausted` before anything is written."""
        asked = posixpath.normpath(path.replace("\\", "/")).strip("/")
        asked = "" if asked == "." else asked
        base = posixpath.dirname(asked)
        dest = Path(to)
        written: List[Path] = []
        for f, data in self._download(path, max_bytes):
            rel = posixpath.join(self.id, f.path) if asked == "" else f.path
            local = posixpath.relpath(rel, base) if base else rel
            # The server's paths are checked again here: nothing is written outside ``to``.
            if posixpath.isabs(local) or ".." in local.split("/") or local in ("", "."):
                raise InvalidArgument(f"refusing to write {f.path!r} outside {dest}")
            target = dest.joinpath(*local.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
        return written

    # -- acting -----------------------------------------------------------------------------------

    def cancel(self, reason: str = "") -> RunStatus:
        """Stops the run: nothing new starts, running tasks are stopped, the run ends CANCELLED.
        Cancelling an ended run changes nothing. Returns the run as the request was recorded."""
        res = self._client._unary(
            self._client._scheduler.CancelRun,
            dagscheduler_pb2.CancelRunRequest(run_id=self.id, reason=reason or "cancelled from the Python client"),
        )
        return self._seen(res.run)

    def retry(self) -> "Run":
        """Starts an ended, unsuccessful run again as its next attempt: failed, errored, skipped and
        cancelled tasks run again, succeeded ones keep their results. Returns this run.
        :class:`~odin_client.errors.FailedPrecondition` while it runs or when it succeeded."""
        res = self._client._unary(
            self._client._scheduler.RetryRun,
            dagscheduler_pb2.RetryRunRequest(run_id=self.id, request_id=str(uuid.uuid4())),
        )
        self._seen(res.run)
        return self

    def delete(self, purge: bool = False) -> None:
        """Removes an ended run's Kubernetes objects; with ``purge`` also its records and its
        ``RUN_PATH`` data (the run is unknown afterwards). FailedPrecondition while it runs."""
        self._client._unary(
            self._client._scheduler.DeleteRun,
            dagscheduler_pb2.DeleteRunRequest(run_id=self.id, purge_records=purge, purge_data=purge),
        )
