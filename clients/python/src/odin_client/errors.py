"""Exceptions raised by odin-client.

Every failed call raises a subclass of :class:`OdinError`, chosen by the gRPC status the server
returned, with a message that says what went wrong and what to do::

    OdinError
    ├── NotFound              a pipeline, run or task that does not exist
    ├── AlreadyExists
    ├── InvalidArgument       a request the server refused; ``problems`` says where
    │   └── InvalidPipeline   a pipeline with errors, each a positioned :class:`Problem`
    ├── FailedPrecondition    e.g. retrying a run that has not ended
    ├── PermissionDenied      the token's role may not do this
    ├── Unauthenticated       no token, or an unknown one
    ├── Unavailable           the server cannot be reached (after the client's retries)
    ├── DeadlineExceeded      also a ``TimeoutError``
    ├── Conflict, ResourceExhausted, Unsupported
    ├── RunFailed             ``Run.wait()``: the run ended FAILED; ``failed_tasks`` says which
    │   └── RunCancelled      ``Run.wait()``: the run was cancelled
    └── WaitTimeout           ``Run.wait(timeout=…)`` ran out; also a ``TimeoutError``
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Type

import grpc

if TYPE_CHECKING:
    from ._models import RunStatus, TaskRun

__all__ = [
    "AlreadyExists",
    "Conflict",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "InvalidPipeline",
    "NotFound",
    "OdinError",
    "PermissionDenied",
    "Problem",
    "ResourceExhausted",
    "RunCancelled",
    "RunFailed",
    "Unauthenticated",
    "Unavailable",
    "Unsupported",
    "WaitTimeout",
]

# Trailing-metadata keys set by Odin's services (libs/service-kit/src/errors.ts).
_PROBLEMS_KEY = "odin-problems-bin"
_REQUEST_ID_KEY = "odin-request-id"


@dataclass(frozen=True)
class Problem:
    """One finding in a pipeline, positioned as precisely as the parser could."""

    message: str
    """What is wrong and what to do about it."""
    file: str = ""
    """The file, relative to the repository root (e.g. ``sst2/main.yml``)."""
    line: int = 0
    """1-based line; 0 when unknown."""
    column: int = 0
    """1-based column; 0 when unknown."""
    task: str = ""
    """The task the problem is in; empty when none."""
    field: str = ""
    """The key path inside the task or pipeline, e.g. ``args[2]``; empty when none."""
    severity: str = "error"
    """``error`` (the pipeline cannot run) or ``warning``."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line > 0 else self.file
        level = " warning:" if self.severity == "warning" else ""
        task = f" {self.task}:" if self.task else ""
        return f"{where}:{level}{task} {self.message}" if where else f"{level}{task} {self.message}".strip()


class OdinError(Exception):
    """Base class of every error odin-client raises."""

    code: Optional[grpc.StatusCode] = None
    """The gRPC status code, when the error came from the server."""
    details: str = ""
    """The server's own message (``message`` adds what to do)."""
    request_id: Optional[str] = None
    """The server's id of the failed call, to find it in the server's log."""

    def __init__(self, message: str, *, details: str = "", code: Optional[grpc.StatusCode] = None,
                 request_id: Optional[str] = None) -> None:
        super().__init__(message)
        self.details = details or message
        self.code = code
        self.request_id = request_id


class NotFound(OdinError):
    """A pipeline, run, task or commit that does not exist (NOT_FOUND)."""


class AlreadyExists(OdinError):
    """What the call would create exists already (ALREADY_EXISTS)."""


class InvalidArgument(OdinError):
    """The server refused the request as wrong (INVALID_ARGUMENT); ``problems`` says where."""

    problems: Tuple[Problem, ...] = ()
    """Positioned problems sent by the server (e.g. ``main.yml:3:5``); may be empty."""

    def __init__(self, message: str, *, problems: Sequence[Problem] = (), details: str = "",
                 code: Optional[grpc.StatusCode] = None, request_id: Optional[str] = None) -> None:
        super().__init__(message, details=details, code=code, request_id=request_id)
        self.problems = tuple(problems)


class InvalidPipeline(InvalidArgument):
    """A pipeline has errors; ``problems`` lists each with file, line and column."""


class FailedPrecondition(OdinError):
    """The call is not possible in the current state, e.g. retrying a running run (FAILED_PRECONDITION)."""


class PermissionDenied(OdinError):
    """The token is valid but its role may not do this (PERMISSION_DENIED)."""


class Unauthenticated(OdinError):
    """The server requires a token and got none, or an unknown one (UNAUTHENTICATED)."""


class Unavailable(OdinError):
    """The server (or a service behind it) cannot be reached, after the client's retries (UNAVAILABLE)."""


class DeadlineExceeded(OdinError, TimeoutError):
    """The call took longer than its timeout (DEADLINE_EXCEEDED)."""


class Conflict(OdinError):
    """A concurrent change won; read again and retry (ABORTED)."""


class ResourceExhausted(OdinError):
    """A size or quota limit was hit, e.g. an oversized file (RESOURCE_EXHAUSTED)."""


class Unsupported(OdinError):
    """The server, or this version of its API, cannot do what was asked (UNIMPLEMENTED, or known in advance)."""


class RunFailed(OdinError):
    """A run ended without succeeding; raised by :meth:`Run.wait`."""

    run: "RunStatus"
    """The run as it ended."""
    failed_tasks: Tuple["TaskRun", ...]
    """The tasks that failed or errored (not those skipped or cancelled because of them)."""

    def __init__(self, message: str, *, run: "RunStatus", failed_tasks: Sequence["TaskRun"] = ()) -> None:
        super().__init__(message)
        self.run = run
        self.failed_tasks = tuple(failed_tasks)


class RunCancelled(RunFailed):
    """A run was cancelled before it ended; raised by :meth:`Run.wait`."""


class WaitTimeout(OdinError, TimeoutError):
    """:meth:`Run.wait` gave up after its timeout; the run goes on."""


_BY_CODE: Dict[grpc.StatusCode, Type[OdinError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNIMPLEMENTED: Unsupported,
}


def _problems_from(trailers: Sequence[Tuple[str, object]]) -> List[Problem]:
    """The ``odin-problems-bin`` trailer (a JSON array) as Problems; empty when absent or unreadable."""
    for key, value in trailers:
        if key != _PROBLEMS_KEY:
            continue
        try:
            raw = json.loads(value.decode("utf-8") if isinstance(value, bytes) else str(value))
        except (ValueError, UnicodeDecodeError):
            return []
        if not isinstance(raw, list):
            return []
        return [
            Problem(
                message=str(p["message"]),
                file=str(p.get("file") or ""),
                line=int(p.get("line") or 0),
                column=int(p.get("column") or 0),
                task=str(p.get("task") or ""),
                field=str(p.get("field") or ""),
                severity=str(p.get("severity") or "error"),
            )
            for p in raw
            if isinstance(p, dict) and isinstance(p.get("message"), str)
        ]
    return []


def _connection_failure(details: str) -> Optional[str]:
    """A short reason when an UNAVAILABLE status means "no connection", else None."""
    if re.search(r"ECONNREFUSED|connection refused|Connection refused", details):
        return "connection refused"
    if re.search(r"DNS resolution failed|name resolution|Name or service not known", details, re.I):
        return "unknown host"
    if re.search(r"SSL|TLS|certificate", details):
        return f"TLS handshake failed ({details[:200]}) — do client and server agree on TLS and the CA?"
    if re.search(r"failed to connect|connection reset|Socket closed|timed out|handshaker shutdown", details, re.I):
        return f"no connection ({details[:200]})"
    return None


def from_rpc_error(err: grpc.RpcError, server: str) -> OdinError:
    """Maps a failed gRPC call to the matching :class:`OdinError`, with a message saying what to do."""
    code: grpc.StatusCode = err.code()
    details: str = err.details() or ""
    try:
        trailers = list(err.trailing_metadata() or ())
    except Exception:  # a locally generated status may carry none
        trailers = []
    request_id = next((str(v) for k, v in trailers if k == _REQUEST_ID_KEY), None)

    def make(cls: Type[OdinError], message: str) -> OdinError:
        return cls(message, details=details, code=code, request_id=request_id)

    if code == grpc.StatusCode.INVALID_ARGUMENT:
        problems = _problems_from(trailers)
        errors = [p for p in problems if p.severity != "warning"]
        if problems:
            text = details + "".join(f"\n  {p}" for p in errors or problems)
            return InvalidPipeline(text, problems=problems, details=details, code=code, request_id=request_id)
        return make(InvalidArgument, details)
    if code == grpc.StatusCode.UNAVAILABLE:
        reason = _connection_failure(details)
        if reason is not None:
            message = f"cannot reach odin at {server}: {reason} — is the server running? pass server= or set ODIN_SERVER"
        else:
            message = f"odin at {server} is unavailable: {details}"
        return make(Unavailable, message)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        hint = "" if "ODIN_TOKEN" in details else "; pass token= or set ODIN_TOKEN"
        return make(Unauthenticated, f"not authenticated: {details}{hint}")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return make(PermissionDenied, f"permission denied: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return make(DeadlineExceeded, f"odin at {server} did not answer in time ({details})")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return make(
            Unsupported,
            f"odin at {server} does not implement this call ({details}) — is it an Odin server of the same version?",
        )
    cls = _BY_CODE.get(code, OdinError)
    return make(cls, details or f"{code.name} from odin at {server}")
