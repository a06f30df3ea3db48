"""What ``status`` shows for each pool: counts, disk use, the last failure, the worker,
and each build in flight with its phase.

Core failure records become wire ``PoolError`` records here, at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from runtimed.core.failure import ErrorKind, Failure
from runtimed.core.phases import BuildTrack
from runtimed.core.pool import PoolFailure
from runtimed.core.records import WorkerState
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.runtime import BackendRuntime
from runtimed.protocol.messages import KernelPoolStatus, PoolError, PoolStatus, WarmSetStatus
from runtimed.protocol.stats import BuildStatus

__all__ = ["build_status", "pool_statuses"]


def pool_statuses(
    runtimes: Mapping[str, BackendRuntime],
    leases: LeaseTable,
    now: float,
    kernels: Callable[[str], KernelPoolStatus | None] = lambda _name: None,
    warm_sets: Callable[[str], list[WarmSetStatus]] = lambda _name: [],
) -> dict[str, PoolStatus]:
    pools = {}
    for name, runtime in runtimes.items():
        pool = runtime.pool
        leased = leases.of_backend(name)
        paths = [e.path for e in pool.pooled] + leased
        pool_error = pool.error_status(now)
        other = runtime.setup_error or _worker_failure(runtime)
        pools[name] = PoolStatus(
            available=len(pool.available),
            warming=len(pool.warming),
            target=pool.target,
            leased=len(leased),
            outdated=len(pool.outdated),
            disk_bytes=leases.disk_bytes(paths),
            error=_from_pool(pool_error) if pool_error else _pool_error(other),
            worker=runtime.worker.status(),
            kernels=kernels(name),
            builds=[build_status(env_id, track, now) for env_id, track in sorted(runtime.tracks.items())],
            warm_sets=warm_sets(name),
        )
    return pools


def build_status(env_id: str, track: BuildTrack, now: float) -> BuildStatus:
    """A build in flight as ``status`` shows it (elapsed times at ``now``, to 0.1 s)."""
    in_phase = None if track.phase_started is None else round(max(0.0, now - track.phase_started), 1)
    return BuildStatus(
        env_id=env_id,
        phase=None if track.phase is None else track.phase.value,
        elapsed_s=round(max(0.0, now - track.started), 1),
        phase_elapsed_s=in_phase,
        message=track.message,
    )


def _from_pool(state: PoolFailure) -> PoolError:
    failure = state.failure
    return PoolError(
        kind=failure.kind.value,
        message=failure.message,
        package=failure.package,
        failures=state.failures,
        retry_in_s=state.retry_in_s,
    )


def _pool_error(failure: Failure | None) -> PoolError | None:
    if failure is None:
        return None
    return PoolError(kind=failure.kind.value, message=failure.message, package=failure.package)


def _worker_failure(runtime: BackendRuntime) -> Failure | None:
    worker = runtime.worker
    if worker.state in (WorkerState.FAILED, WorkerState.RESTARTING) and worker.last_exit:
        return Failure(ErrorKind.CRASHED, f"worker {worker.state}: {worker.last_exit}")
    if worker.ready is not None and not worker.ready.available:
        return Failure(ErrorKind.TOOL_MISSING, worker.ready.reason or "backend unavailable")
    return None
