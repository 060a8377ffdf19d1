"""odin-client: run and follow Odin pipelines from Python.

    from odin_client import Client

    odin = Client()                      # ODIN_SERVER / ODIN_TOKEN, as the odin CLI
    for p in odin.pipelines():
        print(p.path, p.task_count, "valid" if p.valid else "INVALID")
    run = odin.run("diamond", labels={"owner": "me"})
    for line in run.logs(follow=True):
        print(f"[{line.task}] {line}")
    run.wait()                           # raises RunFailed naming the failed tasks
    print(run.outputs("prepare"))

Errors are :mod:`odin_client.errors` exceptions, all subclasses of :class:`OdinError`.
"""

try:
    from ._client import DEFAULT_SERVER, Client
except TypeError as e:
    # The stubs come from Debian's protoc 3.5; protobuf's newer `upb` implementation (PyPI's
    # default from 4.21 on) refuses that style of generated code.
    if "cannot be created directly" not in str(e):
        raise
    raise ImportError(
        "odin_client's generated stubs (protoc 3.5) need protobuf's cpp or python implementation, and this "
        "protobuf uses upb: set PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python before Python starts, or use "
        "Debian's python3-protobuf"
    ) from None
from ._models import (
    LogLine,
    Pipeline,
    PipelineSummary,
    PushResult,
    RunFile,
    RunState,
    RunStatus,
    Schedule,
    SyncResult,
    Task,
    TaskRun,
    TaskState,
    Validation,
    Webhook,
)
from ._run import Run
from .errors import (
    AlreadyExists,
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    InvalidPipeline,
    NotFound,
    OdinError,
    PermissionDenied,
    Problem,
    ResourceExhausted,
    RunCancelled,
    RunFailed,
    Unauthenticated,
    Unavailable,
    Unsupported,
    WaitTimeout,
)

__version__ = "0.1.0"
"""The package version (the Odin API it speaks is ``odin.*.v1``)."""

__all__ = [
    "AlreadyExists",
    "Client",
    "Conflict",
    "DEFAULT_SERVER",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "InvalidPipeline",
    "LogLine",
    "NotFound",
    "OdinError",
    "PermissionDenied",
    "Pipeline",
    "PipelineSummary",
    "Problem",
    "PushResult",
    "ResourceExhausted",
    "Run",
    "RunFile",
    "RunCancelled",
    "RunFailed",
    "RunState",
    "RunStatus",
    "Schedule",
    "SyncResult",
    "Task",
    "TaskRun",
    "TaskState",
    "Unauthenticated",
    "Unavailable",
    "Unsupported",
    "Validation",
    "Webhook",
    "WaitTimeout",
]
