"""Deleting and measuring envs on disk, off the event loop, for every part of the daemon.

``discard`` moves an env into the trash at once (an atomic rename) and removes it in
a thread; ``measure`` records its size in the lease table (shown in ``status``).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from runtimed.daemon.leasetable import LeaseTable
from runtimed.envs.envdir import dir_size, move_to_trash
from runtimed.util.tasks import TaskSet

__all__ = ["EnvFiles"]

log = logging.getLogger("runtimed.daemon.supervisor")


class EnvFiles:
    """The daemon's envs on disk: delete one, measure one."""

    def __init__(self, *, trash: Path, leases: LeaseTable, tasks: TaskSet) -> None:
        self.trash = trash
        self.leases = leases
        self.tasks = tasks

    def discard(self, path: Path) -> None:
        """Delete an env: an atomic rename into the trash now, the removal in a thread.

        If even the rename fails (a read-only or foreign filesystem), the env stays
        on disk for GC and the failure is logged; the caller's state moves on.
        """
        self.leases.forget_size(path)
        try:
            trashed = move_to_trash(path, self.trash)
        except OSError as exc:
            log.error("cannot delete %s (%s); GC will retry", path.name, exc)
            return
        if trashed is not None:
            self.tasks.spawn(asyncio.to_thread(shutil.rmtree, trashed, True), name=f"discard:{path.name}")

    def measure(self, path: Path) -> None:
        """Record the env's size, measured in a thread (if it still exists then)."""

        async def measure() -> None:
            size = await asyncio.to_thread(dir_size, path)
            if path.exists():
                self.leases.measured(path, size)

        self.tasks.spawn(measure(), name=f"measure:{path.name}")
