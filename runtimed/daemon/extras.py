"""Takes with extra packages: served from a warm set, or a base env with the extras installed now.

A take with ``packages`` names a set (:func:`~runtimed.core.extras.extras_key`). A ready
env of the set is handed out at once (a hit); else one install runs for the set (a base
env taken from the pool, leased to the daemon, then the backend's ``install_extras``
job: install, compile, warm up) and every take of the set waits for it. After a hand-out
one more env of the set is installed, so the next take is a hit. Sets are kept in
least-recently-used order, bounded by ``warm_sets`` and ``warm_sets_mb``; an evicted
set's envs are deleted. A failed install is answered with a classified error, its base
env deleted (it may be half changed), and the set refused for a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from runtimed.core.extras import WarmSet, choose_evictions, extras_key, normalise_requirements, superseded
from runtimed.core.failure import BackendError, ErrorKind, Failure
from runtimed.core.project import ProjectSpec
from runtimed.core.records import Lease, ReadyEnv
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.runtime import BackendRuntime
from runtimed.envs.envdir import dir_size
from runtimed.envs.leases import make_lease
from runtimed.protocol.jobs import InstallExtras
from runtimed.protocol.messages import (
    Empty,
    EnvReply,
    Error,
    PackageOptions,
    PooledEnv,
    PoolError,
    Take,
    WarmSetStatus,
)

__all__ = ["ExtrasTaker"]

log = logging.getLogger("runtimed.daemon.supervisor")

TakeBase = Callable[[Take, "int | None"], Awaitable[EnvReply | Empty | Error]]


class ExtrasTaker:
    """Answers takes with extra packages for every backend, and keeps their warm sets."""

    def __init__(
        self,
        *,
        runtimes: Mapping[str, BackendRuntime],
        take_base: TakeBase,
        leases: LeaseTable,
        discard: Callable[[Path], None],
        write_lease: Callable[[Path, Lease], None],
        spawn: Callable[..., asyncio.Task[Any]],
        stopping: Callable[[], bool],
    ) -> None:
        self.runtimes = runtimes
        self.take_base = take_base  # uncounted, leased to the daemon
        self.leases = leases
        self.discard = discard
        self.write_lease = write_lease
        self.spawn = spawn
        self.stopping = stopping
        self.sets: dict[str, OrderedDict[str, WarmSet]] = {}  # backend -> key -> set, oldest first
        self._installs: dict[tuple[str, str], asyncio.Task[Error | None]] = {}

    async def take(
        self, runtime: BackendRuntime, request: Take, holder: int | None, project: tuple[str, ProjectSpec] | None = None
    ) -> EnvReply | Error:
        """An env of ``runtime`` with ``request.packages`` installed, leased to ``holder``;
        ``project``: (its key, its spec) when they are a project's (runtimed.daemon.projects)."""
        try:
            packages = normalise_requirements(request.packages)
        except ValueError as exc:
            return Error(code=ErrorKind.INVALID_PACKAGE.value, message=str(exc))
        options = attrs.asdict(request.options)
        key = project[0] if project else extras_key(runtime.name, packages, request.channels, options)
        warm = self._touch(runtime.name, key, packages, request.channels, options, project[1] if project else None)
        first = True
        while True:
            if warm.ready:
                env = warm.ready.pop(0)
                warm.hits += first
                return self._hand_out(runtime, warm, env, holder, request.keep)
            first = False
            now = time.monotonic()
            if warm.backing_off(now) and warm.failure is not None:
                return _refused(runtime.name, warm, now)
            if self.stopping():
                return Error(code="shutting_down", message="the daemon is shutting down")
            warm.waiting += 1
            try:
                outcome = await asyncio.shield(self._install(runtime, warm))
            finally:
                warm.waiting -= 1
            if outcome is not None:
                return outcome

    def statuses(self, backend: str, now: float) -> list[WarmSetStatus]:
        """The backend's warm sets for ``status``, most recently used first."""
        return [_status(warm, now) for warm in reversed(self.sets.get(backend, {}).values())]

    # ------------------------------------------------------------ sets

    def _touch(
        self,
        backend: str,
        key: str,
        packages: list[str],
        channels: list[str],
        options: dict[str, str | None],
        project: ProjectSpec | None,
    ) -> WarmSet:
        sets = self.sets.setdefault(backend, OrderedDict())
        warm = sets.get(key)
        if warm is None:
            warm = sets[key] = WarmSet(
                key=key, packages=tuple(packages), channels=tuple(channels), options=options, project=project
            )
        sets.move_to_end(key)
        return warm

    def _evict(self, runtime: BackendRuntime, keep: str | None) -> None:
        """Drop the least recently used sets beyond the backend's bounds, deleting their envs."""
        sets = self.sets.get(runtime.name, OrderedDict())
        config = runtime.config
        old = superseded(list(sets.values()), sets.get(keep or ""))  # the project was edited since
        old += choose_evictions(list(sets.values()), config.warm_sets, config.warm_sets_mb * 1024 * 1024, keep)
        for warm in {w.key: w for w in old}.values():
            log.info("evicting the warm set %s (%s)", warm.key, " ".join(warm.packages))
            del sets[warm.key]
            for env in warm.ready:
                self._drop(env.path)
            warm.ready.clear()

    def flush(self, backend: str) -> int:
        """Forget every warm set of ``backend`` (``flush``, or its config changed): their
        ready envs are deleted, an install in flight serves only the takes waiting for it."""
        sets = self.sets.pop(backend, OrderedDict())
        removed = 0
        for warm in sets.values():
            removed += len(warm.ready)
            for env in warm.ready:
                self._drop(env.path)
            warm.ready.clear()
        return removed

    def reconfigured(self, runtime: BackendRuntime) -> None:
        """Apply the backend's (new) bounds now."""
        self._evict(runtime, keep=None)

    def _kept(self, backend: str, warm: WarmSet) -> bool:
        sets = self.sets.get(backend)
        return sets is not None and sets.get(warm.key) is warm

    def _drop(self, path: Path) -> None:
        if self.leases.release(path) is not None:
            self.discard(path)

    # ------------------------------------------------------------ hand-out

    def _hand_out(
        self, runtime: BackendRuntime, warm: WarmSet, env: ReadyEnv, holder: int | None, keep: bool
    ) -> EnvReply | Error:
        try:
            lease = make_lease(holder, keep=keep)
            self.write_lease(env.path, lease)
        except (OSError, ValueError) as exc:
            warm.ready.insert(0, env)
            return Error(code="lease_failed", message=f"cannot write the lease of {env.path.name}: {exc}")
        warm.sizes.pop(env.path, None)
        self.leases.add(env.path, runtime.name, lease)
        log.info("handed out %s with %s to pid %s", env.path.name, " ".join(warm.packages), lease.pid)
        if runtime.config.warm_sets > 0:
            asyncio.get_running_loop().call_soon(self._refill, runtime, warm)
        return EnvReply(env=PooledEnv.from_ready(env))

    def _refill(self, runtime: BackendRuntime, warm: WarmSet) -> None:
        """Keep one env of the set ready for the next take (in the background)."""
        if (
            self._kept(runtime.name, warm)
            and not warm.ready
            and not self.stopping()
            and not warm.backing_off(time.monotonic())
        ):
            self._install(runtime, warm)

    # ------------------------------------------------------------ installing

    def _install(self, runtime: BackendRuntime, warm: WarmSet) -> asyncio.Task[Error | None]:
        """The set's install in flight, started if there is none: every take of the set
        waits for the same one. Its result: None once an env is ready, else the error."""
        slot = (runtime.name, warm.key)
        task = self._installs.get(slot)
        if task is None:
            task = self.spawn(self._run_install(runtime, warm), name=f"extras:{runtime.name}-{warm.key}")
            self._installs[slot] = task
            task.add_done_callback(lambda _t: self._installs.pop(slot, None))
        return task

    async def _run_install(self, runtime: BackendRuntime, warm: WarmSet) -> Error | None:
        warm.installing = True
        warm.installs += 1
        try:
            return await self._install_once(runtime, warm)
        finally:
            warm.installing = False

    async def _install_once(self, runtime: BackendRuntime, warm: WarmSet) -> Error | None:
        wait_s = runtime.config.build_timeout
        base = await self.take_base(Take(env_type=runtime.name, wait_s=wait_s, lease_pid=os.getpid()), None)
        if isinstance(base, Error):
            return base
        if isinstance(base, Empty):
            return Error(code="pool_empty", message=f"no {runtime.name} env became ready to install into")
        path = Path(base.env.venv_path)
        started = time.monotonic()
        log.info("installing %s into %s", " ".join(warm.packages), path.name)
        operation = InstallExtras(
            path=path,
            config=runtime.config,
            key=warm.key,
            packages=list(warm.packages),
            channels=list(warm.channels),
            options=PackageOptions(**warm.options),
            project=warm.project,
        )
        try:
            result = await runtime.worker.submit(operation, timeout=runtime.config.build_timeout)
        except BackendError as exc:
            return self._failed(runtime, warm, path, exc.failure)
        except Exception as exc:
            log.exception("install into %s failed unexpectedly", path.name)
            return self._failed(runtime, warm, path, Failure(ErrorKind.SETUP_FAILED, f"{type(exc).__name__}: {exc}"))
        warm.succeeded()
        log.info("installed %s into %s in %.2fs", " ".join(warm.packages), path.name, time.monotonic() - started)
        if self.stopping():
            self._drop(path)
            return Error(code="shutting_down", message="the daemon is shutting down")
        if not self._kept(runtime.name, warm) and not warm.waiting:
            self._drop(path)  # flushed or evicted meanwhile, and nobody waits for it
            return None
        warm.sizes[path] = await asyncio.to_thread(dir_size, path)
        warm.ready.append(ReadyEnv(path=path, manifest=result.manifest))
        self._evict(runtime, keep=warm.key)
        return None

    def _failed(self, runtime: BackendRuntime, warm: WarmSet, path: Path, failure: Failure) -> Error:
        """The base env may be half changed: it is deleted (the pool builds another)."""
        self._drop(path)
        warm.failed(failure, time.monotonic())
        culprit = f" (package {failure.package})" if failure.package else ""
        log.error("installing %s failed [%s]%s: %s", " ".join(warm.packages), failure.kind, culprit, failure.message)
        return _error(runtime.name, warm, failure)


def _error(backend: str, warm: WarmSet, failure: Failure, note: str = "") -> Error:
    culprit = f" (package {failure.package})" if failure.package else ""
    message = f"cannot install {' '.join(warm.packages)} into a {backend} env [{failure.kind}]{culprit}{note}: "
    return Error(code=failure.kind.value, message=message + failure.message)


def _refused(backend: str, warm: WarmSet, now: float) -> Error:
    assert warm.failure is not None
    note = f"; failed {warm.failures}x, retried in {warm.retry_at - now:.0f}s"
    return _error(backend, warm, warm.failure, note)


def _status(warm: WarmSet, now: float) -> WarmSetStatus:
    failure = warm.failure
    error = None
    if failure is not None:
        retry = round(max(0.0, warm.retry_at - now), 1)
        error = PoolError(failure.kind.value, failure.message, failure.package, warm.failures, retry)
    return WarmSetStatus(
        key=warm.key,
        packages=list(warm.packages),
        channels=list(warm.channels),
        ready=[str(env.path) for env in warm.ready],
        installing=warm.installing,
        hits=warm.hits,
        installs=warm.installs,
        disk_bytes=warm.disk_bytes,
        error=error,
        project=str(warm.project.file) if warm.project else None,
    )
