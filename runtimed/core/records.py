"""Core records of an env on disk, with ``Path``s: what the pool and ``envdir`` deal in.

The wire records (``runtimed.protocol.messages``) are converted from these at the edge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attrs import define, field

from runtimed.core.convert import StrEnum

__all__ = ["EXTRAS_DETAIL", "MANIFEST_FORMAT", "Lease", "Manifest", "ReadyEnv", "WorkerState", "manifest_extras"]

MANIFEST_FORMAT = 1
#: The manifest detail that lists an env's extra packages: ``{"key", "packages", "channels"}``.
EXTRAS_DETAIL = "extras"


@define(frozen=True)
class Manifest:
    """What a complete env contains; written last by the build (its on-disk format)."""

    env_type: str
    id: str
    spec_hash: str
    python_path: str
    packages: list[str] = field(factory=list)
    created_at: str = ""
    backend_version: str = ""
    details: dict[str, Any] = field(factory=dict)  # backend-specific, e.g. conda records
    # Variables that activate the env (Backend.activation): PATH is prepended, the rest set.
    activation: dict[str, str] = field(factory=dict)
    # What makes the env whole (Backend.whole_paths): paths relative to the env (an
    # absolute one is checked as is) that must exist when it is handed out. Empty in
    # manifests written before runtimed recorded it: the python alone is checked then.
    whole: list[str] = field(factory=list)
    format: int = MANIFEST_FORMAT


@define(frozen=True)
class Lease:
    """Who holds a handed-out env. ``create_time`` tells a reused pid from the holder."""

    pid: int | None
    create_time: float | None
    taken_at: str
    keep: bool = False


@define(frozen=True)
class ReadyEnv:
    """A complete env the pool may hand out: where it is and its manifest."""

    path: Path
    manifest: Manifest

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def python_path(self) -> Path:
        return Path(self.manifest.python_path)


class WorkerState(StrEnum):
    """Where a backend's worker process is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


def manifest_extras(manifest: Manifest) -> list[str]:
    """The extra requirements an env was given on top of its pool's (empty for a base env)."""
    extras = manifest.details.get(EXTRAS_DETAIL)
    if not isinstance(extras, dict):
        return []
    return [str(p) for p in (*extras.get("packages", []), *extras.get("pypi_packages", []))]
