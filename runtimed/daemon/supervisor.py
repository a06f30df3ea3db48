"""The supervisor: owns every pool, decides what to build, hands envs out, keeps workers.

It never imports backend code. Each backend gets a :class:`~runtimed.daemon.runtime.BackendRuntime`
(its pure :class:`~runtimed.core.pool.Pool`, its worker from the injected
:data:`~runtimed.daemon.runtime.WorkerFactory`, the builds in flight). Its collaborators
come built (:func:`runtimed.daemon.wiring.wire`): the handed-out envs are owned by a
:class:`~runtimed.daemon.leasetable.LeaseTable`; the pool answers events with decisions
(envs to delete, builds to start) and :meth:`runtimed.daemon.builder.Builder.carry_out`
is the one place that executes them; ``runtimed.daemon.taking`` answers takes. Requests
arrive from ``runtimed.daemon.server`` as protocol records and leave as protocol records.
Housekeeping (lease checks, GC) and config reloading run alongside
(``runtimed.daemon.housekeeping``, ``runtimed.daemon.configwatch``);
:func:`runtimed.daemon.reconfig.reconfigure` applies a changed backend section.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from runtimed._version import __version__
from runtimed.config import Config, ConfigError, SupervisionConfig
from runtimed.core.failure import BackendError
from runtimed.daemon.configwatch import ConfigWatcher
from runtimed.daemon.reconfig import reconfigure
from runtimed.daemon.runtime import BackendRuntime, Worker, WorkerFactory
from runtimed.daemon.statsview import stats_reply
from runtimed.daemon.statusview import pool_statuses
from runtimed.daemon.usagefile import stats_path
from runtimed.daemon.wiring import Parts
from runtimed.envs.bytecode_store import store_path
from runtimed.envs.envdir import dir_size, empty_trash, fallback_trash, scan_disk
from runtimed.envs.leases import holder_alive
from runtimed.envs.plugins import PluginInfo
from runtimed.kernels.keeper import ClientGone, KernelRequestError, KernelStartError
from runtimed.kernels.table import Gone, never
from runtimed.protocol.jobs import ComputeSpecHash, Ready
from runtimed.protocol.messages import (
    PROTOCOL_VERSION,
    DaemonInfo,
    Empty,
    EnvList,
    EnvReply,
    Error,
    Flushed,
    GcReport,
    KernelExit,
    KernelExitReply,
    KernelReply,
    Released,
    StatusReply,
    Take,
    TakeKernel,
)
from runtimed.protocol.stats import StatsReply
from runtimed.util.files import now_iso
from runtimed.util.proctree import kill_stale_workers
from runtimed.util.tasks import every

__all__ = ["Supervisor"]

log = logging.getLogger("runtimed.daemon.supervisor")

KERNEL_EXIT_WAIT_MAX_S = 30.0  # a kernel_exit request holds a thread at most this long


class Supervisor:
    """Owns the pools. All methods run on the event loop."""

    def __init__(
        self,
        parts: Parts,
        plugins: dict[str, PluginInfo],
        worker_factory: WorkerFactory,
        config_loader: Callable[[], Config] | None = None,
    ) -> None:
        self.parts = parts
        self.paths = parts.paths
        self.plugins = {name: info for name, info in plugins.items() if info.error is None}
        self.broken_plugins = {name: info.error for name, info in plugins.items() if info.error is not None}
        self.worker_factory = worker_factory
        self.config_loader = config_loader
        self.config_error: str | None = None  # the last edit was rejected; shown in status
        self.started_at = now_iso()
        self.runtimes = parts.runtimes
        self.usage, self.leases, self.session = parts.usage, parts.leases, parts.session
        self.tasks, self.builder, self.kernels = parts.tasks, parts.builder, parts.kernels

    @property
    def config(self) -> Config:
        return self.parts.config.value

    @property
    def stopping(self) -> bool:
        return self.parts.stopping.is_set()

    # ------------------------------------------------------------ startup / shutdown

    async def start(self) -> None:
        """Recover state from disk, start one worker per backend, start housekeeping."""
        for name, error in sorted(self.broken_plugins.items()):
            log.error("backend %s is broken and not served: %s", name, error)
        self._warn_unknown_backends(self.config)
        self.paths.envs.mkdir(parents=True, exist_ok=True)
        kill_stale_workers(self.paths.cache_dir / "backends")
        trash = (self.paths.trash, fallback_trash(self.paths.envs))  # the fallback: when trash/ is on another fs
        self.tasks.spawn(asyncio.to_thread(empty_trash, *trash), name="empty-trash")
        found = self.parts.adopter.recover(await asyncio.to_thread(scan_disk, self.paths.envs), self.session.suspects())
        trusted = [*self.leases.paths(), *(env.path for envs in found.values() for env in envs)]
        await asyncio.to_thread(self.session.begin, [path.name for path in trusted])  # before any take
        await self.kernels.recover()  # before any worker: nothing awaits once they are spawned
        for name in sorted(self.plugins):
            runtime = BackendRuntime(name, self.config.backend(name), self._make_worker)
            runtime.startup_envs = found.pop(name, [])
            self.runtimes[name] = runtime
            self.tasks.spawn(runtime.worker.run(), name=f"worker:{name}")
        for backend, envs in found.items():
            log.warning("%d env(s) of backend %r left alone: no such plugin installed", len(envs), backend)
        self.kernels.run(self._kernel_targets(), self._preimported_targets())
        daemon = self.config.daemon
        housekeeping = self.parts.housekeeping
        self.tasks.spawn(every(lambda: self.config.daemon.lease_check_s, housekeeping.check_leases))
        self.tasks.spawn(every(lambda: self.config.daemon.gc_interval_s, housekeeping.sweep))
        if self.config_loader is not None:
            watcher = ConfigWatcher(self.paths.config_file, self.reload_config, daemon.config_poll_s)
            self.tasks.spawn(watcher.run(), name="config-watch")

    def _make_worker(self, runtime: BackendRuntime) -> Worker:
        async def on_ready(ready: Ready) -> None:
            await self._worker_ready(runtime, ready)

        supervision: SupervisionConfig = self.config.supervision
        return self.worker_factory(runtime.name, on_ready, supervision)

    async def shutdown(self) -> None:
        """Stop workers (abandoning builds: partial envs are deleted), then wait for deletions."""
        if self.stopping:
            return
        self.parts.stopping.set()
        log.info("shutting down")
        await self.kernels.stop()
        for runtime in self.runtimes.values():
            if runtime.wakeup:
                runtime.wakeup.cancel()
        await asyncio.gather(*(r.worker.stop() for r in self.runtimes.values()), return_exceptions=True)
        builds = [t for r in self.runtimes.values() for t in r.builds.values()]
        await asyncio.gather(*builds, return_exceptions=True)
        await self.tasks.stop(keep=lambda task: task.get_name().startswith("discard:"))
        await asyncio.to_thread(self.session.end_clean)

    # ------------------------------------------------------------ workers and builds

    async def _worker_ready(self, runtime: BackendRuntime, ready: Ready) -> None:
        """A (re)started worker: learn the spec hash, adopt envs from disk once, fill."""
        if not ready.available:
            log.warning("backend %s is not available: %s", runtime.name, ready.reason)
        if not await self.update_spec_hash(runtime):
            return
        if runtime.startup_envs is not None:
            envs, runtime.startup_envs = runtime.startup_envs, None
            self.parts.adopter.adopt(runtime, envs)
        await self.builder.settle(runtime)

    async def update_spec_hash(self, runtime: BackendRuntime) -> bool:
        config = runtime.config
        try:
            result = await runtime.worker.submit(ComputeSpecHash(config=config), timeout=60)
        except BackendError as exc:
            runtime.setup_error = exc.failure
            log.error("backend %s cannot compute its spec hash: %s", runtime.name, exc.message)
            return False
        if runtime.config is not config:
            return False  # reconfigured meanwhile; that change computes its own hash
        runtime.setup_error = None
        if runtime.spec_hash not in (None, result.spec_hash):
            log.info("backend %s: spec changed; current envs become fallbacks until replaced", runtime.name)
            runtime.pool.mark_outdated()
        runtime.spec_hash = result.spec_hash
        return True

    # ------------------------------------------------------------ requests

    async def take(
        self, request: Take, peer_pid: int | None, client_gone: Callable[[], bool] = lambda: False
    ) -> EnvReply | Empty | Error:
        """Hand out a ready env exactly once, or wait for one (``runtimed.daemon.taking``)."""
        return await self.parts.taker.take(request, peer_pid, client_gone)

    async def release(self, path_text: str, peer_pid: int | None = None) -> Released | Error:
        """Delete a handed-out env. Only its holder may release it, or any process of
        this user once the holder has exited (the socket is private to this user)."""
        path = Path(os.path.abspath(path_text))
        entry = self.leases.get(path)
        if entry is None:
            return Error(code="unknown_env", message=f"{path_text} is not an env handed out by this daemon")
        holder = entry.lease.pid
        if peer_pid is not None and holder is not None and holder != peer_pid and holder_alive(entry.lease):
            return Error(code="not_holder", message=f"{path.name} is leased to pid {holder}, which is still running")
        self.leases.release(path)
        self.parts.files.discard(path)
        log.info("released %s", path.name)
        return Released(path=str(path))

    async def flush(self, env_type: str | None) -> Flushed | Error:
        if env_type is not None and env_type not in self.runtimes:
            return Error(code="unknown_env_type", message=f"no backend {env_type!r}")
        removed = 0
        for runtime in self.runtimes.values():
            if env_type in (None, runtime.name):
                drained = runtime.pool.drain()
                removed += len(drained)
                runtime.pool.reset_backoff()
                self.builder.carry_out(runtime, [(env, "flushed") for env in drained])
                removed += self.parts.extras.flush(runtime.name)
        return Flushed(removed=removed)

    async def gc(self, dry_run: bool = False) -> GcReport:
        return await self.parts.housekeeping.gc(dry_run=dry_run)

    async def envs(self) -> EnvList:
        return await self.parts.housekeeping.envs()

    def status(self) -> StatusReply:
        daemon = DaemonInfo(
            pid=os.getpid(),
            version=__version__,
            protocol_version=PROTOCOL_VERSION,
            started_at=self.started_at,
            socket=str(self.paths.socket),
            cache_dir=str(self.paths.cache_dir),
            config_file=str(self.paths.config_file),
            config_error=self.config_error,
            broken_plugins=dict(self.broken_plugins),
        )
        now = time.monotonic()
        pools = pool_statuses(
            self.runtimes, self.leases, now, self.kernels.status, lambda name: self.parts.extras.statuses(name, now)
        )
        return StatusReply(daemon=daemon, pools=pools)

    async def stats(self) -> StatsReply:
        """The usage stats, with each backend's disk use now and the bytecode store's."""
        disk = {name: pool.disk_bytes for name, pool in self.status().pools.items()}
        store = store_path(self.paths.cache_dir)
        store_bytes = await asyncio.to_thread(dir_size, store) if store.is_dir() else None
        file = str(stats_path(self.paths.cache_dir))
        return stats_reply(self.usage.usage, file=file, disk=disk, store_bytes=store_bytes)

    # ------------------------------------------------------------ kernels (runtimed.kernels does the work)

    async def take_kernel(
        self, request: TakeKernel, peer_pid: int | None, client_gone: Gone = never
    ) -> KernelReply | Empty | Error:
        """A kernel as ``request`` asks. If its client has gone (it gave up waiting for an
        install, say), none is launched, and one it missed is ended: nothing runs for nobody."""
        if request.env_type not in self.runtimes:
            known = ", ".join(sorted(self.runtimes)) or "none"
            return Error(code="unknown_env_type", message=f"no backend {request.env_type!r} (known: {known})")
        try:
            kernel = await self.kernels.take(request, peer_pid, client_gone)
            if kernel is not None and client_gone():  # it went while the kernel started
                self.kernels.table.abandon(kernel.id)
                raise ClientGone(f"ending kernel {kernel.id} (pid {kernel.pid})")
        except ClientGone as exc:
            log.warning("take_kernel: the client has gone; %s", exc)
            return Error(code="client_gone", message="the client has gone")
        except KernelRequestError as exc:
            return Error(code="invalid_kernel_request", message=str(exc))
        except KernelStartError as exc:
            self.usage.kernel(request.env_type, prestarted=None)
            return Error(code="kernel_failed", message=str(exc))
        if kernel is None:
            return Empty(retry_in_s=self.runtimes[request.env_type].pool.retry_in(time.monotonic()))
        self.kernels.table.set_owner_grace(kernel.id, request.owner_grace_s)
        self.usage.kernel(request.env_type, prestarted=kernel.prestarted, refused=kernel.refused)
        return KernelReply(kernel=kernel)

    async def kernel_exit(self, request: KernelExit) -> KernelExitReply:
        """How a kernel ended (the argv launcher exits with its status)."""
        wait_s = min(max(0.0, request.wait_s), KERNEL_EXIT_WAIT_MAX_S)
        return KernelExitReply(returncode=await self.kernels.exit_code(request.kernel_id, wait_s))

    def _kernel_targets(self) -> dict[str, int]:
        return {name: self.config.backend(name).kernel_target for name in self.runtimes}

    def _preimported_targets(self) -> dict[str, int]:
        return {name: self.config.backend(name).preimported_target for name in self.runtimes}

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
        for name in sorted(set(config.backends) - set(self.plugins) - set(self.broken_plugins)):
            log.warning("config has [backends.%s] but no such backend plugin is installed", name)

    def apply_config(self, config: Config) -> None:
        """Switch to ``config`` live: resize pools, retire envs of a changed spec."""
        self._warn_unknown_backends(config)
        old, self.parts.config.value = self.config, config
        for name, runtime in self.runtimes.items():
            if (new := config.backend(name)) != runtime.config:
                if new.spec_fields() != runtime.config.spec_fields():
                    self.parts.extras.flush(name)  # their envs were built on the old base
                reconfigure(runtime, new, self.builder.carry_out, self._start_respec)
                self.parts.extras.reconfigured(runtime)
        self.kernels.configure(self._kernel_targets(), self._preimported_targets(), config.daemon.kernel_variants)
        if config.supervision != old.supervision:
            for runtime in self.runtimes.values():
                runtime.worker.supervision = config.supervision

    def _start_respec(self, runtime: BackendRuntime) -> None:
        self.tasks.spawn(self._respec(runtime), name=f"respec:{runtime.name}")

    async def _respec(self, runtime: BackendRuntime) -> None:
        if await self.update_spec_hash(runtime):
            await self.builder.settle(runtime)
