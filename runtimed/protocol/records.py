"""Wire records carried inside protocol messages: envs, pool and kernel status, GC items.

Plain frozen attrs records with strings for paths (JSON-ready). The messages that
carry them are in :mod:`runtimed.protocol.messages`, which re-exports every name here.
"""

from __future__ import annotations

from typing import Any

from attrs import define, field

from runtimed.core.records import ReadyEnv, manifest_extras
from runtimed.protocol.stats import BuildStatus

__all__ = [
    "DaemonInfo",
    "EnvEntry",
    "GcItem",
    "KernelPoolStatus",
    "LaunchedKernel",
    "PackageOptions",
    "PoolError",
    "PoolStatus",
    "PooledEnv",
    "WarmSetStatus",
    "WorkerStatus",
]


@define(frozen=True)
class PooledEnv:
    """A ready environment, as handed to a client."""

    env_type: str
    venv_path: str  # the prefix, for conda too
    python_path: str
    id: str
    packages: list[str] = field(factory=list)
    created_at: str = ""
    extras: list[str] = field(factory=list)  # the extra requirements it was given (take's ``packages``)

    @classmethod
    def from_ready(cls, env: ReadyEnv) -> PooledEnv:
        """The wire form of a pooled env (paths as strings)."""
        manifest = env.manifest
        return cls(
            env_type=manifest.env_type,
            venv_path=str(env.path),
            python_path=manifest.python_path,
            id=manifest.id,
            packages=list(manifest.packages),
            created_at=manifest.created_at,
            extras=manifest_extras(manifest),
        )


@define(frozen=True)
class DaemonInfo:
    pid: int
    version: str
    protocol_version: int
    started_at: str
    socket: str
    cache_dir: str
    config_file: str = ""
    config_error: str | None = None  # the last edit was rejected; the previous config is in force
    broken_plugins: dict[str, str] = field(factory=dict)  # backend name -> why it is not served


@define(frozen=True)
class PoolError:
    """The last failure of a pool, classified."""

    kind: str  # tool_missing | network | invalid_package | timeout | setup_failed | crashed
    message: str
    package: str | None = None
    failures: int = 1
    retry_in_s: float | None = None


@define(frozen=True)
class WorkerStatus:
    state: str  # starting | running | restarting | failed | stopped
    pid: int | None = None
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    children: int = 0
    restarts: int = 0
    uptime_s: float | None = None
    last_exit: str | None = None


@define(frozen=True)
class KernelPoolStatus:
    """Pre-started kernels of one backend."""

    available: int = 0
    starting: int = 0
    target: int = 0
    handed_out: int = 0
    error: str | None = None
    preimported: int = 0  # pre-imported interpreters ready (restarts, kernels with their own arguments)
    preimported_target: int = 0
    # Requests no pre-started kernel served since the daemon started, by why
    # (``startup_variable:PYTHONPATH``, ``none_ready``, ...), and the latest requests'
    # outcomes in order ("" for one a pre-started kernel served).
    refused: dict[str, int] = field(factory=dict)
    recent: list[str] = field(factory=list)
    package_sets: int = 0  # pre-started kernels ready in envs of recently used package sets


@define(frozen=True)
class PackageOptions:
    """How extra packages are installed, beyond their list (a notebook's PEP 723 block).

    ``requires_python``: the env's python must satisfy it, else the install fails
    with an error naming it. ``exclude_newer``: only versions uploaded before this
    RFC 3339 time (uv's ``--exclude-newer``; ``juv stamp`` writes it).
    """

    requires_python: str | None = None
    exclude_newer: str | None = None


@define(frozen=True)
class LaunchedKernel:
    """A running kernel handed to a client (``kernel`` reply).

    ``connection`` is the kernel's connection info (``key`` as a string: JSON);
    ``prestarted`` says whether it came from the pre-started pool, and ``reason``
    why not when it did not. ``connection`` (the HMAC key) is left out of its repr.
    """

    id: str
    pid: int
    create_time: float
    connection: dict[str, Any] = field(repr=False)
    env: PooledEnv
    prestarted: bool
    log_file: str = ""
    reason: str = ""
    refused: str = ""  # why no pre-started kernel served it, as counted (``startup_variable:PYTHONPATH``)


@define(frozen=True)
class PoolStatus:
    available: int
    warming: int
    target: int
    leased: int = 0
    outdated: int = 0  # built for an older config; served only as a fallback
    disk_bytes: int | None = None  # pooled + leased envs of this backend
    error: PoolError | None = None
    worker: WorkerStatus | None = None
    kernels: KernelPoolStatus | None = None
    builds: list[BuildStatus] = field(factory=list)  # in flight, with their phase
    warm_sets: list[WarmSetStatus] = field(factory=list)  # most recently used first


@define(frozen=True)
class WarmSetStatus:
    """A set of extra packages kept warm (see ``take``'s ``packages``)."""

    key: str
    packages: list[str]
    channels: list[str] = field(factory=list)
    ready: list[str] = field(factory=list)  # paths of envs ready to hand out
    installing: bool = False
    hits: int = 0  # takes served by a ready env of the set
    installs: int = 0  # installs started for the set
    disk_bytes: int = 0
    error: PoolError | None = None
    project: str | None = None  # the project file whose env this set is (runtimed.daemon.projects)


@define(frozen=True)
class EnvEntry:
    """One env on disk, as ``runtimed envs`` shows it."""

    path: str
    backend: str
    id: str
    state: str  # pooled | outdated | warming | leased | kept | orphan | unknown_backend
    size_bytes: int
    age_s: float
    holder_pid: int | None = None


@define(frozen=True)
class GcItem:
    path: str
    backend: str
    reason: str  # expired | partial | untracked | holder_gone
    size_bytes: int
