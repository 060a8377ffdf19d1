"""Plain Python values for what Odin returns: enums, frozen dataclasses, datetimes.

Each value keeps the protobuf message it was made from in ``proto``, for fields this module does
not surface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Dict, List, Optional, Tuple

from google.protobuf import json_format, struct_pb2

from ._proto.odin.common.v1 import pipeline_pb2, problem_pb2, run_pb2
from ._proto.odin.dagscheduler.v1 import dagscheduler_pb2
from ._proto.odin.k8slauncher.v1 import k8slauncher_pb2
from .errors import Problem

__all__ = [
    "LogLine",
    "Pipeline",
    "PipelineSummary",
    "PushResult",
    "RunFile",
    "RunState",
    "RunStatus",
    "Schedule",
    "SyncResult",
    "Task",
    "TaskRun",
    "TaskState",
    "Validation",
    "Webhook",
]


class RunState(str, Enum):
    """The state of a run; compares equal to its name (``state == "SUCCEEDED"``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UNSPECIFIED = "UNSPECIFIED"

    @property
    def finished(self) -> bool:
        """True for SUCCEEDED, FAILED and CANCELLED: the run will not change again (unless retried)."""
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)

    def __str__(self) -> str:
        return self.value


class TaskState(str, Enum):
    """The state of a task's current attempt; compares equal to its name."""

    PENDING = "PENDING"
    LAUNCHING = "LAUNCHING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"
    RETRYING = "RETRYING"
    UNSPECIFIED = "UNSPECIFIED"

    @property
    def finished(self) -> bool:
        """True when the task will not change again in this run attempt."""
        return self in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.ERROR, TaskState.SKIPPED,
                        TaskState.CANCELLED)

    def __str__(self) -> str:
        return self.value


def _run_state(value: int) -> RunState:
    return RunState(run_pb2.RunState.Name(value).replace("RUN_STATE_", ""))


def _task_state(value: int) -> TaskState:
    return TaskState(run_pb2.TaskState.Name(value).replace("TASK_STATE_", ""))


def _time(message: Any, name: str) -> Optional[datetime]:
    if not message.HasField(name):
        return None
    ts = getattr(message, name)
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


def _duration(message: Any, name: str) -> Optional[timedelta]:
    if not message.HasField(name):
        return None
    d = getattr(message, name)
    return timedelta(seconds=d.seconds, microseconds=d.nanos // 1000)


def problem_from_proto(p: problem_pb2.Problem) -> Problem:
    """A wire Problem as a :class:`Problem`."""
    return Problem(
        message=p.message,
        file=p.file,
        line=p.line,
        column=p.column,
        task=p.task,
        field=p.field,
        severity="warning" if p.severity == problem_pb2.SEVERITY_WARNING else "error",
    )


@dataclass(frozen=True)
class RunStatus:
    """A run at one moment: its state, attempt and times."""

    id: str
    """Run id (``PIPE_ID``), e.g. ``diamond-x7k2p9qa``."""
    pipeline: str
    """The pipeline's path in the repository."""
    pipeline_name: str
    """The pipeline's ``name``."""
    commit: str
    """The git commit the run is pinned to."""
    state: RunState
    """Current state."""
    attempt: int
    """1 for the first execution, +1 per :meth:`Run.retry`."""
    labels: Dict[str, str]
    """Labels given at submit."""
    task_count: int
    """Number of tasks."""
    create_time: Optional[datetime]
    """When the run was submitted (UTC)."""
    start_time: Optional[datetime]
    """When its first task was launched."""
    end_time: Optional[datetime]
    """When it ended; None while it runs."""
    reason: str
    """Machine-readable cause of the state, e.g. ``TaskFailed``; empty when none."""
    message: str
    """Human-readable detail, e.g. which task failed."""
    cancel_requested: bool
    """True once cancel was asked for and running tasks are being stopped."""
    run_path: str
    """``RUN_PATH`` as tasks see it."""
    parameters: Dict[str, Any]
    """The run's parameter values (given ones as their declared type, else defaults)."""
    proto: run_pb2.Run = field(repr=False, compare=False)
    """The wire message."""

    @classmethod
    def from_proto(cls, r: run_pb2.Run) -> "RunStatus":
        """A wire Run as a RunStatus."""
        return cls(
            id=r.id,
            pipeline=r.pipeline,
            pipeline_name=r.pipeline_name,
            commit=r.commit,
            state=_run_state(r.state),
            attempt=r.attempt,
            labels=dict(r.labels),
            task_count=r.task_count,
            create_time=_time(r, "create_time"),
            start_time=_time(r, "start_time"),
            end_time=_time(r, "end_time"),
            reason=r.reason,
            message=r.message,
            cancel_requested=r.cancel_requested,
            run_path=r.run_path,
            parameters=struct_to_dict(r.parameters) if r.HasField("parameters") else {},
            proto=r,
        )

    @property
    def duration(self) -> Optional[timedelta]:
        """From the first launch to the end (or now, while running); None before the first launch."""
        if self.start_time is None:
            return None
        return (self.end_time or datetime.now(timezone.utc)) - self.start_time

    def __str__(self) -> str:
        why = f" ({self.reason}: {self.message})" if self.reason and self.state != RunState.SUCCEEDED else ""
        return f"run {self.id} {self.state.value}{why}"


@dataclass(frozen=True)
class TaskRun:
    """One task of a run: its latest attempt and that attempt's outcome."""

    run_id: str
    """The run's id."""
    task: str
    """The task's name in the pipeline."""
    task_id: str
    """``TASK_ID``: ``<run id>--<task>``."""
    state: TaskState
    """Current state."""
    attempt: int
    """1-based attempt; 0 while never launched."""
    exit_code: Optional[int]
    """The main container's exit code once it exited; None otherwise."""
    reason: str
    """Machine-readable cause, e.g. ``Error``, ``OOMKilled``, ``DependencyFailed``; empty when none."""
    message: str
    """Human-readable detail."""
    outputs: Dict[str, Any]
    """Outputs the task reported (its ``outputs.json`` or termination message); empty when none."""
    launch_time: Optional[datetime]
    """When the current attempt was handed to the launcher."""
    start_time: Optional[datetime]
    """When the current attempt was first seen running."""
    end_time: Optional[datetime]
    """When the current attempt ended."""
    object_name: str
    """The Kubernetes object (or local process id) of the current attempt."""
    proto: run_pb2.TaskRun = field(repr=False, compare=False)
    """The wire message."""

    @classmethod
    def from_proto(cls, t: run_pb2.TaskRun) -> "TaskRun":
        """A wire TaskRun as a TaskRun."""
        outputs: Dict[str, Any] = {}
        if t.outputs_json:
            try:
                parsed = json.loads(t.outputs_json)
                outputs = parsed if isinstance(parsed, dict) else {"value": parsed}
            except ValueError:
                outputs = {}
        return cls(
            run_id=t.run_id,
            task=t.task,
            task_id=t.task_id,
            state=_task_state(t.state),
            attempt=t.attempt,
            exit_code=t.exit_code.value if t.HasField("exit_code") else None,
            reason=t.reason,
            message=t.message,
            outputs=outputs,
            launch_time=_time(t, "launch_time"),
            start_time=_time(t, "start_time"),
            end_time=_time(t, "end_time"),
            object_name=t.object_name,
            proto=t,
        )

    def __str__(self) -> str:
        parts = [f"task {self.task} {self.state.value}"]
        if self.attempt > 1:
            parts.append(f"attempt {self.attempt}")
        if self.exit_code is not None and self.state != TaskState.SUCCEEDED:
            parts.append(f"exit {self.exit_code}")
        if self.reason and self.state not in (TaskState.SUCCEEDED, TaskState.RUNNING):
            parts.append(f"({self.reason}{': ' + self.message if self.message else ''})")
        return " ".join(parts)


class LogLine(str):
    """One line a task printed: the text itself (a ``str``), plus where it came from."""

    task: str
    """The task that printed it."""
    pod: str
    """The pod (or, for local processes, the task id) that printed it."""
    container: str
    """The container that printed it."""
    time: Optional[datetime]
    """When it was printed, when known."""

    def __new__(cls, line: str, *, task: str, pod: str = "", container: str = "",
                time: Optional[datetime] = None) -> "LogLine":
        self = super().__new__(cls, line)
        self.task = task
        self.pod = pod
        self.container = container
        self.time = time
        return self


_FILE_TYPES = {
    k8slauncher_pb2.RUN_FILE_TYPE_FILE: "file",
    k8slauncher_pb2.RUN_FILE_TYPE_DIRECTORY: "directory",
    k8slauncher_pb2.RUN_FILE_TYPE_SYMLINK: "symlink",
}


@dataclass(frozen=True)
class RunFile:
    """A file or directory under a run's ``RUN_PATH``, as :meth:`Run.files` lists it."""

    path: str
    """Its path relative to ``RUN_PATH``, with ``/`` separators (``train/model.bin``)."""
    type: str
    """``file``, ``directory``, ``symlink`` (listed, not followed) or ``other``."""
    size: int
    """Size in bytes (files; 0 otherwise)."""
    modify_time: Optional[datetime]
    """When it was last modified."""
    proto: k8slauncher_pb2.RunFile = field(repr=False, compare=False)
    """The ``RunFile`` message it was made from."""

    @classmethod
    def from_proto(cls, f: k8slauncher_pb2.RunFile) -> "RunFile":
        """Makes one from a ``odin.k8slauncher.v1.RunFile``."""
        return cls(path=f.path, type=_FILE_TYPES.get(f.type, "other"), size=int(f.size),
                   modify_time=_time(f, "modify_time"), proto=f)


@dataclass(frozen=True)
class PipelineSummary:
    """One pipeline of the repository, as listed by :meth:`Client.pipelines`."""

    path: str
    """The pipeline's directory relative to the repository root."""
    name: str
    """Its ``name``; empty when ``main.yml`` could not be parsed."""
    task_count: int
    """Number of tasks."""
    valid: bool
    """True when it has no errors."""
    problems: Tuple[Problem, ...]
    """Every problem found, errors and warnings."""
    commit: str
    """The commit listed."""


@dataclass(frozen=True)
class Task:
    """One task of a normalized pipeline (defaults applied, ``^`` references resolved to names)."""

    name: str
    """Short name, unique in the pipeline."""
    image: str
    """Container image."""
    command: Tuple[str, ...]
    """Container entrypoint."""
    args: Tuple[str, ...]
    """Arguments."""
    depends: Tuple[str, ...]
    """Names of the tasks that must succeed first."""
    resource_type: str
    """``Pod``, ``Job``, ``TFJob``, ``PyTorchJob``, ``MPIJob`` or ``ElasticJob``."""
    num_gpus: int
    """GPUs per pod (per worker for multi-worker types)."""
    num_workers: int
    """Replicas of multi-worker types."""
    outputs: Dict[str, str]
    """Declared outputs, name → path."""
    env: Dict[str, str]
    """Environment variables."""
    retries: int
    """Retries of a failed attempt."""
    timeout: Optional[timedelta]
    """Limit on one attempt; None = none."""
    proto: pipeline_pb2.Task = field(repr=False, compare=False)
    """The wire message, with every field (mounts, secrets, resources …)."""

    @classmethod
    def from_proto(cls, t: pipeline_pb2.Task) -> "Task":
        """A wire Task as a Task."""
        names = {
            pipeline_pb2.RESOURCE_TYPE_POD: "Pod",
            pipeline_pb2.RESOURCE_TYPE_JOB: "Job",
            pipeline_pb2.RESOURCE_TYPE_TF_JOB: "TFJob",
            pipeline_pb2.RESOURCE_TYPE_PYTORCH_JOB: "PyTorchJob",
            pipeline_pb2.RESOURCE_TYPE_MPI_JOB: "MPIJob",
            pipeline_pb2.RESOURCE_TYPE_ELASTIC_JOB: "ElasticJob",
        }
        return cls(
            name=t.name,
            image=t.image,
            command=tuple(t.command),
            args=tuple(t.args),
            depends=tuple(t.depends),
            resource_type=names.get(t.resource_type, "Pod"),
            num_gpus=t.num_gpus,
            num_workers=t.num_workers,
            outputs=dict(t.outputs),
            env=dict(t.env),
            retries=t.retries,
            timeout=_duration(t, "timeout"),
            proto=t,
        )


@dataclass(frozen=True)
class Pipeline:
    """A pipeline after validation and normalization, as runs see it."""

    path: str
    """Its directory relative to the repository root."""
    name: str
    """Its ``name``; prefixes every run id."""
    commit: str
    """The commit it was read at; empty for validated, not yet pushed files."""
    fail_fast: bool
    """When a task fails: skip every task not started (True) or only its dependents (False)."""
    parallelism: int
    """At most this many tasks at once; 0 = no cap."""
    tasks: Tuple[Task, ...]
    """The tasks in file order."""
    problems: Tuple[Problem, ...]
    """Warnings (a pipeline with errors is never returned as a Pipeline)."""
    proto: pipeline_pb2.Pipeline = field(repr=False, compare=False)
    """The wire message."""

    @classmethod
    def from_proto(cls, p: pipeline_pb2.Pipeline, problems: Tuple[Problem, ...] = ()) -> "Pipeline":
        """A wire Pipeline as a Pipeline."""
        return cls(
            path=p.path,
            name=p.name,
            commit=p.commit,
            fail_fast=p.fail_fast,
            parallelism=p.parallelism,
            tasks=tuple(Task.from_proto(t) for t in p.tasks),
            problems=problems,
            proto=p,
        )

    def task(self, name: str) -> Task:
        """The task called ``name``; KeyError naming the pipeline's tasks when there is none."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"pipeline {self.path} has no task {name!r}; its tasks: {', '.join(t.name for t in self.tasks)}")


@dataclass(frozen=True)
class Validation:
    """The server's verdict on a pipeline directory (:meth:`Client.validate`)."""

    valid: bool
    """True when there is no error (warnings allowed)."""
    problems: Tuple[Problem, ...]
    """Every problem found, errors and warnings, positioned."""
    pipeline: Optional[Pipeline]
    """The normalized pipeline when valid."""

    def __bool__(self) -> bool:
        return self.valid

    def __str__(self) -> str:
        if not self.problems:
            return "valid"
        return "\n".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class PushResult:
    """What :meth:`Client.push` did."""

    pipeline: str
    """The pipeline's path in the repository."""
    commit: str
    """The commit holding the pushed files."""
    changed: bool
    """False when the files were already exactly so (no commit made)."""
    files: Tuple[str, ...]
    """The files sent, relative to the pipeline directory."""


@dataclass(frozen=True)
class SyncResult:
    """What :meth:`Client.sync` did."""

    commit: str
    """The commit served after the sync."""
    previous_commit: str
    """The commit served before it."""
    changed: bool
    """Whether the commit changed."""


@dataclass(frozen=True)
class Webhook:
    """A webhook a run's end is posted to, named by its secret (the URL stays with the server)."""

    secret: str
    """The webhook secret's name (a key of the server's webhooks file or Secret)."""
    on: Tuple[str, ...]
    """The end states it is posted for, lower case: ``succeeded``, ``failed``, ``cancelled``."""

    def __str__(self) -> str:
        """As ``odin schedule create --notify`` takes it: ``NAME`` or ``NAME:failed,cancelled``."""
        return self.secret if len(self.on) in (0, 3) else f"{self.secret}:{','.join(self.on)}"


def _policy(name: str, prefix: str) -> str:
    return name.replace(prefix, "").lower()


@dataclass(frozen=True)
class Schedule:
    """A cron schedule of a pipeline (declared in its ``main.yml`` or made with
    :meth:`Client.create_schedule`) and where it stands."""

    name: str
    """``nightly`` (made with the API) or ``<pipeline path>:<name>`` (declared)."""
    pipeline: str
    """The pipeline's path in the repository."""
    cron: str
    """Five cron fields (six with seconds first)."""
    timezone: str
    """The IANA time zone the fields are read in."""
    parameters: Dict[str, Any]
    """The parameter values each run gets (the others take their defaults)."""
    catchup: str
    """``skip`` or ``once``: what ticks missed while no scheduler ran do."""
    concurrency: str
    """``allow``, ``forbid`` or ``replace``: what a tick does while the last run is active."""
    paused: bool
    """Ticks start no run while set."""
    declared: bool
    """True when declared in the pipeline's ``schedules:`` (changed by pushing the pipeline)."""
    created_by: str
    """Who made it (the pipeline's ``main.yml`` for a declared one)."""
    create_time: Optional[datetime]
    next_tick: Optional[datetime]
    """Its next tick; None while paused."""
    last_tick: Optional[datetime]
    """The newest tick decided (run or skipped); None before the first."""
    last_run_id: str
    """The run its last tick started; empty before the first."""
    skipped_ticks: int
    """Ticks that started no run."""
    last_error: str
    """Why the last tick started no run; empty when it started one."""
    notify: Tuple[Webhook, ...]
    """Webhooks its runs post to when they end, besides the pipeline's ``notify:``."""
    proto: Any = field(repr=False, compare=False)

    @staticmethod
    def from_proto(s: Any) -> "Schedule":
        """A ``dagscheduler.v1.Schedule`` as a :class:`Schedule`."""
        return Schedule(
            name=s.name,
            pipeline=s.pipeline,
            cron=s.cron,
            timezone=s.timezone,
            parameters=struct_to_dict(s.parameters),
            catchup=_policy(dagscheduler_pb2.CatchupPolicy.Name(s.catchup), "CATCHUP_POLICY_"),
            concurrency=_policy(dagscheduler_pb2.ConcurrencyPolicy.Name(s.concurrency), "CONCURRENCY_POLICY_"),
            paused=s.paused,
            declared=s.declared,
            created_by=s.created_by,
            create_time=_time(s, "create_time"),
            next_tick=_time(s, "next_tick"),
            last_tick=_time(s, "last_tick"),
            last_run_id=s.last_run_id,
            skipped_ticks=s.skipped_ticks,
            last_error=s.last_error,
            notify=tuple(Webhook(secret=n.webhook_secret, on=tuple(n.on)) for n in s.notify),
            proto=s,
        )


def pipeline_summaries(res: Any) -> List[PipelineSummary]:
    """ListPipelinesResponse → summaries."""
    return [
        PipelineSummary(
            path=p.path,
            name=p.name,
            task_count=p.task_count,
            valid=p.valid,
            problems=tuple(problem_from_proto(x) for x in p.problems),
            commit=res.commit,
        )
        for p in res.pipelines
    ]


def _whole(v: Any) -> Any:
    """JSON numbers arrive as floats: a whole one is given back as an int (``3``, not ``3.0``)."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, list):
        return [_whole(x) for x in v]
    if isinstance(v, dict):
        return {k: _whole(x) for k, x in v.items()}
    return v


def struct_to_dict(s: struct_pb2.Struct) -> Dict[str, Any]:
    """A ``google.protobuf.Struct`` (run parameters) as a plain dict."""
    return {k: _whole(v) for k, v in json_format.MessageToDict(s).items()}


def dict_to_struct(values: Any) -> struct_pb2.Struct:
    """Run parameters as a ``google.protobuf.Struct``: str, int, float, bool and lists of them."""

    def check(name: str, v: Any) -> None:
        if isinstance(v, (list, tuple)):
            for x in v:
                check(name, x)
        elif not isinstance(v, (str, int, float, bool)):
            raise TypeError(
                f"parameter {name!r}: {type(v).__name__} is not a parameter value "
                "(use str, int, float, bool or a list of them)"
            )

    s = struct_pb2.Struct()
    for name, v in dict(values).items():
        if not isinstance(name, str):
            raise TypeError(f"parameter names are str, not {type(name).__name__}")
        check(name, v)
        s[name] = list(v) if isinstance(v, tuple) else v
    return s
