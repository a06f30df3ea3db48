"""What ``stats`` shows: the usage counts with their percentiles, and the disk in use now."""

from __future__ import annotations

from collections.abc import Mapping

from runtimed.core.usage import BackendUsage, Histogram, Usage, percentile
from runtimed.protocol.stats import BackendStats, BuildStats, Durations, KernelStats, StatsReply, TakeStats

__all__ = ["durations", "stats_reply"]


def durations(histogram: Histogram) -> Durations:
    """p50/p90/p99, max and mean of a histogram, rounded to the millisecond."""

    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return Durations(
        count=histogram.count,
        p50=r(percentile(histogram, 0.5)),
        p90=r(percentile(histogram, 0.9)),
        p99=r(percentile(histogram, 0.99)),
        max=r(histogram.max_s),
        mean=r(histogram.mean_s),
    )


def backend_stats(entry: BackendUsage, disk_bytes: int | None) -> BackendStats:
    takes, kernels, builds = entry.takes, entry.kernels, entry.builds
    return BackendStats(
        takes=TakeStats(served=takes.served, empty=takes.empty, waited=takes.waited, wait_s=durations(takes.wait_s)),
        kernels=KernelStats(
            handed_out=kernels.prestarted + kernels.fallback,
            prestarted=kernels.prestarted,
            fallback=kernels.fallback,
            failed=kernels.failed,
            refused=dict(kernels.refused),
        ),
        builds=BuildStats(
            succeeded=builds.succeeded,
            failed=builds.failed,
            total_s=durations(builds.total_s),
            phases_s={phase: durations(h) for phase, h in sorted(builds.phase_s.items())},
        ),
        failures=dict(sorted(entry.failures.items())),
        disk_bytes=disk_bytes,
    )


def stats_reply(
    usage: Usage,
    *,
    file: str,
    saved_at: str | None = None,
    disk: Mapping[str, int | None] | None = None,
    store_bytes: int | None = None,
    running: bool = True,
) -> StatsReply:
    """The ``stats`` reply for ``usage``; ``disk`` is each served backend's disk use now
    (a served backend with no usage yet is listed with zero counts)."""
    disk = disk or {}
    names = sorted(set(usage.backends) | set(disk))
    backends = {name: backend_stats(usage.backends.get(name, BackendUsage()), disk.get(name)) for name in names}
    known = [n for n in disk.values() if n is not None]
    total = sum(known) + (store_bytes or 0) if known or store_bytes is not None else None
    return StatsReply(
        since=usage.since,
        file=file,
        backends=backends,
        saved_at=saved_at,
        bytecode_store_bytes=store_bytes,
        disk_bytes=total,
        daemon_running=running,
    )
