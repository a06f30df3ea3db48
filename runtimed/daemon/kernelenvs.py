"""Envs for pre-started kernels: the narrow access the kernel keeper gets to the pools.

The keeper (``runtimed.kernels.keeper``) never sees the supervisor. It takes envs
through the normal take path (leased to the daemon until a kernel holds them),
re-leases them to the kernel's pid once it is handed out, and gives them back for
deletion when their kernel is gone.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs

from runtimed.core.records import Lease
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.projects import ProjectServer
from runtimed.envs.envdir import read_manifest
from runtimed.envs.leases import make_lease
from runtimed.kernels.keeper import EnvAccess
from runtimed.protocol.messages import Empty, EnvReply, Error, PackageOptions, PooledEnv, Take
from runtimed.util.paths import ENV_DIR_PREFIX

__all__ = ["KernelEnvs", "activation"]

TakeEnv = Callable[[Take, "int | None"], Awaitable[EnvReply | Empty | Error]]


class KernelEnvs:
    """Takes, re-leases and discards the envs that kernels run in."""

    def __init__(
        self,
        *,
        take: TakeEnv,
        leases: LeaseTable,
        discard: Callable[[Path], None],
        stopping: Callable[[], bool],
        write_lease: Callable[[Path, Lease], None],
        projects: ProjectServer | None = None,
    ) -> None:
        self._projects = projects
        self._take = take
        self._write_lease = write_lease  # the session's: no fsync (see runtimed.daemon.session)
        self._leases = leases
        self._discard = discard
        self._stopping = stopping

    def access(self) -> EnvAccess:
        access = EnvAccess(
            take=self.take, lease=self.lease, discard=self.drop, activation=activation, take_with=self.take_with
        )
        if self._projects is None:
            return access
        return attrs.evolve(access, take_project=self._projects.take, find_project=self._projects.find)

    async def take(self, backend: str, wait_s: float) -> PooledEnv | None:
        """An env for a kernel, leased to the daemon until the kernel's pid takes the lease."""
        if self._stopping():
            return None
        reply = await self._take(Take(env_type=backend, wait_s=wait_s, lease_pid=os.getpid()), None)
        return reply.env if isinstance(reply, EnvReply) else None

    async def take_with(
        self, backend: str, packages: list[str], channels: list[str], options: PackageOptions
    ) -> PooledEnv | str:
        """An env with ``packages`` installed (from a warm set, or installed now), leased
        to the daemon; else the error's message."""
        if self._stopping():
            return "the daemon is stopping"
        request = Take(
            env_type=backend, wait_s=None, lease_pid=os.getpid(), packages=packages, channels=channels, options=options
        )
        reply = await self._take(request, None)
        if isinstance(reply, EnvReply):
            return reply.env
        return reply.message if isinstance(reply, Error) else f"the {backend} pool is empty"

    def lease(self, path: Path, pid: int) -> None:
        """The env now belongs to the kernel process ``pid`` (before it is used)."""
        entry = self._leases.get(path)
        backend = entry.backend if entry is not None else _backend_of(path)
        lease = make_lease(pid)
        self._write_lease(path, lease)
        self._leases.add(path, backend, lease)

    def drop(self, path: Path) -> None:
        """The env's kernel is gone: delete it."""
        if self._leases.release(path) is not None:
            self._discard(path)


def activation(env: PooledEnv) -> dict[str, str]:
    """The env's activation variables, as its backend recorded them in the manifest."""
    manifest = read_manifest(Path(env.venv_path))
    if manifest is not None and manifest.activation:
        return dict(manifest.activation)
    return {"PATH": str(Path(env.python_path).parent)}


def _backend_of(path: Path) -> str:
    """``runtimed-<backend>-<id>`` -> ``backend``."""
    return path.name.removeprefix(ENV_DIR_PREFIX).rsplit("-", 1)[0]
