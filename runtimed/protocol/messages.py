"""The client protocol, sans-IO: its messages, each request naming its replies, and one registry.

Every request is a :class:`~runtimed.protocol.framing.Request` whose type parameter
names the replies that answer it (``Take(Request[EnvReply | Empty])``); any request
may also be answered by :class:`Error`. :data:`REQUESTS` is the one list of
requests: the tag registries :data:`REQUEST_TYPES` and :data:`REPLY_TYPES` derive
from it, and the daemon's dispatch table is tested against it. The NDJSON framing
is in :mod:`runtimed.protocol.framing`, the records carried inside messages in
:mod:`runtimed.protocol.records` and :mod:`runtimed.protocol.stats`; every name is
re-exported here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from attrs import define, field

from runtimed.protocol.framing import (
    MAX_LINE_BYTES,
    LineDecoder,
    ProtocolError,
    Reply,
    Request,
    decode_line,
    encode,
    registry,
    structure,
    unstructure,
)
from runtimed.protocol.records import (
    DaemonInfo,
    EnvEntry,
    GcItem,
    KernelPoolStatus,
    LaunchedKernel,
    PackageOptions,
    PooledEnv,
    PoolError,
    PoolStatus,
    WarmSetStatus,
    WorkerStatus,
)
from runtimed.protocol.stats import Stats, StatsReply

__all__ = [
    "ALWAYS_POSSIBLE",
    "MAX_LINE_BYTES",
    "PROTOCOL_VERSION",
    "REPLY_TYPES",
    "REQUESTS",
    "REQUEST_TYPES",
    "DaemonInfo",
    "Empty",
    "EnvEntry",
    "EnvList",
    "EnvReply",
    "Envs",
    "Error",
    "Flush",
    "Flushed",
    "Gc",
    "GcItem",
    "GcReport",
    "KernelExit",
    "KernelExitReply",
    "KernelPoolStatus",
    "KernelReply",
    "LaunchedKernel",
    "LineDecoder",
    "PackageOptions",
    "Ping",
    "Pong",
    "PoolError",
    "PoolStatus",
    "PooledEnv",
    "ProtocolError",
    "Release",
    "Released",
    "Reply",
    "Request",
    "Shutdown",
    "ShuttingDown",
    "Stats",
    "StatsReply",
    "Status",
    "StatusReply",
    "Take",
    "TakeKernel",
    "WarmSetStatus",
    "WorkerStatus",
    "decode_line",
    "encode",
    "structure",
    "unstructure",
]

PROTOCOL_VERSION = 1


# ---------------------------------------------------------------- replies


@define(frozen=True)
class Pong(Reply):
    TYPE: ClassVar[str] = "pong"
    protocol_version: int
    daemon_version: str


@define(frozen=True)
class EnvReply(Reply):
    TYPE: ClassVar[str] = "env"
    env: PooledEnv


@define(frozen=True)
class Empty(Reply):
    TYPE: ClassVar[str] = "empty"
    retry_in_s: float | None = None


@define(frozen=True)
class Released(Reply):
    TYPE: ClassVar[str] = "released"
    path: str = ""


@define(frozen=True)
class StatusReply(Reply):
    TYPE: ClassVar[str] = "status"
    daemon: DaemonInfo
    pools: dict[str, PoolStatus] = field(factory=dict)


@define(frozen=True)
class Flushed(Reply):
    TYPE: ClassVar[str] = "flushed"
    removed: int


@define(frozen=True)
class ShuttingDown(Reply):
    TYPE: ClassVar[str] = "shutting_down"


@define(frozen=True)
class GcReport(Reply):
    TYPE: ClassVar[str] = "gc_report"
    removed: list[GcItem] = field(factory=list)
    freed_bytes: int = 0
    dry_run: bool = False


@define(frozen=True)
class EnvList(Reply):
    TYPE: ClassVar[str] = "envs"
    envs: list[EnvEntry] = field(factory=list)


@define(frozen=True)
class KernelReply(Reply):
    TYPE: ClassVar[str] = "kernel"
    kernel: LaunchedKernel


@define(frozen=True)
class KernelExitReply(Reply):
    """How a handed-out kernel ended: ``returncode`` as ``Popen`` gives it (-N: signal
    N), None while it runs or when the daemon does not know (not its child, forgotten)."""

    TYPE: ClassVar[str] = "kernel_exit_status"
    returncode: int | None = None


@define(frozen=True)
class Error(Reply):
    """A reply that says the request failed; ``code`` is machine-readable. It may answer any request."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str

    @classmethod
    def about(cls, problem: ProtocolError) -> Error:
        """The reply to a line that could not be decoded."""
        return cls(code=problem.code, message=problem.message)


ALWAYS_POSSIBLE: tuple[type[Reply], ...] = (Error,)


# ---------------------------------------------------------------- requests


@define(frozen=True)
class Ping(Request[Pong]):
    TYPE: ClassVar[str] = "ping"


@define(frozen=True)
class Take(Request[EnvReply | Empty]):
    """An env of ``env_type``; with ``packages`` (PEP 508 requirements; ``channels``
    for conda) one that also has them installed, from a warm set or installed now."""

    TYPE: ClassVar[str] = "take"
    env_type: str
    wait_s: float | None = None
    lease_pid: int | None = None
    keep: bool = False
    packages: list[str] = field(factory=list)
    channels: list[str] = field(factory=list)
    options: PackageOptions = field(factory=PackageOptions)


@define(frozen=True)
class Release(Request[Released]):
    TYPE: ClassVar[str] = "release"
    path: str


@define(frozen=True)
class Status(Request[StatusReply]):
    TYPE: ClassVar[str] = "status"


@define(frozen=True)
class Flush(Request[Flushed]):
    TYPE: ClassVar[str] = "flush"
    env_type: str | None = None


@define(frozen=True)
class Shutdown(Request[ShuttingDown]):
    TYPE: ClassVar[str] = "shutdown"


@define(frozen=True)
class Gc(Request[GcReport]):
    """Run a garbage-collection sweep now (``dry_run``: only report)."""

    TYPE: ClassVar[str] = "gc"
    dry_run: bool = False


@define(frozen=True)
class Envs(Request[EnvList]):
    """List every env on disk with its state."""

    TYPE: ClassVar[str] = "envs"


@define(frozen=True)
class TakeKernel(Request[KernelReply | Empty]):
    """A running kernel in an env of ``env_type``, set up as the front end asked.

    ``env`` replaces the kernel's environment (the env's activation is applied on
    top), ``argv`` are extra kernel arguments, ``owner_pid`` the process whose death
    ends the kernel (after a grace). ``connection`` pins the ports and key (a
    restart); then no pre-started kernel can serve and one is launched on them.
    ``env`` and ``connection`` (the key) are left out of its repr: never logged.
    ``connection_file`` is the front end's (the kernel's ``%connect_info``);
    ``owner_grace_s`` overrides the daemon's ``kernel_owner_grace_s`` for this kernel
    (the argv launcher passes 0: its death ends the kernel at once).
    """

    TYPE: ClassVar[str] = "take_kernel"
    env_type: str
    cwd: str | None = None
    env: dict[str, str] = field(factory=dict, repr=False)
    argv: list[str] = field(factory=list)
    owner_pid: int | None = None
    connection: dict[str, Any] | None = field(default=None, repr=False)
    wait_s: float | None = None
    prestarted: bool = True  # False: never use a pre-started kernel
    connection_file: str | None = None  # the front end's connection file (the kernel's %connect_info)
    # A notebook's own dependencies (installed into the kernel's env: see runtimed.deps),
    # and what the kernel tells the user on the first failing import when they were not.
    packages: list[str] = field(factory=list)
    channels: list[str] = field(factory=list)
    options: PackageOptions = field(factory=PackageOptions)
    notice: str = ""
    owner_grace_s: float | None = None  # None: the daemon's kernel_owner_grace_s
    # Where to look for the notebook's project (its directory; the argv launcher's cwd):
    # the daemon walks up from it to the closest project file (runtimed.daemon.projects).
    project_dir: str | None = None


@define(frozen=True)
class KernelExit(Request[KernelExitReply]):
    """The exit status of kernel ``kernel_id``, waiting up to ``wait_s`` for it to end
    (the argv launcher exits with it: the kernel is the daemon's child, not its own)."""

    TYPE: ClassVar[str] = "kernel_exit"
    kernel_id: str
    wait_s: float = 0.0


# ---------------------------------------------------------------- the registry

# The one list of client requests; everything else derives from it.
REQUESTS: tuple[type[Request[Any]], ...] = (
    Ping,
    Take,
    Release,
    Status,
    Flush,
    Shutdown,
    Gc,
    Envs,
    TakeKernel,
    Stats,
    KernelExit,
)

REQUEST_TYPES: dict[str, type] = registry(REQUESTS)
# "status" and "stats" name both a request and its reply; the direction decides which.
REPLY_TYPES: dict[str, type] = registry(
    dict.fromkeys(reply for cls in REQUESTS for reply in (*cls.REPLIES, *ALWAYS_POSSIBLE))
)
