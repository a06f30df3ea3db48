"""The daemon's kernel keeper: keeps pre-started kernels and pre-imported interpreters,
hands them out, launches kernels in pooled envs, watches the owners of those handed out.

It never sees the supervisor: it gets an :class:`EnvAccess` of callables to take an
env (leased to the daemon), re-lease it to a kernel pid, discard it and tell its
activation variables. Pool bookkeeping is :class:`~runtimed.kernels.pools.PoolSet`;
the kernels themselves (records, envs, launches) are
:class:`~runtimed.kernels.table.KernelTable`; starting processes and talking to them
is :mod:`runtimed.kernels.launch`; their files on disk are
:mod:`runtimed.kernels.process`; when an owner's death ends a kernel is
:class:`~runtimed.kernels.owners.OwnerWatch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from runtimed.kernels.claims import claim_prestarted, start_preimported
from runtimed.kernels.environ import Refusal, RefusalKind, kernel_environ, refusal, startup_refusal
from runtimed.kernels.launch import (
    ClientGone,
    KernelRequestError,
    KernelStartError,
    LiveKernel,
    TakeoverError,
    close_control,
    log_tail,
    request_problem,
)
from runtimed.kernels.owners import TERM_GRACE_S
from runtimed.kernels.pool import REFILL_DELAY_S, KernelPool
from runtimed.kernels.pools import PoolSet
from runtimed.kernels.prestart import Prestarter
from runtimed.kernels.process import KernelState, kill_group, remove_kernel_dir
from runtimed.kernels.table import EnvAccess, Gone, KernelTable, never
from runtimed.kernels.variants import Variant, Variants, apply_variant, variant_of
from runtimed.kernels.withdeps import launch_with_packages, package_set_of, take_env_of_set
from runtimed.protocol.messages import KernelPoolStatus, LaunchedKernel, PooledEnv, TakeKernel
from runtimed.util.files import new_env_id
from runtimed.util.liveness import is_alive
from runtimed.util.tasks import TaskSet, every

__all__ = ["ClientGone", "EnvAccess", "KernelKeeper", "KernelRequestError", "KernelStartError"]

log = logging.getLogger("runtimed.kernels")

ENV_WAIT_S = 5.0  # how long a pre-start waits for an env from the pool
WATCH_INTERVAL_S = 0.5


class KernelKeeper:
    """Pre-started kernels and pre-imported interpreters for every backend, and the
    kernels it handed out."""

    def __init__(
        self,
        root: Path,
        envs: EnvAccess,
        owner_grace_s: Callable[[], float],
        keep_variants: int = 1,
        package_sets: Callable[[str], int] = lambda _backend: 0,
    ) -> None:
        self.table = KernelTable(root, envs)
        self.envs = envs
        self.owner_grace_s = owner_grace_s
        self.package_sets = package_sets  # how many recent package sets of a backend keep a kernel
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks = TaskSet(log)
        self._fillers: set[str] = set()
        self._fillers_of_sets: set[int] = set()  # id() of package-set pools being filled
        self._running = False
        self.base_env = kernel_environ(os.environ, {})  # what kernels start with, but for their variant
        # Pre-started kernels and pre-imported interpreters (which start a kernel on
        # claim) per backend, for each start-up variant kept warm (the daemon's own first).
        self.pools = PoolSet(Variants(keep=keep_variants, recent=[variant_of(self.base_env)]))
        self.starter = Prestarter(self.table, envs, self.pools, self.base_env, self._woken)

    @property
    def kernels(self) -> dict[str, LiveKernel]:
        return self.table.kernels

    # ------------------------------------------------------------ lifecycle

    async def start(self, targets: Mapping[str, int], preimported: Mapping[str, int] | None = None) -> None:
        """Recover kernels left on disk, then keep ``targets`` idle kernels (and
        ``preimported`` pre-imported interpreters) per backend."""
        await self.recover()
        self.run(targets, preimported)

    async def recover(self) -> None:
        """Kill idle kernels a previous daemon left; watch its handed-out ones again."""
        await asyncio.to_thread(self.table.recover)

    def run(self, targets: Mapping[str, int], preimported: Mapping[str, int] | None = None) -> None:
        """Keep ``targets`` idle kernels (and ``preimported`` pre-imported interpreters)
        per backend from now on (after :meth:`recover`)."""
        self._running = True
        self._tasks.spawn(every(lambda: WATCH_INTERVAL_S, self.check_kernels, log), name="kernel watch")
        self.configure(targets, preimported)

    def configure(
        self, targets: Mapping[str, int], preimported: Mapping[str, int] | None = None, keep_variants: int | None = None
    ) -> None:
        """Keep ``targets`` kernels (and ``preimported`` interpreters) of each kept
        start-up variant, and ``keep_variants`` variants, from now on."""
        preimported = preimported or {}
        self._stop_idle(self.pools.configure(targets, preimported, keep_variants), "fewer wanted")
        for backend in {*targets, *preimported}:
            self._wake.setdefault(backend, asyncio.Event()).set()
            if self._running and backend not in self._fillers:
                self._fillers.add(backend)
                self._tasks.spawn(self._fill(backend), name=f"kernel filler {backend}")

    async def stop(self) -> None:
        """Stop every never handed-out kernel; handed-out ones live on."""
        self._running = False
        await self._tasks.stop()
        idle = [k for k in self.kernels.values() if k.record.state is KernelState.IDLE]
        for kernel in idle:
            close_control(kernel)  # the host exits when its channel closes
            kill_group(kernel.record.pid, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        while any(self.table.alive(k) for k in idle) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for kernel in idle:
            self._discard(kernel)

    # ------------------------------------------------------------ pre-starting

    async def _fill(self, backend: str) -> None:
        """Start what the backend's pools lack: kernels first, then pre-imported interpreters."""
        wake = self._wake[backend]
        while True:
            now = time.monotonic()
            pools = self.pools.of(backend)
            pool = next((p for p in pools if p.deficit(now) > 0), None)
            if pool is not None:
                await self._start_one(backend, pool)
                continue
            wake.clear()
            later = [p.next_start_at for p in pools if p.next_start_at > now]
            timeout = max(0.05, min(later) - now) if later else 5.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    def _woken(self, backend: str) -> None:
        if (wake := self._wake.get(backend)) is not None:
            wake.set()

    def _stop_idle(self, kernel_ids: list[str], why: str) -> None:
        for kernel_id in kernel_ids:
            log.info("stopping idle kernel %s (%s)", kernel_id, why)
            self._discard(self.kernels[kernel_id])
        for wake in self._wake.values():
            wake.set()

    async def _start_one(self, backend: str, pool: KernelPool) -> None:
        """Take an env for one more of ``pool``'s kernels and start it (in the background)."""
        preimported = pool is self.pools.preimported.get(backend)
        kernel_id = new_env_id()
        variant = self.pools.start(pool, kernel_id)
        try:
            env = await self.envs.take(backend, ENV_WAIT_S)
        except Exception:
            log.exception("taking an env for a pre-started %s kernel failed", backend)
            env = None
        if env is None:
            pool.abandoned(kernel_id)
            await asyncio.sleep(1.0)
        else:
            prestart = self.starter.prestart(backend, kernel_id, env, pool, variant, preimported=preimported)
            self._tasks.spawn(prestart, name=f"kernel prestart {kernel_id}")

    # ------------------------------------------------------------ handing out

    async def take(self, request: TakeKernel, peer_pid: int | None, gone: Gone = never) -> LaunchedKernel | None:
        """A kernel set up as ``request`` asks: pre-started if one can serve, else
        launched in a pooled env. None if the pool has no env either.
        :class:`KernelRequestError` (nothing claimed) if no kernel could start as asked;
        :class:`ClientGone` if the client has gone before a launch."""
        problem = request_problem(request.cwd, request.env)
        if problem is not None:
            raise KernelRequestError(problem)
        backend, began = request.env_type, time.monotonic()
        owner = request.owner_pid or peer_pid
        wanted = variant_of(request.env)
        if request.packages or request.project_dir:
            served = await self._take_with_packages(request, owner, wanted, gone)
            if isinstance(served, LaunchedKernel):
                log.info("kernel with packages for pid %s in %.1f ms", owner, (time.monotonic() - began) * 1e3)
                return served
            request = served  # a base kernel, which says why the packages are missing
        refused = self._variant_refusal(request, wanted)
        pool = self.pools.prestarted.get(backend)
        if refused is None and pool is not None:
            try:
                kernel = await self._take_idle(backend, pool, wanted, functools.partial(self._claim, request=request))
            except TakeoverError as exc:
                kernel = None
                refused = Refusal(RefusalKind.TAKEOVER_FAILED, f"a pre-started kernel could not take over: {exc}")
            if kernel is not None:
                self.pools.outcome(backend).served()
                log.info("handed out pre-started kernel %s (pid %d) to pid %s in %.1f ms", kernel.record.id,
                         kernel.record.pid, owner, (time.monotonic() - began) * 1e3)  # fmt: skip
                return self.table.hand_out(kernel, owner, prestarted=True, reason="")
        refused = refused or self.pools.none_ready(backend)
        self.pools.outcome(backend).refusal(refused.label)
        preimported = self.pools.preimported.get(backend)
        if preimported is not None and startup_refusal(request, apply_variant(self.base_env, wanted)) is None:
            start_it = functools.partial(self._start_preimported, request=request)
            kernel = await self._take_idle(backend, preimported, wanted, start_it)
            if kernel is not None:
                reason = f"{refused.message}; a pre-imported interpreter started it"
                handed = self.table.hand_out(kernel, owner, prestarted=False, reason=reason, refused=refused.label)
                log.info("started a kernel in pre-imported interpreter %s (pid %d) for pid %s in %.1f ms: %s",
                         kernel.record.id, kernel.record.pid, owner, (time.monotonic() - began) * 1e3,
                         reason)  # fmt: skip
                return handed
        return await self._launch(backend, request, owner, refused, gone)

    async def _take_with_packages(
        self, request: TakeKernel, owner: int | None, wanted: Variant, gone: Gone
    ) -> LaunchedKernel | TakeKernel:
        """A pre-started kernel of the request's package set if one is ready and can
        serve, else one launched in an env of the set (see :mod:`.withdeps`)."""
        packages = await package_set_of(self.envs, request)
        if isinstance(packages, TakeKernel):
            return packages  # no approved project: a plain request
        keep = self.package_sets(packages.backend)
        pool, stop = self.pools.package_pool(packages, keep, create=False)  # made once a kernel of it started
        self._stop_idle(stop, "its package set is no longer among the most recent")
        if pool is not None and self._variant_refusal(request, wanted) is None:
            claim = functools.partial(self._claim, request=request)
            with contextlib.suppress(TakeoverError):  # the launch below gets the same error
                kernel = await self._take_idle(packages.backend, pool, wanted, claim)
                if kernel is not None:
                    log.info("handing out pre-started kernel %s of the package set %s", kernel.record.id, packages.key)
                    self._fill_set_later(pool)
                    return self.table.hand_out(kernel, owner, prestarted=True, reason="")
        served = await launch_with_packages(self.table, self.envs, self.base_env, request, owner, packages, gone)
        if isinstance(served, LaunchedKernel):
            pool, stop = self.pools.package_pool(packages, keep)
            self._stop_idle(stop, "its package set is no longer among the most recent")
            if pool is not None:
                pool.refill_at = time.monotonic() + REFILL_DELAY_S  # the cores are the new kernel's first
                self._fill_set_later(pool)
        return served

    def _fill_set_later(self, pool: KernelPool) -> None:
        """Start the kernels a package set's pool lacks (in the background; once per pool)."""
        if self._running and id(pool) not in self._fillers_of_sets:
            self._fillers_of_sets.add(id(pool))
            task = self._tasks.spawn(self._fill_set(pool), name="kernel filler of a package set")
            task.add_done_callback(lambda _t: self._fillers_of_sets.discard(id(pool)))

    async def _fill_set(self, pool: KernelPool) -> None:
        while self._running and (packages := self.pools.package_set(pool)) is not None:
            now = time.monotonic()
            if pool.next_start_at > now:
                await asyncio.sleep(pool.next_start_at - now)
                continue
            if pool.deficit(now) == 0:
                return
            kernel_id = new_env_id()
            variant = self.pools.start(pool, kernel_id)
            env = await take_env_of_set(self.envs, packages, recheck=True)
            if isinstance(env, str):
                pool.failed(kernel_id, env, time.monotonic())
            elif self.pools.package_set(pool) is None:
                pool.abandoned(kernel_id)
                self.envs.discard(Path(env.venv_path))
            else:
                await self.starter.prestart(packages.backend, kernel_id, env, pool, variant, preimported=False)

    def _variant_refusal(self, request: TakeKernel, wanted: Variant) -> Refusal | None:
        """Why no kept kernel can serve ``request``, noting its start-up variant as
        the most recent (the kernels started next use it)."""
        latest = self.pools.variants.recent
        refused = refusal(request, apply_variant(self.base_env, wanted))
        if refused is None and wanted not in latest:
            refused = startup_refusal(request, apply_variant(self.base_env, latest[0]))
        if refused is None or refused.kind is RefusalKind.STARTUP_VARIABLE:
            stop = self.pools.note(wanted)
            if refused is not None:
                log.info("kernel request: %s; the next pre-started kernels start with its values", refused.message)
            self._stop_idle(stop, "its start-up variables are no longer among the latest")
        return refused

    async def _launch(
        self, backend: str, request: TakeKernel, owner: int | None, refused: Refusal, gone: Gone
    ) -> LaunchedKernel | None:
        """A normal kernel in a pooled env (or the env of an idle pre-started kernel)."""
        env = await self.envs.take(backend, 0.0) or await self._env_of_idle_kernel(backend)
        if env is None:
            env = await self.envs.take(backend, request.wait_s if request.wait_s is not None else ENV_WAIT_S)
        if env is None:
            log.info("no kernel for %s: %s, and the env pool is empty", backend, refused.message)
            return None
        log.info("launching a kernel in pooled env %s: %s", Path(env.venv_path).name, refused.message)
        kernel = await self.table.launch(backend, env, request, self.base_env, gone)
        try:
            return self.table.hand_out(kernel, owner, prestarted=False, reason=refused.message, refused=refused.label)
        except BaseException:
            self._discard(kernel)
            raise

    async def _take_idle(
        self, backend: str, pool: KernelPool, variant: Variant, start: Callable[[LiveKernel], Awaitable[None]]
    ) -> LiveKernel | None:
        """The next idle kernel of ``pool`` started with ``variant`` that ``start``
        sets up (one that fails is discarded and the next tried); None when the pool has none."""
        while (kernel_id := self.pools.take(pool, variant, time.monotonic())) is not None:
            self._wake[backend].set()  # the filler schedules the refill (pool.REFILL_DELAY_S)
            kernel = self.kernels[kernel_id]
            try:
                await start(kernel)
            except Exception as exc:
                log.warning("idle kernel %s could not be set up: %s\n%s", kernel_id, exc, log_tail(kernel.dir))
                self._discard(kernel)
                if isinstance(exc, TakeoverError):
                    raise  # the next kernel would find the port taken too
                continue
            return kernel
        return None

    async def _env_of_idle_kernel(self, backend: str) -> PooledEnv | None:
        """With the env pool empty, a pre-started kernel gives up its (unused) env."""
        pool = self.pools.prestarted.get(backend)
        kernel_id = self.pools.take_any(pool, time.monotonic()) if pool is not None else None
        if kernel_id is None:
            return None
        kernel = self.kernels.pop(kernel_id)
        self.envs.lease(Path(kernel.record.env_path), os.getpid())  # not freed when its kernel exits
        close_control(kernel)  # the host exits at once
        kill_group(kernel.record.pid)
        if kernel.proc is not None:
            await asyncio.to_thread(kernel.proc.wait)
        remove_kernel_dir(kernel.dir)
        self._wake[backend].set()
        log.info("took the env of pre-started kernel %s (the env pool is empty)", kernel_id)
        return self.table.env_of(kernel)

    async def _claim(self, kernel: LiveKernel, request: TakeKernel) -> None:
        await claim_prestarted(kernel, request, self.envs.activation(self.table.env_of(kernel)))

    async def _start_preimported(self, kernel: LiveKernel, request: TakeKernel) -> None:
        await start_preimported(kernel, request, self.envs.activation(self.table.env_of(kernel)))

    # ------------------------------------------------------------ watching

    def check_kernels(self) -> None:
        """Reap kernels that ended; shut down handed-out kernels whose owner died."""
        now = time.monotonic()
        for kernel in list(self.kernels.values()):
            record = kernel.record
            if not self.table.alive(kernel):
                if record.state is KernelState.IDLE:
                    pool = self.pools.holding(record)
                    if pool is not None and record.id in pool.idle:
                        log.warning("idle kernel %s died:\n%s", record.id, log_tail(kernel.dir))
                        pool.lost(record.id)
                        self._wake[record.backend].set()
                    if pool is not None and record.id in pool.starting:
                        continue  # its start task reports the failure
                else:
                    log.info("kernel %s (pid %d) ended; deleting its env", record.id, record.pid)
                self.table.forget(kernel)
                continue
            if record.state is not KernelState.HANDED_OUT or not record.owner_pid:
                continue
            owner_alive = is_alive(record.owner_pid, record.owner_create_time)
            grace = self.owner_grace_s() if record.owner_grace_s is None else record.owner_grace_s
            sig = kernel.owner.step(owner_alive, now, grace)
            if sig is signal.SIGTERM:
                log.info("owner %d of kernel %s is gone: shutting the kernel down", record.owner_pid, record.id)
            if sig is not None:
                kill_group(record.pid, sig)

    async def exit_code(self, kernel_id: str, wait_s: float) -> int | None:
        """A kernel's exit status (see :meth:`KernelTable.exit_code`)."""
        return await asyncio.to_thread(self.table.exit_code, kernel_id, wait_s)

    def _discard(self, kernel: LiveKernel) -> None:
        self.starter.discard(kernel)

    # ------------------------------------------------------------ status

    def status(self, backend: str) -> KernelPoolStatus:
        return self.pools.status(backend, self.table.handed_out(backend))
