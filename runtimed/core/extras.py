"""Sets of extra packages (``take``'s ``packages``), pure: their key, their warm-set state, eviction.

A set is named by :func:`extras_key`, a hash of the backend, the sorted normalised
requirements and the channels: the same packages spelt differently share one set.
:class:`WarmSet` is what the daemon keeps for one set (its ready envs, its last
failure and backoff, its counters); :func:`choose_evictions` picks the least recently
used sets that break the count or disk bound.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from attrs import define, field
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from runtimed.core.backoff import Backoff
from runtimed.core.failure import Failure
from runtimed.core.project import ProjectSpec
from runtimed.core.records import ReadyEnv

__all__ = [
    "EXTRAS_BACKOFF",
    "WarmSet",
    "choose_evictions",
    "extras_key",
    "normalise_requirement",
    "normalise_requirements",
    "superseded",
]

#: How long a set whose install failed is refused before it is tried again.
EXTRAS_BACKOFF = Backoff(base=10.0, factor=2.0, cap=600.0)


def normalise_requirements(packages: Sequence[str]) -> list[str]:
    """The requirements with canonical names (PEP 508), deduplicated and sorted.

    A spec that is not PEP 508 (a conda match spec such as ``numpy=1.26``) is kept as
    written, whitespace collapsed: its backend judges it. Raises ``ValueError`` for an
    empty one.
    """
    found: set[str] = set()
    for text in packages:
        if not text.strip():
            raise ValueError(f"empty requirement {text!r}")
        try:
            found.add(normalise_requirement(text))
        except ValueError:
            found.add(" ".join(text.split()))
    return sorted(found)


def normalise_requirement(text: str) -> str:
    """One PEP 508 requirement with its name and extras canonical (PEP 503), in
    packaging's spelling; ``ValueError`` if it is not one. The one normaliser of
    requirements: the warm-set key and a notebook's dependencies both use it."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"not a requirement: {text!r} ({exc})") from None
    requirement.name = canonicalize_name(requirement.name)
    requirement.extras = {canonicalize_name(extra) for extra in requirement.extras}
    return str(requirement)


def extras_key(
    backend: str, packages: Sequence[str], channels: Sequence[str], options: Mapping[str, str | None] | None = None
) -> str:
    """The name of a set: a hash of the backend, its normalised requirements, its
    channels (in order: it is their priority) and the options set (how it is
    installed: ``requires_python``, ``exclude_newer``). The one place that decides
    when two takes ask for the same set."""
    data: dict[str, object] = {
        "backend": backend,
        "packages": normalise_requirements(packages),
        "channels": list(channels),
    }
    chosen = {name: value for name, value in (options or {}).items() if value is not None}
    if chosen:  # no options: the key of earlier versions
        data["options"] = chosen
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@define
class WarmSet:
    """One set of extras of one backend, as the daemon keeps it."""

    key: str
    packages: tuple[str, ...]
    channels: tuple[str, ...] = ()
    options: dict[str, str | None] = field(factory=dict)  # how it is installed (PackageOptions)
    project: ProjectSpec | None = None  # a project's set (keyed by its project_key), else None
    ready: list[ReadyEnv] = field(factory=list)
    sizes: dict[Path, int] = field(factory=dict)  # bytes of each ready env
    installing: bool = False
    waiting: int = 0  # takes waiting for its install
    hits: int = 0  # takes served by an env that was ready when they came
    installs: int = 0
    failure: Failure | None = None
    failures: int = 0  # in a row
    retry_at: float = 0.0

    def failed(self, failure: Failure, now: float) -> None:
        self.failure = failure
        self.failures += 1
        self.retry_at = now + EXTRAS_BACKOFF.delay(self.failures)

    def succeeded(self) -> None:
        self.failure, self.failures, self.retry_at = None, 0, 0.0

    def backing_off(self, now: float) -> bool:
        return self.failure is not None and now < self.retry_at

    @property
    def disk_bytes(self) -> int:
        return sum(self.sizes.get(env.path, 0) for env in self.ready)

    @property
    def busy(self) -> bool:
        return self.installing or self.waiting > 0


def choose_evictions(lru: Sequence[WarmSet], max_sets: int, max_bytes: int, keep: str | None = None) -> list[WarmSet]:
    """The sets to drop, least recently used first (``lru`` is oldest first), until at most
    ``max_sets`` sets hold at most ``max_bytes``. A set installing, and ``keep``, stay."""
    count = len(lru)
    size = sum(s.disk_bytes for s in lru)
    evicted = []
    for candidate in lru:
        if count <= max_sets and size <= max_bytes:
            break
        if candidate.busy or candidate.key == keep:
            continue
        evicted.append(candidate)
        count -= 1
        size -= candidate.disk_bytes
    return evicted


def superseded(sets: Sequence[WarmSet], fresh: WarmSet | None) -> list[WarmSet]:
    """The older sets of ``fresh``'s project file (it was edited since): once ``fresh``
    has a ready env they are dropped, unless installing or awaited."""
    if fresh is None or fresh.project is None:
        return []
    origin = fresh.project.file
    return [s for s in sets if s is not fresh and s.project is not None and s.project.file == origin and not s.busy]
