"""Messages between the supervisor and a worker over the worker's pipes (sans-IO).

Same NDJSON framing as the client protocol (``runtimed.protocol.framing``), but its own
message set and a larger line limit: a result carries a whole manifest.

Each operation is one attrs record (:class:`CreateEnv`, :class:`ComputeSpecHash`,
:class:`ValidateEnv`) that names its typed result; both sides of the pipe use
them. On the wire a :class:`Job` carries the operation's name and fields, and a
:class:`Done` its result's fields; :func:`job_for`, :func:`operation_of` and
:func:`result_of` convert, so adding an operation is one record and one handler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from attrs import define, field

from runtimed.config import BackendConfig
from runtimed.core.convert import describe_error, make_converter
from runtimed.core.failure import Failure
from runtimed.core.phases import BuildPhase
from runtimed.core.project import ProjectSpec
from runtimed.core.records import Manifest
from runtimed.protocol.records import PackageOptions

__all__ = [
    "JOB_TYPES",
    "OPERATIONS",
    "PIPE_MAX_LINE",
    "WORKER_TYPES",
    "ComputeSpecHash",
    "CreateEnv",
    "Done",
    "EnvCreated",
    "ExtrasInstalled",
    "Failed",
    "InstallExtras",
    "Job",
    "Operation",
    "Progress",
    "ProjectRead",
    "ReadProject",
    "Ready",
    "SpecHash",
    "ValidateEnv",
    "Validated",
    "done_for",
    "job_for",
    "operation_of",
    "result_of",
]

PIPE_MAX_LINE = 16 * 1024 * 1024

R = TypeVar("R")

_converter = make_converter(forbid_extra_keys=True)
_converter.register_structure_hook(Path, lambda v, _t: Path(v) if isinstance(v, str) else _bad_path(v))
_converter.register_unstructure_hook(Path, str)


def _bad_path(value: Any) -> Path:
    raise TypeError(f"expected a path string, got {type(value).__name__} {value!r}")


# ---------------------------------------------------------------- operations and results


class Operation(Generic[R]):
    """Base of every job operation; ``RESULT`` is the record its ``done`` carries."""

    OP: ClassVar[str]
    RESULT: ClassVar[type[Any]]


@define(frozen=True)
class EnvCreated:
    manifest: Manifest


@define(frozen=True)
class CreateEnv(Operation[EnvCreated]):
    """Build, warm and validate an env at its final ``path``; the manifest is written last."""

    OP: ClassVar[str] = "create"
    RESULT: ClassVar[type[Any]] = EnvCreated
    env_id: str
    path: Path
    config: BackendConfig


@define(frozen=True)
class SpecHash:
    spec_hash: str


@define(frozen=True)
class ComputeSpecHash(Operation[SpecHash]):
    """The hash of everything in ``config`` that decides an env's contents."""

    OP: ClassVar[str] = "spec_hash"
    RESULT: ClassVar[type[Any]] = SpecHash
    config: BackendConfig


@define(frozen=True)
class Validated:
    pass


@define(frozen=True)
class ValidateEnv(Operation[Validated]):
    """Check that the env at ``path`` can still start a kernel."""

    OP: ClassVar[str] = "validate"
    RESULT: ClassVar[type[Any]] = Validated
    path: Path


@define(frozen=True)
class ExtrasInstalled:
    manifest: Manifest


@define(frozen=True)
class InstallExtras(Operation[ExtrasInstalled]):
    """Install ``packages`` (and ``channels``) into the complete env at ``path``, then
    compile, warm up and rewrite its manifest (``key`` names the set in it)."""

    OP: ClassVar[str] = "install_extras"
    RESULT: ClassVar[type[Any]] = ExtrasInstalled
    path: Path
    config: BackendConfig
    key: str
    packages: list[str] = field(factory=list)
    channels: list[str] = field(factory=list)
    options: PackageOptions = field(factory=PackageOptions)
    project: ProjectSpec | None = None  # set for a project's env (its pip list, its lock)


@define(frozen=True)
class ProjectRead:
    spec: ProjectSpec | None = None  # None: not a project of this backend


@define(frozen=True)
class ReadProject(Operation[ProjectRead]):
    """What the project file ``file`` declares (the backend's ``read_project``); a
    malformed file fails the job with its message."""

    OP: ClassVar[str] = "read_project"
    RESULT: ClassVar[type[Any]] = ProjectRead
    file: Path


OPERATIONS: dict[str, type[Operation[Any]]] = {
    c.OP: c for c in (CreateEnv, ComputeSpecHash, ValidateEnv, InstallExtras, ReadProject)
}


# ---------------------------------------------------------------- pipe messages


@define(frozen=True)
class Job:
    """Supervisor -> worker: run operation ``op`` with ``args``; answered by Done or Failed."""

    TYPE: ClassVar[str] = "job"
    id: str
    op: str
    args: dict[str, Any] = field(factory=dict)


@define(frozen=True)
class Ready:
    """Worker -> supervisor, once, after the plugin loaded."""

    TYPE: ClassVar[str] = "ready"
    backend: str
    version: str
    available: bool
    reason: str | None = None
    detail: str | None = None
    project_files: list[str] = field(factory=list)  # the backend's project_files


@define(frozen=True)
class Progress:
    """Worker -> supervisor, during a job: a message, and the build phase it enters (if any)."""

    TYPE: ClassVar[str] = "progress"
    id: str
    message: str
    phase: BuildPhase | None = None


@define(frozen=True)
class Done:
    TYPE: ClassVar[str] = "done"
    id: str
    result: dict[str, Any] = field(factory=dict)


@define(frozen=True)
class Failed:
    TYPE: ClassVar[str] = "failed"
    id: str
    failure: Failure


JOB_TYPES: dict[str, type] = {Job.TYPE: Job}
WORKER_TYPES: dict[str, type] = {c.TYPE: c for c in (Ready, Progress, Done, Failed)}


def job_for(job_id: str, operation: Operation[Any]) -> Job:
    """The wire message for ``operation``."""
    return Job(id=job_id, op=operation.OP, args=_converter.unstructure(operation))


def operation_of(job: Job) -> Operation[Any]:
    """The operation a job asks for; ``ValueError`` names what is wrong with it."""
    cls = OPERATIONS.get(job.op)
    if cls is None:
        raise ValueError(f"unknown job op {job.op!r} (known: {', '.join(sorted(OPERATIONS))})")
    try:
        operation: Operation[Any] = _converter.structure(job.args, cls)
    except Exception as exc:
        raise ValueError(f"bad {job.op!r} job: {describe_error(exc)}") from None
    return operation


def done_for(job_id: str, result: Any) -> Done:
    """The wire message for an operation's result."""
    return Done(id=job_id, result=_converter.unstructure(result))


def result_of(operation: Operation[R], done: Done) -> R:
    """The typed result of ``operation`` from its ``done`` reply."""
    result: R = _converter.structure(done.result, operation.RESULT)
    return result
