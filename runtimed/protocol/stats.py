"""Wire records for usage stats (``stats`` request and reply) and for builds in ``status``.

Kept apart from ``runtimed.protocol.messages`` (which registers them) to keep that module small.
``Stats`` names ``StatsReply`` as its reply, as every request does.
Kinds and phases travel as their string values, like ``PoolError.kind``.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import define, field

from runtimed.protocol.framing import Reply, Request

__all__ = [
    "BackendStats",
    "BuildStats",
    "BuildStatus",
    "Durations",
    "KernelStats",
    "Stats",
    "StatsReply",
    "TakeStats",
]


@define(frozen=True)
class BuildStatus:
    """A build in flight (``status``): its phase, its last progress message, how long it has run."""

    env_id: str
    phase: str | None  # creating | installing | compiling | warming_up; None before the first report
    elapsed_s: float
    phase_elapsed_s: float | None = None
    message: str = ""


@define(frozen=True)
class Durations:
    """Percentiles of durations in seconds (None when ``count`` is 0)."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None


@define(frozen=True)
class TakeStats:
    served: int = 0
    empty: int = 0
    waited: int = 0
    wait_s: Durations = field(factory=Durations)


@define(frozen=True)
class KernelStats:
    handed_out: int = 0
    prestarted: int = 0
    fallback: int = 0
    failed: int = 0
    refused: dict[str, int] = field(factory=dict)  # fallbacks by why (startup_variable:PYTHONPATH, none_ready, ...)


@define(frozen=True)
class BuildStats:
    succeeded: int = 0
    failed: int = 0
    total_s: Durations = field(factory=Durations)
    phases_s: dict[str, Durations] = field(factory=dict)


@define(frozen=True)
class BackendStats:
    takes: TakeStats = field(factory=TakeStats)
    kernels: KernelStats = field(factory=KernelStats)
    builds: BuildStats = field(factory=BuildStats)
    failures: dict[str, int] = field(factory=dict)  # error kind -> failed builds
    disk_bytes: int | None = None  # pooled + handed-out envs now


@define(frozen=True)
class StatsReply(Reply):
    """Usage since ``since``; ``daemon_running`` is False when read from the file by the CLI."""

    TYPE: ClassVar[str] = "stats"
    since: str
    file: str
    backends: dict[str, BackendStats] = field(factory=dict)
    saved_at: str | None = None
    bytecode_store_bytes: int | None = None
    disk_bytes: int | None = None  # the envs of every backend plus the bytecode store
    daemon_running: bool = True


@define(frozen=True)
class Stats(Request[StatsReply]):
    """Ask for the usage stats."""

    TYPE: ClassVar[str] = "stats"
