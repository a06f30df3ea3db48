"""Starting a pre-started kernel or pre-imported interpreter in a pooled env, until
it reports ready (then it is idle in its pool) or fails (then its pool backs off)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runtimed.kernels.environ import kernel_environ
from runtimed.kernels.launch import LiveKernel, close_control, log_tail, read_ready, spawn_host
from runtimed.kernels.pool import KernelPool
from runtimed.kernels.pools import PoolSet
from runtimed.kernels.process import make_kernel_dir, new_connection_file
from runtimed.kernels.table import EnvAccess, KernelTable
from runtimed.kernels.variants import Variant, apply_variant
from runtimed.protocol.messages import PooledEnv

__all__ = ["Prestarter"]

log = logging.getLogger("runtimed.kernels")


class Prestarter:
    """Starts the keeper's idle kernels; ``woken`` tells the keeper a backend's pools changed."""

    def __init__(
        self,
        table: KernelTable,
        envs: EnvAccess,
        pools: PoolSet,
        base_env: Mapping[str, str],
        woken: Callable[[str], None],
    ) -> None:
        self.table = table
        self.envs = envs
        self.pools = pools
        self.base_env = base_env
        self.woken = woken

    async def prestart(
        self, backend: str, kernel_id: str, env: PooledEnv, pool: KernelPool, variant: Variant, *, preimported: bool
    ) -> None:
        what = "pre-imported interpreter" if preimported else "pre-started kernel"
        started = time.monotonic()
        try:
            kernel = await self._spawn_host(backend, kernel_id, env, variant, preimported=preimported)
        except Exception as exc:
            log.exception("starting a %s in %s failed", what, env.venv_path)
            pool.failed(kernel_id, f"{type(exc).__name__}: {exc}", time.monotonic())
            self.envs.discard(Path(env.venv_path))
            return
        assert kernel.reader is not None
        event = await read_ready(kernel.reader)
        if event.get("event") == ("imported" if preimported else "ready"):
            if not preimported:
                kernel.connection = dict(event["connection"])
            if self.pools.ready(pool, kernel_id):
                log.info("%s %s ready in %.2fs (pid %d)", what, kernel_id, time.monotonic() - started,
                         kernel.record.pid)  # fmt: skip
            else:
                self.discard(kernel)
        else:
            error = str(event.get("error"))
            log.error("%s %s failed: %s\n%s", what, kernel_id, error, log_tail(kernel.dir))
            pool.failed(kernel_id, error, time.monotonic())
            self.discard(kernel)
        self.woken(backend)

    async def _spawn_host(
        self, backend: str, kernel_id: str, env: PooledEnv, variant: Variant, *, preimported: bool
    ) -> LiveKernel:
        kernel_dir = make_kernel_dir(self.table.root, kernel_id)
        connection_file = None if preimported else new_connection_file(kernel_dir)
        environ = kernel_environ(apply_variant(self.base_env, variant), self.envs.activation(env))
        proc, reader, writer = await spawn_host(env.python_path, kernel_dir, connection_file, environ)
        kernel = self.table.track(backend, kernel_id, kernel_dir, env, proc)
        kernel.reader, kernel.writer = reader, writer
        return kernel

    def discard(self, kernel: LiveKernel) -> None:
        """Kill a kernel that was never handed out; forget it and discard its env."""
        self.pools.forget(kernel.record.id)
        close_control(kernel)
        self.table.forget(kernel)
