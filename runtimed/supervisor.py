"""The supervisor: owns every pool, decides what to build, hands envs out, keeps workers.

It never imports backend code. Each backend gets a :class:`BackendRuntime`: its
pure :class:`~runtimed.pool.Pool`, its :class:`~runtimed.workerproc.WorkerHandle`
and the build tasks in flight. Requests arrive from ``runtimed.server`` as
protocol records and leave as protocol records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any

import psutil

from runtimed import __version__
from runtimed.backend import BackendError, ErrorKind
from runtimed.config import Config
from runtimed.envdir import (
    EnvDir,
    Lease,
    Manifest,
    empty_trash,
    move_to_trash,
    new_env_id,
    now_iso,
    read_lease,
    read_manifest,
    scan_envs,
    write_lease,
)
from runtimed.jobs import OP_CREATE, OP_SPEC_HASH, Ready
from runtimed.paths import Paths
from runtimed.plugins import PluginInfo
from runtimed.pool import BuildFailure, Pool
from runtimed.protocol import (
    PROTOCOL_VERSION,
    DaemonInfo,
    Empty,
    EnvReply,
    Error,
    Flushed,
    PooledEnv,
    PoolError,
    PoolStatus,
    Released,
    StatusReply,
    Take,
    structure,
    unstructure,
)
from runtimed.workerproc import WorkerHandle, kill_stale_workers

__all__ = ["BackendRuntime", "Supervisor"]

log = logging.getLogger("runtimed.supervisor")


class BackendRuntime:
    """Everything the supervisor keeps for one backend."""

    def __init__(self, name: str, supervisor: Supervisor) -> None:
        self.name = name
        config = supervisor.config.backend(name)
        self.config = config
        self.pool = Pool(name=name, target=config.pool_size, concurrency=config.concurrency)
        self.spec_hash: str | None = None
        self.builds: dict[str, asyncio.Task[None]] = {}
        self.changed = asyncio.Condition()
        self.startup_envs: list[EnvDir] | None = []  # found on disk, adopted once the spec hash is known
        self.wakeup: asyncio.TimerHandle | None = None
        self.setup_error: PoolError | None = None  # the worker could not tell its spec hash
        self.worker = WorkerHandle(
            name,
            supervisor.paths.backend_cache(name),
            config.concurrency,
            supervisor.config.supervision,
            on_ready=lambda ready: supervisor._worker_ready(self, ready),
        )

    @property
    def ready(self) -> bool:
        return self.spec_hash is not None and self.worker.ready is not None

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class Supervisor:
    """Owns the pools. All methods run on the event loop."""

    def __init__(self, paths: Paths, config: Config, plugins: dict[str, PluginInfo]) -> None:
        self.paths = paths
        self.config = config
        self.plugins = plugins
        self.started_at = now_iso()
        self.runtimes: dict[str, BackendRuntime] = {}
        self.leases: dict[Path, tuple[str, Lease]] = {}  # handed-out envs by path
        self._tasks: set[asyncio.Task[object]] = set()
        self._stopping = False
        self.stopped = asyncio.Event()

    # ------------------------------------------------------------ startup / shutdown

    async def start(self) -> None:
        """Recover state from disk, then start one worker per backend."""
        self.paths.envs.mkdir(parents=True, exist_ok=True)
        kill_stale_workers(self.paths.cache_dir / "backends")
        self._spawn(asyncio.to_thread(empty_trash, self.paths.trash))
        found = self._scan_disk()
        for name in sorted(self.plugins):
            runtime = BackendRuntime(name, self)
            runtime.startup_envs = found.pop(name, [])
            self.runtimes[name] = runtime
            self._spawn(runtime.worker.run())
        for backend, envs in found.items():
            log.warning("%d env(s) of backend %r left alone: no such plugin installed", len(envs), backend)

    def _scan_disk(self) -> dict[str, list[EnvDir]]:
        """Leased envs are remembered, partial ones deleted; complete ones await adoption."""
        complete: dict[str, list[EnvDir]] = {}
        for env in scan_envs(self.paths.envs):
            lease = read_lease(env.path)
            if lease is not None:
                self.leases[env.path] = (env.backend, lease)
            elif read_manifest(env.path) is None:
                log.info("deleting partial env %s", env.path.name)
                self._discard(env.path)
            else:
                complete.setdefault(env.backend, []).append(env)
        return complete

    async def shutdown(self) -> None:
        """Stop workers (abandoning builds: partial envs are deleted), then wait for deletions."""
        if self._stopping:
            return
        self._stopping = True
        log.info("shutting down")
        for runtime in self.runtimes.values():
            if runtime.wakeup:
                runtime.wakeup.cancel()
        await asyncio.gather(*(r.worker.stop() for r in self.runtimes.values()), return_exceptions=True)
        builds = [t for r in self.runtimes.values() for t in r.builds.values()]
        await asyncio.gather(*builds, return_exceptions=True)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.stopped.set()

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    # ------------------------------------------------------------ workers and builds

    async def _worker_ready(self, runtime: BackendRuntime, ready: Ready) -> None:
        """A (re)started worker: learn the spec hash, adopt envs from disk once, fill."""
        try:
            result = await runtime.worker.submit(OP_SPEC_HASH, {"config": unstructure(runtime.config)}, timeout=60)
        except BackendError as exc:
            runtime.setup_error = PoolError(kind=exc.kind, message=exc.message)
            log.error("backend %s cannot compute its spec hash: %s", runtime.name, exc.message)
            return
        runtime.setup_error = None
        runtime.spec_hash = str(result["spec_hash"])
        if not ready.available:
            log.warning("backend %s is not available: %s", runtime.name, ready.reason)
        if runtime.startup_envs is not None:
            self._adopt(runtime, runtime.startup_envs)
            runtime.startup_envs = None
        self.fill(runtime)
        await runtime.notify()

    def _adopt(self, runtime: BackendRuntime, envs: Iterable[EnvDir]) -> None:
        for env in envs:
            manifest = read_manifest(env.path)
            if manifest is None or env.path in self.leases:
                continue
            if manifest.spec_hash != runtime.spec_hash:
                log.info("deleting stale env %s (spec changed)", env.path.name)
                self._discard(env.path)
            elif runtime.pool.adopt(manifest.pooled_env(env.path)):
                log.info("reusing env %s", env.path.name)
            else:
                log.info("deleting surplus env %s", env.path.name)
                self._discard(env.path)

    def fill(self, runtime: BackendRuntime) -> None:
        """Start as many builds as the pool wants now; schedule a wake-up after backoff."""
        if self._stopping or not runtime.ready:
            return
        now = time.monotonic()
        for _ in range(runtime.pool.builds_to_start(now)):
            env_id = new_env_id()
            runtime.pool.build_started(env_id)  # counts as warming at once
            runtime.builds[env_id] = asyncio.create_task(self._build(runtime, env_id))
        wake_at = runtime.pool.next_wakeup(now)
        if wake_at is not None and runtime.wakeup is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, wake_at - now)

            def wake() -> None:
                runtime.wakeup = None
                self.fill(runtime)

            runtime.wakeup = loop.call_later(delay, wake)

    async def _build(self, runtime: BackendRuntime, env_id: str) -> None:
        path = self.paths.env_path(runtime.name, env_id)
        started = time.monotonic()
        try:
            result = await runtime.worker.submit(
                OP_CREATE,
                {"env_id": env_id, "path": str(path), "config": unstructure(runtime.config)},
                timeout=runtime.config.build_timeout,
                progress=lambda message: log.debug("build %s: %s", path.name, message),
            )
            manifest: Manifest = structure(result["manifest"], Manifest)
            if manifest.spec_hash != runtime.spec_hash:
                raise BackendError(ErrorKind.SETUP_FAILED, "built env has an outdated spec hash")
        except BackendError as exc:
            self._discard(path)
            if self._stopping:
                runtime.pool.warming.discard(env_id)
            else:
                failure = BuildFailure(kind=exc.kind, message=exc.message, package=exc.package)
                runtime.pool.build_failed(env_id, failure, time.monotonic())
                log.error(
                    "build of %s failed [%s]%s: %s", path.name, exc.kind,
                    f" (package {exc.package})" if exc.package else "", exc.message,
                )  # fmt: skip
        except Exception:
            log.exception("build of %s failed unexpectedly", path.name)
            self._discard(path)
            runtime.pool.build_failed(env_id, BuildFailure(ErrorKind.SETUP_FAILED, "internal error"), time.monotonic())
        else:
            pooled = runtime.pool.build_succeeded(manifest.pooled_env(path))
            log.info("built %s in %.2fs%s", path.name, time.monotonic() - started, "" if pooled else " (surplus)")
            if not pooled:
                self._discard(path)
        finally:
            runtime.builds.pop(env_id, None)
        self.fill(runtime)
        await runtime.notify()

    def _discard(self, path: Path) -> None:
        """Delete an env: an atomic rename into the trash now, the removal in a thread."""
        trashed = move_to_trash(path, self.paths.trash)
        if trashed is not None:
            self._spawn(asyncio.to_thread(shutil.rmtree, trashed, True))

    # ------------------------------------------------------------ requests

    async def take(self, request: Take, peer_pid: int | None) -> EnvReply | Empty | Error:
        runtime = self.runtimes.get(request.env_type)
        if runtime is None:
            known = ", ".join(sorted(self.runtimes)) or "none"
            return Error(code="unknown_env_type", message=f"no backend {request.env_type!r} (known: {known})")
        wait_s = max(0.0, request.wait_s or 0.0)
        deadline = time.monotonic() + wait_s
        async with runtime.changed:
            while True:
                env = runtime.pool.take()
                if env is not None:
                    if read_manifest(Path(env.venv_path)) is None:
                        log.warning("pooled env %s vanished from disk; skipping it", env.venv_path)
                        continue
                    self._lease(runtime, env, request, peer_pid)
                    self.fill(runtime)
                    return EnvReply(env=env)
                self.fill(runtime)
                remaining = deadline - time.monotonic()
                pending = runtime.pool.warming or (not runtime.ready and runtime.pool.target > 0)
                if remaining <= 0 or not pending or self._stopping:
                    return Empty(retry_in_s=runtime.pool.retry_in(time.monotonic()))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(runtime.changed.wait(), remaining)

    def _lease(self, runtime: BackendRuntime, env: PooledEnv, request: Take, peer_pid: int | None) -> None:
        pid = request.lease_pid or peer_pid
        create_time = None
        if pid:
            with contextlib.suppress(psutil.Error):
                create_time = psutil.Process(pid).create_time()
        lease = Lease(pid=pid, create_time=create_time, taken_at=now_iso(), keep=request.keep)
        path = Path(env.venv_path)
        write_lease(path, lease)
        self.leases[path] = (runtime.name, lease)
        log.info("handed out %s to pid %s", path.name, pid)

    async def release(self, path_text: str) -> Released | Error:
        path = Path(os.path.abspath(path_text))
        if path not in self.leases:
            return Error(code="unknown_env", message=f"{path_text} is not an env handed out by this daemon")
        del self.leases[path]
        self._discard(path)
        log.info("released %s", path.name)
        return Released(path=str(path))

    async def flush(self, env_type: str | None) -> Flushed | Error:
        if env_type is not None and env_type not in self.runtimes:
            return Error(code="unknown_env_type", message=f"no backend {env_type!r}")
        removed = 0
        for runtime in self.runtimes.values():
            if env_type in (None, runtime.name):
                for env in runtime.pool.drain():
                    self._discard(Path(env.venv_path))
                    removed += 1
                runtime.pool.reset_backoff()
                self.fill(runtime)
        return Flushed(removed=removed)

    def status(self) -> StatusReply:
        now = time.monotonic()
        pools = {}
        for name, runtime in self.runtimes.items():
            pool = runtime.pool
            pools[name] = PoolStatus(
                available=len(pool.available),
                warming=len(pool.warming),
                target=pool.target,
                leased=sum(1 for backend, _ in self.leases.values() if backend == name),
                error=pool.error_status(now) or runtime.setup_error or _worker_error(runtime),
                worker=runtime.worker.status(),
            )
        daemon = DaemonInfo(
            pid=os.getpid(),
            version=__version__,
            protocol_version=PROTOCOL_VERSION,
            started_at=self.started_at,
            socket=str(self.paths.socket),
            cache_dir=str(self.paths.cache_dir),
        )
        return StatusReply(daemon=daemon, pools=pools)


def _worker_error(runtime: BackendRuntime) -> PoolError | None:
    worker = runtime.worker
    if worker.state in ("failed", "restarting") and worker.last_exit:
        return PoolError(kind=ErrorKind.CRASHED, message=f"worker {worker.state}: {worker.last_exit}")
    if worker.ready is not None and not worker.ready.available:
        return PoolError(kind=ErrorKind.TOOL_MISSING, message=worker.ready.reason or "backend unavailable")
    return None
