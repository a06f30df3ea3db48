"""The supervisor: owns every pool, decides what to build, hands envs out, keeps workers.

It never imports backend code. Each backend gets a :class:`BackendRuntime`: its
pure :class:`~runtimed.pool.Pool`, its :class:`~runtimed.workerproc.WorkerHandle`
and the build tasks in flight. Requests arrive from ``runtimed.server`` as
protocol records and leave as protocol records. Housekeeping runs alongside:
lease holders are checked, a GC sweep deletes what nobody needs, and the config
file is reloaded when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import attrs

from runtimed import __version__
from runtimed.backend import BackendError, ErrorKind
from runtimed.config import BackendConfig, Config, ConfigError
from runtimed.configwatch import ConfigWatcher
from runtimed.envdir import (
    Lease,
    Manifest,
    dir_size,
    empty_trash,
    move_to_trash,
    new_env_id,
    now_iso,
    read_lease,
    read_manifest,
    write_lease,
)
from runtimed.gc import DiskEnv, scan_disk
from runtimed.housekeeping import Housekeeper
from runtimed.jobs import OP_CREATE, OP_SPEC_HASH, OP_VALIDATE, Ready
from runtimed.kernels.keeper import EnvAccess, KernelKeeper, KernelStartError
from runtimed.leases import make_lease
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
    KernelReply,
    PooledEnv,
    PoolError,
    PoolStatus,
    Released,
    StatusReply,
    Take,
    TakeKernel,
    structure,
    unstructure,
)
from runtimed.workerproc import WorkerHandle, kill_stale_workers

__all__ = ["BackendRuntime", "Supervisor"]

log = logging.getLogger("runtimed.supervisor")

WORKER_THREADS = 32  # jobs a worker may run at once; the pool's concurrency is the real limit


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
        self.startup_envs: list[DiskEnv] | None = []  # found on disk, adopted once the spec hash is known
        self.wakeup: asyncio.TimerHandle | None = None
        self.setup_error: PoolError | None = None  # the worker could not tell its spec hash
        self.worker = WorkerHandle(
            name,
            supervisor.paths.backend_cache(name),
            WORKER_THREADS,
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

    def __init__(
        self,
        paths: Paths,
        config: Config,
        plugins: dict[str, PluginInfo],
        config_loader: Callable[[], Config] | None = None,
    ) -> None:
        self.paths = paths
        self.config = config
        self.plugins = plugins
        self.config_loader = config_loader
        self.config_error: str | None = None
        self.started_at = now_iso()
        self.runtimes: dict[str, BackendRuntime] = {}
        self.leases: dict[Path, tuple[str, Lease]] = {}  # handed-out envs by path
        self.sizes: dict[Path, int] = {}  # bytes per pooled/leased env, measured in the background
        self.housekeeping = Housekeeper(self)
        self.kernels = KernelKeeper(
            paths.cache_dir / "kernels",
            EnvAccess(take=self._env_for_kernel, lease=self._lease_to, discard=self._drop_env, activation=_activation),
            lambda: self.config.daemon.kernel_owner_grace_s,
        )
        self._tasks: set[asyncio.Task[object]] = set()
        self._stopping = False

    # ------------------------------------------------------------ startup / shutdown

    async def start(self) -> None:
        """Recover state from disk, start one worker per backend, start housekeeping."""
        self._warn_unknown_backends(self.config)
        self.paths.envs.mkdir(parents=True, exist_ok=True)
        kill_stale_workers(self.paths.cache_dir / "backends")
        self._spawn(asyncio.to_thread(empty_trash, self.paths.trash))
        found = self._recover(await asyncio.to_thread(scan_disk, self.paths.envs))
        for name in sorted(self.plugins):
            runtime = BackendRuntime(name, self)
            runtime.startup_envs = found.pop(name, [])
            self.runtimes[name] = runtime
            self._spawn(runtime.worker.run())
        for backend, envs in found.items():
            log.warning("%d env(s) of backend %r left alone: no such plugin installed", len(envs), backend)
        await self.kernels.start(self._kernel_targets())
        daemon = self.config.daemon
        self._spawn(self._every(lambda: self.config.daemon.lease_check_s, self.housekeeping.check_leases))
        self._spawn(self._every(lambda: self.config.daemon.gc_interval_s, self.housekeeping.sweep))
        if self.config_loader is not None:
            watcher = ConfigWatcher(self.paths.config_file, self.reload_config, daemon.config_poll_s)
            self._spawn(watcher.run())

    def _recover(self, envs: list[DiskEnv]) -> dict[str, list[DiskEnv]]:
        """Leased envs are remembered, kept ones forgotten, partial ones deleted;
        complete ones await adoption by their backend."""
        complete: dict[str, list[DiskEnv]] = {}
        for env in envs:
            if env.lease is not None:
                if not env.lease.keep:
                    self.leases[env.path] = (env.backend, env.lease)
                    self._measure(env.path)
            elif env.manifest is None:
                log.info("deleting partial env %s", env.path.name)
                self.discard(env.path)
            else:
                complete.setdefault(env.backend, []).append(env)
        return complete

    async def shutdown(self) -> None:
        """Stop workers (abandoning builds: partial envs are deleted), then wait for deletions."""
        if self._stopping:
            return
        self._stopping = True
        log.info("shutting down")
        await self.kernels.stop()
        for runtime in self.runtimes.values():
            if runtime.wakeup:
                runtime.wakeup.cancel()
        await asyncio.gather(*(r.worker.stop() for r in self.runtimes.values()), return_exceptions=True)
        builds = [t for r in self.runtimes.values() for t in r.builds.values()]
        await asyncio.gather(*builds, return_exceptions=True)
        for task in list(self._tasks):
            if not task.get_name().startswith("discard:"):
                task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str | None = None) -> asyncio.Task[object]:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def _every(self, interval: Callable[[], float], action: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval())
            try:
                result = action()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("periodic %s failed", getattr(action, "__name__", action))

    # ------------------------------------------------------------ workers and builds

    async def _worker_ready(self, runtime: BackendRuntime, ready: Ready) -> None:
        """A (re)started worker: learn the spec hash, adopt envs from disk once, fill."""
        if not ready.available:
            log.warning("backend %s is not available: %s", runtime.name, ready.reason)
        if not await self._update_spec_hash(runtime):
            return
        if runtime.startup_envs is not None:
            self._adopt(runtime, runtime.startup_envs)
            runtime.startup_envs = None
        self.fill(runtime)
        await runtime.notify()

    async def _update_spec_hash(self, runtime: BackendRuntime) -> bool:
        config = runtime.config
        try:
            result = await runtime.worker.submit(OP_SPEC_HASH, {"config": unstructure(config)}, timeout=60)
        except BackendError as exc:
            runtime.setup_error = PoolError(kind=exc.kind, message=exc.message)
            log.error("backend %s cannot compute its spec hash: %s", runtime.name, exc.message)
            return False
        if runtime.config is not config:
            return False  # reconfigured meanwhile; that change computes its own hash
        runtime.setup_error = None
        new_hash = str(result["spec_hash"])
        if runtime.spec_hash not in (None, new_hash):
            log.info("backend %s: spec changed; current envs become fallbacks until replaced", runtime.name)
            runtime.pool.mark_outdated()
        runtime.spec_hash = new_hash
        return True

    def _adopt(self, runtime: BackendRuntime, envs: Iterable[DiskEnv]) -> None:
        for env in envs:
            manifest = read_manifest(env.path)  # re-read: the worker took a while to start
            if manifest is None or read_lease(env.path) is not None:
                continue
            current = manifest.spec_hash == runtime.spec_hash
            expired = env.age_s > runtime.config.max_age_s
            pool = runtime.pool
            room = len(pool.available) + len(pool.warming) < pool.target if current else pool.target > 0
            if not os.path.exists(manifest.python_path):  # e.g. a venv's base interpreter was removed
                log.warning("deleting broken env %s: %s is gone", env.path.name, manifest.python_path)
                self.discard(env.path)
            elif expired or not room:
                log.info("deleting %s env %s", "expired" if expired else "surplus", env.path.name)
                self.discard(env.path)
            else:
                if current:
                    pool.build_started(env.id)  # holds a warming slot while validating: no over-building
                self._spawn(self._validate_adopted(runtime, manifest.pooled_env(env.path), current))

    async def _validate_adopted(self, runtime: BackendRuntime, env: PooledEnv, current: bool) -> None:
        """Pool an env found on disk only once it has shown it can still start a kernel
        (packages or its base interpreter may have changed since it was built)."""
        path = Path(env.venv_path)
        try:
            await runtime.worker.submit(OP_VALIDATE, {"path": env.venv_path}, timeout=runtime.config.build_timeout)
            valid = True
        except BackendError as exc:
            log.warning("env %s failed validation, deleting it: [%s] %s", path.name, exc.kind, exc.message)
            valid = False
        if current:
            runtime.pool.build_abandoned(env.id)
        if valid and not self._stopping and runtime.pool.adopt(env, current=current):
            log.info("reusing env %s%s", path.name, "" if current else " (outdated: a fallback)")
            self._measure(path)
        else:
            self.discard(path)
        self.fill(runtime)
        await runtime.notify()

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

            def wake() -> None:
                runtime.wakeup = None
                self.fill(runtime)

            runtime.wakeup = asyncio.get_running_loop().call_later(max(0.0, wake_at - now), wake)

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
        except BackendError as exc:
            self.discard(path)
            if self._stopping:
                runtime.pool.build_abandoned(env_id)
            else:
                failure = BuildFailure(kind=exc.kind, message=exc.message, package=exc.package)
                # A dead worker is restarted with its own backoff (and marked failed if it
                # keeps dying); builds resume as soon as it is back.
                runtime.pool.build_failed(env_id, failure, time.monotonic(), back_off=exc.kind != ErrorKind.CRASHED)
                log.error(
                    "build of %s failed [%s]%s: %s", path.name, exc.kind,
                    f" (package {exc.package})" if exc.package else "", exc.message,
                )  # fmt: skip
        except Exception:
            log.exception("build of %s failed unexpectedly", path.name)
            self.discard(path)
            runtime.pool.build_failed(env_id, BuildFailure(ErrorKind.SETUP_FAILED, "internal error"), time.monotonic())
        else:
            if manifest.spec_hash != runtime.spec_hash:
                # The config changed while it was building: not a failure, just not wanted.
                runtime.pool.build_abandoned(env_id)
                log.info("discarding %s: built for a previous config", path.name)
                self.discard(path)
            else:
                for gone in runtime.pool.build_succeeded(manifest.pooled_env(path)):
                    log.info(
                        "deleting %s (%s)", Path(gone.venv_path).name, "surplus" if gone.id == env_id else "replaced"
                    )
                    self.discard(Path(gone.venv_path))
                log.info("built %s in %.2fs", path.name, time.monotonic() - started)
                self._measure(path)
        finally:
            runtime.builds.pop(env_id, None)
        self.fill(runtime)
        await runtime.notify()

    def discard(self, path: Path) -> None:
        """Delete an env: an atomic rename into the trash now, the removal in a thread."""
        self.sizes.pop(path, None)
        trashed = move_to_trash(path, self.paths.trash)
        if trashed is not None:
            self._spawn(asyncio.to_thread(shutil.rmtree, trashed, True), name=f"discard:{path.name}")

    def _measure(self, path: Path) -> None:
        async def measure() -> None:
            size = await asyncio.to_thread(dir_size, path)
            if path.exists():
                self.sizes[path] = size

        self._spawn(measure())

    # ------------------------------------------------------------ requests

    async def take(self, request: Take, peer_pid: int | None) -> EnvReply | Empty | Error:
        runtime = self.runtimes.get(request.env_type)
        if runtime is None:
            known = ", ".join(sorted(self.runtimes)) or "none"
            return Error(code="unknown_env_type", message=f"no backend {request.env_type!r} (known: {known})")
        deadline = time.monotonic() + max(0.0, request.wait_s or 0.0)
        async with runtime.changed:
            while True:
                env = runtime.pool.take()
                if env is not None:
                    path = Path(env.venv_path)
                    if read_manifest(path) is None:
                        log.warning("pooled env %s vanished from disk; skipping it", env.venv_path)
                        continue
                    lease = make_lease(request.lease_pid or peer_pid, keep=request.keep)
                    write_lease(path, lease)  # durable before the reply: never pooled again
                    if request.keep:
                        self.sizes.pop(path, None)  # the client owns it now; runtimed forgets it
                    else:
                        self.leases[path] = (runtime.name, lease)
                    log.info("handed out %s to pid %s%s", path.name, lease.pid, " (kept)" if request.keep else "")
                    self.fill(runtime)
                    return EnvReply(env=env)
                self.fill(runtime)
                remaining = deadline - time.monotonic()
                pending = runtime.pool.warming or (not runtime.ready and runtime.pool.target > 0)
                if remaining <= 0 or not pending or self._stopping:
                    return Empty(retry_in_s=runtime.pool.retry_in(time.monotonic()))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(runtime.changed.wait(), remaining)

    async def release(self, path_text: str) -> Released | Error:
        path = Path(os.path.abspath(path_text))
        if path not in self.leases:
            return Error(code="unknown_env", message=f"{path_text} is not an env handed out by this daemon")
        del self.leases[path]
        self.discard(path)
        log.info("released %s", path.name)
        return Released(path=str(path))

    async def flush(self, env_type: str | None) -> Flushed | Error:
        if env_type is not None and env_type not in self.runtimes:
            return Error(code="unknown_env_type", message=f"no backend {env_type!r}")
        removed = 0
        for runtime in self.runtimes.values():
            if env_type in (None, runtime.name):
                for env in runtime.pool.drain():
                    self.discard(Path(env.venv_path))
                    removed += 1
                runtime.pool.reset_backoff()
                self.fill(runtime)
        return Flushed(removed=removed)

    def status(self) -> StatusReply:
        now = time.monotonic()
        pools = {}
        for name, runtime in self.runtimes.items():
            pool = runtime.pool
            leased = [p for p, (backend, _) in self.leases.items() if backend == name]
            paths = [Path(e.venv_path) for e in pool.pooled] + leased
            pools[name] = PoolStatus(
                available=len(pool.available),
                warming=len(pool.warming),
                target=pool.target,
                leased=len(leased),
                outdated=len(pool.outdated),
                disk_bytes=sum(self.sizes.get(p, 0) for p in paths),
                error=pool.error_status(now) or runtime.setup_error or _worker_error(runtime),
                worker=runtime.worker.status(),
                kernels=self.kernels.status(name),
            )
        daemon = DaemonInfo(
            pid=os.getpid(),
            version=__version__,
            protocol_version=PROTOCOL_VERSION,
            started_at=self.started_at,
            socket=str(self.paths.socket),
            cache_dir=str(self.paths.cache_dir),
            config_file=str(self.paths.config_file),
            config_error=self.config_error,
        )
        return StatusReply(daemon=daemon, pools=pools)

    # ------------------------------------------------------------ kernels (glue for runtimed.kernels)

    async def take_kernel(self, request: TakeKernel, peer_pid: int | None) -> KernelReply | Empty | Error:
        if request.env_type not in self.runtimes:
            known = ", ".join(sorted(self.runtimes)) or "none"
            return Error(code="unknown_env_type", message=f"no backend {request.env_type!r} (known: {known})")
        try:
            kernel = await self.kernels.take(request, peer_pid)
        except KernelStartError as exc:
            return Error(code="kernel_failed", message=str(exc))
        if kernel is None:
            return Empty(retry_in_s=self.runtimes[request.env_type].pool.retry_in(time.monotonic()))
        return KernelReply(kernel=kernel)

    def _kernel_targets(self) -> dict[str, int]:
        return {name: self.config.backend(name).kernel_target for name in self.runtimes}

    async def _env_for_kernel(self, backend: str, wait_s: float) -> PooledEnv | None:
        """An env for a kernel, leased to the daemon until the kernel's pid takes the lease."""
        if self._stopping:
            return None
        reply = await self.take(Take(env_type=backend, wait_s=wait_s, lease_pid=os.getpid()), None)
        return reply.env if isinstance(reply, EnvReply) else None

    def _lease_to(self, path: Path, pid: int) -> None:
        backend = self.leases[path][0] if path in self.leases else path.name.split("-")[1]
        lease = make_lease(pid)
        write_lease(path, lease)
        self.leases[path] = (backend, lease)

    def _drop_env(self, path: Path) -> None:
        if self.leases.pop(path, None) is not None:
            self.discard(path)

    # ------------------------------------------------------------ configuration

    def reload_config(self) -> None:
        """Load the config file again; a broken edit is logged and shown in status,
        and the previous config stays in force."""
        if self.config_loader is None:
            return
        try:
            config = self.config_loader()
        except ConfigError as exc:
            self.config_error = str(exc)
            log.error("config not applied, keeping the previous one: %s", exc)
            return
        self.config_error = None
        self.apply_config(config)

    def _warn_unknown_backends(self, config: Config) -> None:
        for name in sorted(set(config.backends) - set(self.plugins)):
            log.warning("config has [backends.%s] but no such backend plugin is installed", name)

    def apply_config(self, config: Config) -> None:
        """Switch to ``config`` live: resize pools, retire envs of a changed spec."""
        self._warn_unknown_backends(config)
        old, self.config = self.config, config
        for name, runtime in self.runtimes.items():
            new = config.backend(name)
            if new == runtime.config:
                continue
            log.info("backend %s reconfigured: %s", name, _diff(runtime.config, new))
            spec_changed = new.spec_fields() != runtime.config.spec_fields()
            runtime.config = new
            runtime.pool.concurrency = new.concurrency
            for env in runtime.pool.resize(new.pool_size):
                log.info("deleting %s (pool shrank)", Path(env.venv_path).name)
                self.discard(Path(env.venv_path))
            runtime.pool.reset_backoff()
            if spec_changed and runtime.worker.ready is not None:
                self._spawn(self._respec(runtime))
            else:
                self.fill(runtime)
        self.kernels.configure(self._kernel_targets())
        if config.supervision != old.supervision:
            for runtime in self.runtimes.values():
                runtime.worker.supervision = config.supervision

    async def _respec(self, runtime: BackendRuntime) -> None:
        if await self._update_spec_hash(runtime):
            self.fill(runtime)
            await runtime.notify()


def _diff(old: BackendConfig, new: BackendConfig) -> str:
    a, b = attrs.asdict(old), attrs.asdict(new)
    return ", ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k])


def _activation(env: PooledEnv) -> dict[str, str]:
    """The env's activation variables, as its backend recorded them in the manifest."""
    manifest = read_manifest(Path(env.venv_path))
    if manifest is not None and manifest.activation:
        return dict(manifest.activation)
    return {"PATH": str(Path(env.python_path).parent)}


def _worker_error(runtime: BackendRuntime) -> PoolError | None:
    worker = runtime.worker
    if worker.state in ("failed", "restarting") and worker.last_exit:
        return PoolError(kind=ErrorKind.CRASHED, message=f"worker {worker.state}: {worker.last_exit}")
    if worker.ready is not None and not worker.ready.available:
        return PoolError(kind=ErrorKind.TOOL_MISSING, message=worker.ready.reason or "backend unavailable")
    return None
