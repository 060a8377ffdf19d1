"""The Odin client: one gRPC channel to an Odin server (``odin server`` or a cluster's gateway)."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, TypeVar, Union

import grpc

from ._models import (
    dict_to_struct,
    Pipeline,
    PipelineSummary,
    PushResult,
    RunState,
    Schedule,
    SyncResult,
    Validation,
    pipeline_summaries,
    problem_from_proto,
)
from ._proto.odin.common.v1 import file_pb2, pipeline_pb2, run_pb2
from ._proto.odin.dagscheduler.v1 import dagscheduler_pb2, dagscheduler_pb2_grpc
from ._proto.odin.k8slauncher.v1 import k8slauncher_pb2_grpc
from ._proto.odin.pipelineregistry.v1 import pipelineregistry_pb2, pipelineregistry_pb2_grpc
from ._proto.odin.reposync.v1 import reposync_pb2, reposync_pb2_grpc
from ._run import Run
from .errors import InvalidPipeline, from_rpc_error

__all__ = ["Client", "DEFAULT_SERVER"]

DEFAULT_SERVER = "localhost:50051"
"""Where :class:`Client` connects when neither ``server=`` nor ``ODIN_SERVER`` is given (as the CLI)."""

# As the server's limit (libs/service-kit DEFAULT_MAX_MESSAGE_BYTES), so a push near it still fits.
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# As `odin push`: one file of a pipeline directory may not exceed this.
_MAX_FILE_BYTES = 16 * 1024 * 1024

T = TypeVar("T")
PathLike = Union[str, "os.PathLike[str]"]


def _pem(value: Union[None, str, bytes, "os.PathLike[str]"]) -> Optional[bytes]:
    """PEM bytes from bytes, PEM text, or a path to a PEM file."""
    if value is None or isinstance(value, bytes):
        return value
    text = os.fspath(value)
    if "-----BEGIN" in text:
        return text.encode()
    return Path(text).read_bytes()


def _server_from_env(env: Mapping[str, str]) -> str:
    """``ODIN_SERVER``, else ``ODIN_URL:ODIN_PORT`` (ODIN_URL a host name or a URL), as the CLI."""
    server = env.get("ODIN_SERVER")
    if server:
        return server
    url, port = env.get("ODIN_URL", ""), env.get("ODIN_PORT", "")
    if url or port:
        host = re.sub(r"[:/].*$", "", re.sub(r"^[a-z][a-z0-9+.-]*://", "", url, flags=re.I))
        return f"{host or 'localhost'}:{port or '50051'}"
    return DEFAULT_SERVER


class Client:
    """A connection to Odin.

    ``server`` is ``host:port`` (default: ``ODIN_SERVER``, else the original Odin's
    ``ODIN_URL``/``ODIN_PORT``, else ``localhost:50051``, as the ``odin`` CLI); ``token`` is sent as ``authorization: Bearer …`` on every call (default:
    ``ODIN_TOKEN``; none when empty). TLS is off unless ``tls=True`` (system roots) or one of
    ``ca`` (the CA that signed the server's certificate), ``cert``/``key`` (a client certificate,
    for servers that require one) is given — each as PEM bytes, PEM text or a file path.

    Calls that fail with UNAVAILABLE (server restarting, connection refused) are retried
    ``retries`` times with exponential backoff (0.2 s doubling up to 5 s) before
    :class:`~odin_client.errors.Unavailable` is raised; every Odin call is safe to repeat. Unary
    calls time out after ``timeout`` seconds.

    Use it as a context manager, or call :meth:`close`::

        with Client() as odin:
            run = odin.run("diamond", labels={"owner": "me"})
            run.wait()
    """

    def __init__(
        self,
        server: Optional[str] = None,
        token: Optional[str] = None,
        *,
        tls: bool = False,
        ca: Union[None, str, bytes, "os.PathLike[str]"] = None,
        cert: Union[None, str, bytes, "os.PathLike[str]"] = None,
        key: Union[None, str, bytes, "os.PathLike[str]"] = None,
        timeout: float = 60.0,
        retries: int = 4,
    ) -> None:
        self.server: str = (server or _server_from_env(os.environ)).strip()
        """The address dialled."""
        if self.server.startswith(("http://", "https://")):
            raise ValueError(
                f"server={self.server!r}: give host:port (gRPC), e.g. localhost:50051; use tls=True for TLS"
            )
        raw_token = token if token is not None else os.environ.get("ODIN_TOKEN", "")
        raw_token = raw_token.strip()
        if any(c.isspace() for c in raw_token):
            # Never quote the token: it is a secret.
            raise ValueError("the Odin token contains whitespace; check ODIN_TOKEN or token=")
        self._metadata = (("authorization", f"Bearer {raw_token}"),) if raw_token else ()
        self.timeout = timeout
        """Seconds a unary call may take."""
        self.retries = max(0, retries)
        """Retries of a call that failed with UNAVAILABLE."""
        options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            # Reconnect soon after a failure, so a retry can find a server that has just come up.
            # (Not grpc.min_reconnect_backoff_ms: gRPC also takes it as the connect timeout, and a
            # busy server needs more than a few hundred milliseconds to accept a connection.)
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 5000),
        ]
        if tls or ca is not None or cert is not None or key is not None:
            if (cert is None) != (key is None):
                raise ValueError("a client certificate needs both cert= and key=")
            creds = grpc.ssl_channel_credentials(
                root_certificates=_pem(ca), private_key=_pem(key), certificate_chain=_pem(cert)
            )
            self._channel = grpc.secure_channel(self.server, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(self.server, options=options)
        self._registry = pipelineregistry_pb2_grpc.PipelineRegistryServiceStub(self._channel)
        self._repo = reposync_pb2_grpc.RepoSyncServiceStub(self._channel)
        self._scheduler = dagscheduler_pb2_grpc.DagSchedulerServiceStub(self._channel)
        self._launcher = k8slauncher_pb2_grpc.K8sLauncherServiceStub(self._channel)

    # -- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the connection; calls in progress are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(server={self.server!r}, token={'set' if self._metadata else 'none'})"

    def _backoff(self, attempt: int) -> float:
        return float(min(0.2 * 2**attempt, 5.0))

    def _unary(self, method: Callable[..., T], request: Any, timeout: Optional[float] = None) -> T:
        """Calls a unary method, retrying on UNAVAILABLE, mapping failures to OdinError."""
        attempt = 0
        while True:
            try:
                return method(request, metadata=self._metadata, timeout=timeout or self.timeout)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise from_rpc_error(e, self.server) from None

    def _stream(self, method: Callable[..., Any], request: Any, timeout: Optional[float] = None,
                on_call: Optional[Callable[[Any], None]] = None) -> Iterator[Any]:
        """Calls a server-streaming method and yields its messages; leaving early cancels the call.

        Only a call that failed before its first message is retried on UNAVAILABLE; callers that
        can resume (watching a run) reconnect themselves. ``on_call`` gets each call object, so
        another thread can cancel it.
        """
        attempt = 0
        while True:
            call = method(request, metadata=self._metadata, timeout=timeout)
            if on_call is not None:
                on_call(call)
            received = False
            try:
                for message in call:
                    received = True
                    yield message
                return
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and not received and attempt < self.retries:
                    time.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise from_rpc_error(e, self.server) from None
            finally:
                call.cancel()

    # -- pipelines --------------------------------------------------------------------------------

    def pipelines(self, prefix: str = "", *, commit: str = "") -> List[PipelineSummary]:
        """Every pipeline of the repository (at its newest commit, or ``commit``), valid or not,
        in path order; only those in directory ``prefix`` (e.g. ``alice``) when given."""
        res = self._unary(
            self._registry.ListPipelines,
            pipelineregistry_pb2.ListPipelinesRequest(commit=commit, path_prefix=prefix),
        )
        return pipeline_summaries(res)

    def pipeline(self, path: str, *, commit: str = "") -> Pipeline:
        """One pipeline, normalized (defaults applied), at the newest commit or ``commit``.

        Raises :class:`~odin_client.errors.NotFound` when ``path`` holds no ``main.yml``, and
        :class:`~odin_client.errors.InvalidPipeline` (with positioned problems) when it has errors.
        """
        res = self._unary(
            self._registry.GetPipeline, pipelineregistry_pb2.GetPipelineRequest(path=path, commit=commit)
        )
        problems = tuple(problem_from_proto(p) for p in res.problems)
        if not res.HasField("pipeline"):
            errors = [p for p in problems if p.severity == "error"] or list(problems)
            raise InvalidPipeline(
                f"pipeline {path} at commit {res.commit[:12]} is not valid:" + "".join(f"\n  {p}" for p in errors),
                problems=problems,
            )
        return Pipeline.from_proto(res.pipeline, problems)

    def validate(self, directory: PathLike, *, path: Optional[str] = None) -> Validation:
        """Validates a local pipeline directory on the server, exactly as it would be once pushed.

        ``path`` is where the pipeline would live in the repository (default: the directory's
        name); problems name files under it. Returns a :class:`Validation` (falsy when invalid);
        raises only when the directory cannot be read or the server cannot be asked.
        """
        files, pipeline_path = _read_pipeline_dir(directory, path)
        res = self._unary(
            self._registry.ValidatePipeline,
            pipelineregistry_pb2.ValidatePipelineRequest(path=pipeline_path, files=files),
        )
        problems = tuple(problem_from_proto(p) for p in res.problems)
        pipeline = Pipeline.from_proto(res.pipeline, problems) if res.HasField("pipeline") else None
        return Validation(valid=res.valid, problems=problems, pipeline=pipeline)

    def push(self, directory: PathLike, message: str = "", *, path: Optional[str] = None) -> PushResult:
        """Commits a local pipeline directory to the repository, as ``odin push DIR``.

        The pipeline's directory in the repository becomes exactly the local one (files not sent
        are deleted there); hidden files are skipped, symbolic links refused. ``path`` is the
        pipeline's place in the repository (default: the directory's name); ``message`` the commit
        message (default: generated). The server validates first: an invalid pipeline raises
        :class:`~odin_client.errors.InvalidPipeline` with positioned problems and nothing is
        committed. Safe to retry: the push carries a request id.
        """
        files, pipeline_path = _read_pipeline_dir(directory, path)
        res = self._unary(
            self._repo.Push,
            reposync_pb2.PushRequest(
                pipeline=pipeline_path, files=files, replace=True, message=message, request_id=str(uuid.uuid4())
            ),
        )
        return PushResult(
            pipeline=pipeline_path, commit=res.commit, changed=res.changed, files=tuple(f.path for f in files)
        )

    def sync(self) -> SyncResult:
        """Makes the server fetch the pipelines repository's remote now; returns where it is after."""
        res = self._unary(self._repo.Sync, reposync_pb2.SyncRequest())
        return SyncResult(commit=res.commit, previous_commit=res.previous_commit, changed=res.changed)

    # -- runs -------------------------------------------------------------------------------------

    def run(
        self,
        pipeline: str,
        params: Optional[Mapping[str, Any]] = None,
        labels: Optional[Mapping[str, str]] = None,
        *,
        commit: str = "",
    ) -> Run:
        """Starts a run of ``pipeline`` (its path in the repository) and returns it at once.

        ``labels`` are recorded on the run (find runs by them with :meth:`runs`); ``commit`` pins a
        commit (default: the newest). ``params`` are the values of the pipeline's declared
        parameters (str, int, float, bool or lists of them; a str is read as the declared type) —
        for a templated pipeline (``main.yml.jinja2``), its context. An unknown, missing or ill-typed
        parameter, like any invalid pipeline, raises :class:`~odin_client.errors.InvalidPipeline`
        with the problems, before anything runs. Safe to retry: the submit carries a request id.
        """
        parameters = dict_to_struct(params or {})
        bad = [k for k, v in (labels or {}).items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"labels must map str to str; not so for: {', '.join(map(repr, bad))}")
        res = self._unary(
            self._scheduler.SubmitRun,
            dagscheduler_pb2.SubmitRunRequest(
                pipeline=pipeline,
                commit=commit,
                labels=dict(labels or {}),
                request_id=str(uuid.uuid4()),
                parameters=parameters,
            ),
        )
        return Run(self, res.run)

    def get_run(self, run_id: str) -> Run:
        """An existing run by id (a task id ``RUN--TASK`` names its run); NotFound when unknown."""
        # A task id is `<run id>--<task>`, and a run id ends in `-` and 8 [a-z0-9].
        task_id = re.match(r"^(.*?-[a-z0-9]{8})--[^/]+$", run_id)
        run_id = task_id.group(1) if task_id else run_id
        res = self._unary(
            self._scheduler.GetRun, dagscheduler_pb2.GetRunRequest(run_id=run_id, task_page_size=1)
        )
        return Run(self, res.run)

    def runs(
        self,
        pipeline: str = "",
        *,
        states: Sequence[Union[RunState, str]] = (),
        labels: Optional[Mapping[str, str]] = None,
        selector: str = "",
        limit: Optional[int] = None,
    ) -> Iterator[Run]:
        """Runs, newest first, paging through the server's results lazily.

        Filters: ``pipeline`` path, ``states`` (any of them), ``labels`` (all must match) and/or a
        Kubernetes-style ``selector`` (``team=nlp,env!=dev``); ``limit`` stops after that many.
        """
        wanted = []
        for s in states:
            try:
                name = RunState(str(s).upper()).value
            except ValueError:
                raise ValueError(f"states: {s!r} is not a run state; use {', '.join(x.value for x in RunState)}") from None
            wanted.append(run_pb2.RunState.Value(f"RUN_STATE_{name}"))
        terms = [f"{k}={v}" for k, v in (labels or {}).items()] + ([selector] if selector else [])
        token = ""
        count = 0
        while True:
            res = self._unary(
                self._scheduler.ListRuns,
                dagscheduler_pb2.ListRunsRequest(
                    pipeline=pipeline, states=wanted, label_selector=",".join(terms), page_token=token,
                    page_size=min(limit, 1000) if limit else 0,
                ),
            )
            for r in res.runs:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield Run(self, r)
            token = res.next_page_token
            if not token:
                return

    # -- schedules --------------------------------------------------------------------------------

    def schedules(self, pipeline: str = "") -> List[Schedule]:
        """Every schedule, made with :meth:`create_schedule` or declared in a pipeline's
        ``schedules:``, by name, with its next tick and last run; only those of pipelines in
        ``pipeline`` (a path or a directory above it) when given."""
        res = self._unary(
            self._scheduler.ListSchedules, dagscheduler_pb2.ListSchedulesRequest(pipeline=pipeline)
        )
        return [Schedule.from_proto(s) for s in res.schedules]

    def create_schedule(
        self,
        name: str,
        pipeline: str,
        cron: str,
        *,
        timezone: str = "",
        params: Optional[Mapping[str, Any]] = None,
        catchup: str = "skip",
        concurrency: str = "allow",
        notify: Sequence[str] = (),
        paused: bool = False,
    ) -> Schedule:
        """Makes a cron schedule of ``pipeline``: from then on every tick starts one run (submitted
        by ``schedule:NAME``, labelled ``schedule=NAME``), however many schedulers run.

        ``name`` is lower-case letters, digits and ``-``; ``cron`` five fields (``"0 2 * * *"``) or
        six with seconds first, read in ``timezone`` (an IANA zone; default UTC). ``params`` are the
        values of the pipeline's parameters for every run, checked against the pipeline now.
        ``catchup`` (``skip``/``once``) says what ticks missed while no scheduler ran do;
        ``concurrency`` (``allow``/``forbid``/``replace``) what a tick does while the last run is
        active. ``notify`` names webhooks (``"slack-ml"``, ``"oncall:failed,cancelled"``, as
        ``odin schedule create --notify``) its runs post to when they end, besides the pipeline's.
        Bad values raise :class:`~odin_client.errors.InvalidArgument` (an invalid pipeline
        :class:`~odin_client.errors.InvalidPipeline`), a taken name
        :class:`~odin_client.errors.AlreadyExists`. Safe to retry: the create carries a request id.
        """
        catchups = {"skip": dagscheduler_pb2.CATCHUP_POLICY_SKIP, "once": dagscheduler_pb2.CATCHUP_POLICY_ONCE}
        concurrencies = {
            "allow": dagscheduler_pb2.CONCURRENCY_POLICY_ALLOW,
            "forbid": dagscheduler_pb2.CONCURRENCY_POLICY_FORBID,
            "replace": dagscheduler_pb2.CONCURRENCY_POLICY_REPLACE,
        }
        if catchup not in catchups:
            raise ValueError(f"catchup: {catchup!r} is not a policy; use {', '.join(catchups)}")
        if concurrency not in concurrencies:
            raise ValueError(f"concurrency: {concurrency!r} is not a policy; use {', '.join(concurrencies)}")
        if isinstance(notify, str):
            notify = [notify]
        targets = []
        for text in notify:
            if "://" in text or text.startswith("hooks."):
                # Never repeated: a webhook URL is a secret.
                raise ValueError("notify must name a webhook secret, not hold a URL: put the URL in the server's webhooks under a name")
            secret, _, states = text.partition(":")
            targets.append(
                pipeline_pb2.Notify(
                    webhook_secret=secret.strip(), on=[x.strip() for x in states.split(",") if x.strip()]
                )
            )
        res = self._unary(
            self._scheduler.CreateSchedule,
            dagscheduler_pb2.CreateScheduleRequest(
                name=name,
                pipeline=pipeline,
                cron=cron,
                timezone=timezone,
                parameters=dict_to_struct(params or {}),
                catchup=catchups[catchup],
                concurrency=concurrencies[concurrency],
                paused=paused,
                request_id=str(uuid.uuid4()),
                notify=targets,
            ),
        )
        return Schedule.from_proto(res.schedule)

    def pause_schedule(self, name: str) -> Schedule:
        """Stops a schedule's ticks from starting runs (declared ones too) until resumed;
        NotFound when there is none of that name."""
        res = self._unary(self._scheduler.PauseSchedule, dagscheduler_pb2.PauseScheduleRequest(name=name))
        return Schedule.from_proto(res.schedule)

    def resume_schedule(self, name: str) -> Schedule:
        """Lets a paused schedule start runs again, from its next tick (ticks while paused are not
        run)."""
        res = self._unary(self._scheduler.ResumeSchedule, dagscheduler_pb2.ResumeScheduleRequest(name=name))
        return Schedule.from_proto(res.schedule)

    def delete_schedule(self, name: str) -> None:
        """Removes a schedule made with :meth:`create_schedule`; its runs stay. A declared schedule
        raises :class:`~odin_client.errors.FailedPrecondition` (remove it from its ``main.yml``, or
        pause it)."""
        self._unary(self._scheduler.DeleteSchedule, dagscheduler_pb2.DeleteScheduleRequest(name=name))


def _read_pipeline_dir(directory: PathLike, path: Optional[str]) -> "tuple[List[file_pb2.File], str]":
    """A pipeline directory's files for Push/ValidatePipeline: regular files only, no hidden files."""
    root = Path(directory)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory; give the pipeline's directory (the one holding main.yml)")
    pipeline_path = (path if path is not None else root.resolve().name).strip("/")
    if not pipeline_path or any(part in ("", ".", "..") for part in pipeline_path.split("/")):
        raise ValueError(f"path={pipeline_path!r}: give the pipeline's directory in the repository, e.g. alice/sst2")
    files: List[file_pb2.File] = []

    def walk(at: Path) -> None:
        for entry in sorted(at.iterdir(), key=lambda p: p.name):
            if entry.name.startswith("."):
                continue
            rel = entry.relative_to(root).as_posix()
            if entry.is_symlink():
                raise ValueError(f"{rel} is a symbolic link; only regular files can be pushed or validated")
            if entry.is_dir():
                walk(entry)
            elif entry.is_file():
                size = entry.stat().st_size
                if size > _MAX_FILE_BYTES:
                    raise ValueError(f"{rel} is {size} bytes; the limit is {_MAX_FILE_BYTES}")
                files.append(file_pb2.File(path=rel, content=entry.read_bytes()))

    walk(root)
    if not any(f.path == "main.yml" for f in files):
        raise FileNotFoundError(f"{root} has no main.yml; a pipeline directory needs one")
    return files, pipeline_path

