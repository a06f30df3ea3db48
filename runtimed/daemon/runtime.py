"""What the supervisor keeps for one backend, and the seam through which it gets a worker.

:class:`BackendRuntime` bundles a backend's config, its pure
:class:`~runtimed.core.pool.Pool`, its worker, the spec hash and the builds in flight.
The worker comes from a :data:`WorkerFactory`: the daemon uses
:func:`process_workers` (a real ``python -m runtimed.workers.child`` per backend, see
``runtimed.workers.handle``); unit tests pass a fake that needs no process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from runtimed.config import BackendConfig, SupervisionConfig
from runtimed.core.failure import Failure
from runtimed.core.gc import DiskEnv
from runtimed.core.phases import BuildTrack
from runtimed.core.pool import Pool
from runtimed.core.records import WorkerState
from runtimed.protocol.jobs import Operation, Progress, Ready
from runtimed.protocol.messages import WorkerStatus
from runtimed.util.paths import Paths
from runtimed.workers.handle import WorkerHandle

__all__ = ["BackendRuntime", "PoolsView", "Worker", "WorkerFactory", "process_workers"]

R = TypeVar("R")

WORKER_THREADS = 32  # jobs a worker may run at once; the pool's concurrency is the real limit


class Worker(Protocol):
    """What the supervisor needs from a backend's worker."""

    ready: Ready | None
    state: WorkerState
    last_exit: str | None
    supervision: SupervisionConfig

    async def run(self) -> None:
        """Keep the worker running (restarting it) until :meth:`stop`; call ``on_ready`` each time it is up."""

    async def stop(self) -> None:
        """Stop for good, abandoning jobs in flight."""

    async def submit(
        self,
        operation: Operation[R],
        *,
        timeout: float | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> R:
        """Run one job; raises ``BackendError`` (``timeout``, ``crashed``, or the backend's own)."""

    def status(self) -> WorkerStatus:
        """Pid, memory, CPU, restarts, for ``status``."""


OnReady = Callable[[Ready], Awaitable[None]]
#: ``factory(backend_name, on_ready, supervision)`` -> a worker, not started yet (``run()`` starts it).
WorkerFactory = Callable[[str, OnReady, SupervisionConfig], Worker]


def process_workers(paths: Paths) -> WorkerFactory:
    """The daemon's factory: one real worker process per backend."""

    def make(name: str, on_ready: OnReady, supervision: SupervisionConfig) -> Worker:
        async def ready(event: Ready) -> None:
            await on_ready(event)

        return WorkerHandle(name, paths.backend_cache(name), WORKER_THREADS, supervision, on_ready=ready)

    return make


class BackendRuntime:
    """Everything the supervisor keeps for one backend."""

    def __init__(self, name: str, config: BackendConfig, worker: Callable[[BackendRuntime], Worker]) -> None:
        self.name = name
        self.config = config
        self.pool = Pool(name=name, target=config.pool_size, concurrency=config.concurrency)
        self.spec_hash: str | None = None
        self.builds: dict[str, asyncio.Task[Any]] = {}
        self.tracks: dict[str, BuildTrack] = {}  # the builds' phases, by env id
        self.changed = asyncio.Condition()
        self.startup_envs: list[DiskEnv] | None = []  # found on disk, adopted once the spec hash is known
        self.wakeup: asyncio.TimerHandle | None = None
        self.setup_error: Failure | None = None  # the worker could not tell its spec hash
        self.worker = worker(self)

    @property
    def ready(self) -> bool:
        return self.spec_hash is not None and self.worker.ready is not None

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class PoolsView(Mapping[str, Pool]):
    """The runtimes' pools by backend name, always current (for housekeeping)."""

    def __init__(self, runtimes: Mapping[str, BackendRuntime]) -> None:
        self._runtimes = runtimes

    def __getitem__(self, name: str) -> Pool:
        return self._runtimes[name].pool

    def __iter__(self) -> Iterator[str]:
        return iter(self._runtimes)

    def __len__(self) -> int:
        return len(self._runtimes)

    def max_age_s(self, name: str) -> float:
        """How old a pooled env of backend ``name`` may get."""
        return self._runtimes[name].config.max_age_s
