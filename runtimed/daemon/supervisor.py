"""The supervisor: owns every pool, decides what to build, hands envs out, keeps workers.

It never imports backend code. Each backend gets a :class:`~runtimed.daemon.runtime.BackendRuntime`
(its pure :class:`~runtimed.core.pool.Pool`, its worker from the injected
:data:`~runtimed.daemon.runtime.WorkerFactory`, the builds in flight). The handed-out envs
are owned by a :class:`~runtimed.daemon.leasetable.LeaseTable`. The pool answers events
with decisions (envs to delete, builds to start); :meth:`Supervisor.carry_out` is
the one place that executes them. Requests arrive from ``runtimed.daemon.server`` as
protocol records and leave as protocol records. Housekeeping (lease checks, GC)
and config reloading run alongside (``runtimed.daemon.housekeeping``, ``runtimed.daemon.configwatch``);
:func:`runtimed.daemon.reconfig.reconfigure` applies a changed backend section.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from runtimed._version import __version__
from runtimed.config import Config, ConfigError, SupervisionConfig
from runtimed.core.failure import BackendError
from runtimed.core.pool import Pool
from runtimed.core.records import ReadyEnv
from runtimed.core.usage import Usage, UsageLog
from runtimed.daemon.adoption import Adopter
from runtimed.daemon.builder import Builder
from runtimed.daemon.configwatch import ConfigWatcher
from runtimed.daemon.handout import hand_out
from runtimed.daemon.housekeeping import Housekeeper
from runtimed.daemon.kernelenvs import KernelEnvs
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.reconfig import reconfigure
from runtimed.daemon.runtime import BackendRuntime, Worker, WorkerFactory, process_workers
from runtimed.daemon.session import Session, session_path
from runtimed.daemon.statsview import stats_reply
from runtimed.daemon.statusview import pool_statuses
from runtimed.daemon.usagefile import stats_path
from runtimed.envs.bytecode_store import store_path
from runtimed.envs.envdir import dir_size, empty_trash, fallback_trash, move_to_trash, scan_disk
from runtimed.envs.leases import holder_alive
from runtimed.envs.plugins import PluginInfo
from runtimed.kernels.keeper import KernelKeeper, KernelRequestError, KernelStartError
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
    KernelReply,
    PooledEnv,
    Released,
    StatusReply,
    Take,
    TakeKernel,
)
from runtimed.protocol.stats import StatsReply
from runtimed.util.files import now_iso
from runtimed.util.paths import Paths
from runtimed.util.proctree import kill_stale_workers
from runtimed.util.tasks import TaskSet, every

__all__ = ["Supervisor"]

log = logging.getLogger("runtimed.daemon.supervisor")


class Supervisor:
    """Owns the pools. All methods run on the event loop."""

    def __init__(
        self,
        paths: Paths,
        config: Config,
        plugins: dict[str, PluginInfo],
        config_loader: Callable[[], Config] | None = None,
        worker_factory: WorkerFactory | None = None,
        usage: UsageLog | None = None,
    ) -> None:
        self.paths = paths
        self.usage = usage or UsageLog(Usage(since=now_iso()))  # persisted by the daemon (runtimed.daemon.usagefile)
        self.config = config
        self.plugins = {name: info for name, info in plugins.items() if info.error is None}
        self.broken_plugins = {name: info.error for name, info in plugins.items() if info.error is not None}
        self.worker_factory = worker_factory or process_workers(paths)
        self.started_at = now_iso()
        self.runtimes: dict[str, BackendRuntime] = {}
        self.pools: dict[str, Pool] = {}  # the runtimes' pools, for housekeeping
        self.leases = LeaseTable()
        self.session = Session(session_path(paths.cache_dir), paths.envs)  # leases without fsync
        self.config_loader = config_loader
        self.config_error: str | None = None  # the last edit was rejected; shown in status
        self.housekeeping = Housekeeper(
            envs_dir=paths.envs,
            trash_dir=paths.trash,
            pools=self.pools,
            max_age_s=lambda name: self.runtimes[name].config.max_age_s,
            leases=self.leases,
            discard=self.discard,
            refill=self.fill_all,
            adopting=lambda: self.adopter.pending,
            bytecode_store=store_path(paths.cache_dir),
        )
        self.tasks = TaskSet()
        self.builder = Builder(
            env_path=paths.env_path,
            spawn=self.tasks.spawn,
            discard=self.discard,
            measure=self.measure,
            stopping=lambda: self.stopping,
            usage=self.usage,
            record_pooled=lambda path: asyncio.to_thread(self.session.pooled, path),
        )
        self.adopter = Adopter(
            leases=self.leases,
            discard=self.discard,
            measure=self.measure,
            spawn=self.tasks.spawn,
            stopping=lambda: self.stopping,
            settled=self._settled,
        )
        self.stopping = False
        # Envs taken for kernels are counted as kernels, not as takes.
        envs = KernelEnvs(
            take=lambda req, pid: self.take(req, pid, counted=False),
            leases=self.leases,
            discard=self.discard,
            stopping=lambda: self.stopping,
            write_lease=self.session.write_lease,
        )
        self.kernels = KernelKeeper(
            paths.cache_dir / "kernels", envs.access(), lambda: self.config.daemon.kernel_owner_grace_s
        )

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
        found = self.adopter.recover(await asyncio.to_thread(scan_disk, self.paths.envs), self.session.suspects())
        trusted = [*self.leases.paths(), *(env.path for envs in found.values() for env in envs)]
        await asyncio.to_thread(self.session.begin, [path.name for path in trusted])  # before any take
        await self.kernels.recover()  # before any worker: nothing awaits once they are spawned
        for name in sorted(self.plugins):
            runtime = BackendRuntime(name, self.config.backend(name), self._make_worker)
            runtime.startup_envs = found.pop(name, [])
            self.runtimes[name] = runtime
            self.pools[name] = runtime.pool
            self.tasks.spawn(runtime.worker.run(), name=f"worker:{name}")
        for backend, envs in found.items():
            log.warning("%d env(s) of backend %r left alone: no such plugin installed", len(envs), backend)
        self.kernels.run(self._kernel_targets(), self._spare_targets())
        daemon = self.config.daemon
        self.tasks.spawn(every(lambda: self.config.daemon.lease_check_s, self.housekeeping.check_leases))
        self.tasks.spawn(every(lambda: self.config.daemon.gc_interval_s, self.housekeeping.sweep))
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
        self.stopping = True
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
            self.adopter.adopt(runtime, envs)
        self.fill(runtime)
        await runtime.notify()

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

    async def _settled(self, runtime: BackendRuntime) -> None:
        self.fill(runtime)
        await runtime.notify()

    def fill_all(self) -> None:
        for runtime in self.runtimes.values():
            self.fill(runtime)

    def fill(self, runtime: BackendRuntime) -> None:
        """Start the builds the pool decides on now."""
        self.carry_out(runtime)

    def carry_out(
        self, runtime: BackendRuntime, delete: Iterable[tuple[ReadyEnv, str]] = (), *, fill: bool = True
    ) -> None:
        """Carry out the pool's decisions (see :meth:`runtimed.daemon.builder.Builder.carry_out`)."""
        self.builder.carry_out(runtime, delete, fill=fill)

    def discard(self, path: Path) -> None:
        """Delete an env: an atomic rename into the trash now, the removal in a thread.

        If even the rename fails (a read-only or foreign filesystem), the env stays
        on disk for GC and the failure is logged; the caller's state moves on.
        """
        self.leases.forget_size(path)
        try:
            trashed = move_to_trash(path, self.paths.trash)
        except OSError as exc:
            log.error("cannot delete %s (%s); GC will retry", path.name, exc)
            return
        if trashed is not None:
            self.tasks.spawn(asyncio.to_thread(shutil.rmtree, trashed, True), name=f"discard:{path.name}")

    def measure(self, path: Path) -> None:
        async def measure() -> None:
            size = await asyncio.to_thread(dir_size, path)
            if path.exists():
                self.leases.measured(path, size)

        self.tasks.spawn(measure(), name=f"measure:{path.name}")

    # ------------------------------------------------------------ requests

    async def take(
        self,
        request: Take,
        peer_pid: int | None,
        client_gone: Callable[[], bool] = lambda: False,
        *,
        counted: bool = True,
    ) -> EnvReply | Empty | Error:
        """Hand out a ready env, exactly once (see ``runtimed.daemon.handout`` for the checks
        and ``runtimed.daemon.session`` for the lease's durability), or wait up to ``wait_s`` for one. A ``counted``
        take that is answered goes into the usage stats."""
        runtime = self.runtimes.get(request.env_type)
        if runtime is None:
            known = ", ".join(sorted(self.runtimes)) or "none"
            return Error(code="unknown_env_type", message=f"no backend {request.env_type!r} (known: {known})")
        holder = request.lease_pid or peer_pid
        if holder is not None and holder <= 0:
            return Error(code="invalid_message", message=f"lease_pid must be a positive pid, got {holder}")
        started = time.monotonic()
        deadline = started + max(0.0, request.wait_s or 0.0)
        waited = False

        def answered(reply: EnvReply | Empty) -> EnvReply | Empty:
            if counted:
                wait_s = time.monotonic() - started if waited else None
                self.usage.take(runtime.name, served=isinstance(reply, EnvReply), wait_s=wait_s)
            return reply

        async with runtime.changed:
            while True:
                if client_gone():
                    log.info("take for %s: the client has gone; nothing handed out", runtime.name)
                    return Empty()
                # The lease is written before the reply, without an fsync: the session
                # keeps exactly-once across a daemon or OS crash (runtimed.daemon.session).
                handed = hand_out(runtime, self.leases, holder, request.keep, self.discard, self.session.write_lease)
                if handed is not None and not isinstance(handed, Error):
                    # Start the replacement build after the reply has gone out.
                    asyncio.get_running_loop().call_soon(self.fill, runtime)
                    return answered(EnvReply(env=PooledEnv.from_ready(handed)))
                self.fill(runtime)
                if isinstance(handed, Error):
                    return handed
                remaining = deadline - time.monotonic()
                pending = runtime.pool.warming or (not runtime.ready and runtime.pool.target > 0)
                if remaining <= 0 or not pending or self.stopping:
                    return answered(Empty(retry_in_s=runtime.pool.retry_in(time.monotonic())))
                waited = True
                with contextlib.suppress(asyncio.TimeoutError):
                    # Wake at least every second to notice a client that went away.
                    await asyncio.wait_for(runtime.changed.wait(), min(remaining, 1.0))

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
        self.discard(path)
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
                self.carry_out(runtime, [(env, "flushed") for env in drained])
        return Flushed(removed=removed)

    async def gc(self, dry_run: bool = False) -> GcReport:
        return await self.housekeeping.gc(dry_run=dry_run)

    async def envs(self) -> EnvList:
        return await self.housekeeping.envs()

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
        return StatusReply(
            daemon=daemon, pools=pool_statuses(self.runtimes, self.leases, time.monotonic(), self.kernels.status)
        )

    async def stats(self) -> StatsReply:
        """The usage stats, with each backend's disk use now and the bytecode store's."""
        disk = {name: pool.disk_bytes for name, pool in self.status().pools.items()}
        store = store_path(self.paths.cache_dir)
        store_bytes = await asyncio.to_thread(dir_size, store) if store.is_dir() else None
        file = str(stats_path(self.paths.cache_dir))
        return stats_reply(self.usage.usage, file=file, disk=disk, store_bytes=store_bytes)

    # ------------------------------------------------------------ kernels (runtimed.kernels does the work)

    async def take_kernel(self, request: TakeKernel, peer_pid: int | None) -> KernelReply | Empty | Error:
        if request.env_type not in self.runtimes:
            known = ", ".join(sorted(self.runtimes)) or "none"
            return Error(code="unknown_env_type", message=f"no backend {request.env_type!r} (known: {known})")
        try:
            kernel = await self.kernels.take(request, peer_pid)
        except KernelRequestError as exc:
            return Error(code="invalid_kernel_request", message=str(exc))
        except KernelStartError as exc:
            self.usage.kernel(request.env_type, prestarted=None)
            return Error(code="kernel_failed", message=str(exc))
        if kernel is None:
            return Empty(retry_in_s=self.runtimes[request.env_type].pool.retry_in(time.monotonic()))
        self.usage.kernel(request.env_type, prestarted=kernel.prestarted)
        return KernelReply(kernel=kernel)

    def _kernel_targets(self) -> dict[str, int]:
        return {name: self.config.backend(name).kernel_target for name in self.runtimes}

    def _spare_targets(self) -> dict[str, int]:
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
        old, self.config = self.config, config
        for name, runtime in self.runtimes.items():
            if (new := config.backend(name)) != runtime.config:
                reconfigure(runtime, new, self.carry_out, self._start_respec)
        self.kernels.configure(self._kernel_targets(), self._spare_targets())
        if config.supervision != old.supervision:
            for runtime in self.runtimes.values():
                runtime.worker.supervision = config.supervision

    def _start_respec(self, runtime: BackendRuntime) -> None:
        self.tasks.spawn(self._respec(runtime), name=f"respec:{runtime.name}")

    async def _respec(self, runtime: BackendRuntime) -> None:
        if await self.update_spec_hash(runtime):
            await self._settled(runtime)
