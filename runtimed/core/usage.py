"""Usage metrics, pure: what happened per backend, and the percentiles of how long it took.

:class:`Usage` is a plain attrs record (it is also what ``stats.json`` holds);
the ``record_*`` functions add one event to it and :func:`percentile` reads a
:class:`Histogram`. Durations go into fixed, log-spaced buckets (4 per doubling,
1 ms to ~4 h), so a histogram stays under a hundred integers however many events
it has seen, and a percentile is within about 10 % of the exact one (clamped to
the smallest and largest values seen, so one-value histograms are exact).

:class:`UsageLog` is the narrow interface the supervisor records through
(:class:`UsageRecorder`); persisting it is ``runtimed.daemon.usagefile``'s job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

from attrs import define, field

from runtimed.core.failure import ErrorKind
from runtimed.core.phases import BuildPhase

__all__ = [
    "BUCKETS",
    "BackendUsage",
    "BuildUsage",
    "Histogram",
    "KernelUsage",
    "TakeUsage",
    "Usage",
    "UsageLog",
    "UsageRecorder",
    "bucket_of",
    "percentile",
    "record_build",
    "record_build_failure",
    "record_kernel",
    "record_take",
]

SMALLEST_S = 0.001  # bucket 0 holds everything up to 1 ms
PER_DOUBLING = 4
BUCKETS = 96  # the last bucket (from ~3.3 h) also holds anything longer


def bucket_of(seconds: float) -> int:
    """The bucket index of a duration: bucket ``i`` holds (upper(i-1), upper(i)]."""
    if not seconds > SMALLEST_S:  # also NaN and negatives
        return 0
    return min(BUCKETS - 1, math.ceil(math.log2(seconds / SMALLEST_S) * PER_DOUBLING - 1e-9))


def _upper(index: int) -> float:
    return SMALLEST_S * 2 ** (index / PER_DOUBLING)


@define
class Histogram:
    """Durations in seconds, bucketed: ``buckets[i]`` counts the values in bucket ``i``
    (the list ends at the last non-empty bucket)."""

    buckets: list[int] = field(factory=list)
    count: int = 0
    sum_s: float = 0.0
    min_s: float | None = None
    max_s: float | None = None

    def add(self, seconds: float) -> None:
        seconds = max(0.0, seconds) if math.isfinite(seconds) else 0.0
        index = bucket_of(seconds)
        if len(self.buckets) <= index:
            self.buckets.extend([0] * (index + 1 - len(self.buckets)))
        self.buckets[index] += 1
        self.count += 1
        self.sum_s += seconds
        self.min_s = seconds if self.min_s is None else min(self.min_s, seconds)
        self.max_s = seconds if self.max_s is None else max(self.max_s, seconds)

    @property
    def mean_s(self) -> float | None:
        return self.sum_s / self.count if self.count else None


def percentile(histogram: Histogram, q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of the durations, None if there are none.

    Nearest rank: the bucket holding the ``ceil(q * count)``-th smallest value,
    estimated at its geometric middle, clamped to the smallest and largest values seen
    (the largest value itself for the last rank).
    """
    if histogram.count == 0 or histogram.min_s is None or histogram.max_s is None:
        return None
    rank = max(1, math.ceil(q * histogram.count - 1e-9))
    if rank >= histogram.count:
        return histogram.max_s  # known exactly
    seen = 0
    estimate = histogram.max_s
    for index, n in enumerate(histogram.buckets):
        seen += n
        if seen >= rank:
            estimate = SMALLEST_S / 2 if index == 0 else math.sqrt(_upper(index - 1) * _upper(index))
            break
    return min(histogram.max_s, max(histogram.min_s, estimate))


@define
class TakeUsage:
    served: int = 0
    empty: int = 0  # "pool empty" replies
    waited: int = 0  # takes that found no env at once and waited (served or not)
    wait_s: Histogram = field(factory=Histogram)  # how long those waited


@define
class KernelUsage:
    prestarted: int = 0  # handed out from the pre-started pool
    fallback: int = 0  # started on demand
    failed: int = 0  # could not be started
    refused: dict[str, int] = field(factory=dict)  # fallbacks by why (Refusal.label)


@define
class BuildUsage:
    succeeded: int = 0
    failed: int = 0
    total_s: Histogram = field(factory=Histogram)  # successful builds, end to end
    phase_s: dict[str, Histogram] = field(factory=dict)  # BuildPhase value -> time in it


@define
class BackendUsage:
    takes: TakeUsage = field(factory=TakeUsage)
    kernels: KernelUsage = field(factory=KernelUsage)
    builds: BuildUsage = field(factory=BuildUsage)
    failures: dict[str, int] = field(factory=dict)  # ErrorKind value -> count (failed builds)


@define
class Usage:
    """Everything counted since ``since`` (an ISO time), per backend."""

    since: str
    backends: dict[str, BackendUsage] = field(factory=dict)

    def backend(self, name: str) -> BackendUsage:
        return self.backends.setdefault(name, BackendUsage())


def record_take(usage: Usage, backend: str, *, served: bool, wait_s: float | None) -> None:
    """A take answered: ``served`` an env or "empty"; ``wait_s`` if it had to wait."""
    takes = usage.backend(backend).takes
    if served:
        takes.served += 1
    else:
        takes.empty += 1
    if wait_s is not None:
        takes.waited += 1
        takes.wait_s.add(wait_s)


def record_kernel(usage: Usage, backend: str, *, prestarted: bool | None, refused: str = "") -> None:
    """A kernel handed out (``prestarted`` or a fallback, ``refused`` saying why), or
    None: it failed to start."""
    kernels = usage.backend(backend).kernels
    if prestarted is None:
        kernels.failed += 1
    elif prestarted:
        kernels.prestarted += 1
    else:
        kernels.fallback += 1
    if refused:
        kernels.refused[refused] = kernels.refused.get(refused, 0) + 1


def record_build(usage: Usage, backend: str, phases: Mapping[BuildPhase, float], total_s: float) -> None:
    """A successful build: its total time and the time spent in each phase."""
    builds = usage.backend(backend).builds
    builds.succeeded += 1
    builds.total_s.add(total_s)
    for phase, seconds in phases.items():
        builds.phase_s.setdefault(phase.value, Histogram()).add(seconds)


def record_build_failure(usage: Usage, backend: str, kind: ErrorKind) -> None:
    """A failed build, by the kind of its failure."""
    entry = usage.backend(backend)
    entry.builds.failed += 1
    entry.failures[kind.value] = entry.failures.get(kind.value, 0) + 1


class UsageRecorder(Protocol):
    """What the supervisor records usage through (and all it can do with it)."""

    def take(self, backend: str, *, served: bool, wait_s: float | None) -> None: ...

    def kernel(self, backend: str, *, prestarted: bool | None, refused: str = "") -> None: ...

    def build(self, backend: str, phases: Mapping[BuildPhase, float], total_s: float) -> None: ...

    def build_failed(self, backend: str, kind: ErrorKind) -> None: ...


class UsageLog:
    """The in-memory :class:`Usage` of a daemon; ``changes`` counts the events recorded."""

    def __init__(self, usage: Usage) -> None:
        self.usage = usage
        self.changes = 0

    def take(self, backend: str, *, served: bool, wait_s: float | None) -> None:
        record_take(self.usage, backend, served=served, wait_s=wait_s)
        self.changes += 1

    def kernel(self, backend: str, *, prestarted: bool | None, refused: str = "") -> None:
        record_kernel(self.usage, backend, prestarted=prestarted, refused=refused)
        self.changes += 1

    def build(self, backend: str, phases: Mapping[BuildPhase, float], total_s: float) -> None:
        record_build(self.usage, backend, phases, total_s)
        self.changes += 1

    def build_failed(self, backend: str, kind: ErrorKind) -> None:
        record_build_failure(self.usage, backend, kind)
        self.changes += 1
