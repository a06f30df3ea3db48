"""Housekeeping for the supervisor: lease holders, garbage collection, the env inventory.

The planning is pure (``runtimed.core.gc``); this module does the I/O around it. All of
it runs on the supervisor's event loop, and between a plan and its execution
nothing awaits, so no take or build can interleave. It is given narrow
collaborators, never the supervisor: the pools (read, and ``retire`` for expired
envs), the lease table, a ``discard`` callable and a ``refill`` callable.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from runtimed.core.gc import DiskEnv, Reason, Tracked, env_state, plan_gc
from runtimed.core.pool import Pool
from runtimed.daemon.leasetable import LeaseTable
from runtimed.envs.bytecode_store import collect_store_logged
from runtimed.envs.envdir import dir_size, move_to_trash, read_lease, scan_disk
from runtimed.envs.leases import holder_alive
from runtimed.protocol.messages import EnvEntry, EnvList, GcItem, GcReport

__all__ = ["Housekeeper"]

log = logging.getLogger("runtimed.daemon.housekeeping")


class Housekeeper:
    """Deletes what nobody needs: envs of exited holders, and what a GC sweep finds."""

    def __init__(
        self,
        *,
        envs_dir: Path,
        trash_dir: Path,
        pools: Mapping[str, Pool],
        max_age_s: Callable[[str], float],
        leases: LeaseTable,
        discard: Callable[[Path], None],
        refill: Callable[[], None],
        adopting: Callable[[], Iterable[str]] = frozenset,
        bytecode_store: Path | None = None,
    ) -> None:
        self.envs_dir = envs_dir
        self.trash_dir = trash_dir
        self.pools = pools
        self.max_age_s = max_age_s
        self.leases = leases
        self.discard = discard
        self.refill = refill
        self.adopting = adopting  # ids found on disk at start-up, awaiting validation: not GC's
        self.bytecode_store = bytecode_store  # shared .pyc entries no env links any more are collected

    def check_leases(self) -> int:
        """Delete envs whose holder has exited. Returns how many."""
        gone = self.leases.holder_gone(holder_alive)
        for path in gone:
            log.info("holder of %s is gone; deleting it", path.name)
            self.discard(path)
        return len(gone)

    def _tracked(self) -> Tracked:
        pools = list(self.pools.values())
        return Tracked(
            backends=frozenset(self.pools),
            pooled=frozenset(e.id for p in pools for e in p.available),
            outdated=frozenset(e.id for p in pools for e in p.outdated),
            warming=frozenset(i for p in pools for i in p.warming) | frozenset(self.adopting()),
            leased=self.leases.paths(),
            max_age_s={name: self.max_age_s(name) for name in self.pools},
        )

    async def gc(self, dry_run: bool = False) -> GcReport:
        """One sweep: expired, partial, untracked and abandoned envs go (see ``runtimed.core.gc``)."""
        disk = await asyncio.to_thread(scan_disk, self.envs_dir)
        # From here to the deletions nothing awaits: no take or build can interleave.
        plan = plan_gc(disk, self._tracked(), holder_alive)
        if dry_run:
            sizes = await asyncio.to_thread(lambda: [dir_size(item.env.path) for item in plan])
            items = [_gc_item(item.env, item.reason, size) for item, size in zip(plan, sizes, strict=True)]
            return GcReport(removed=items, freed_bytes=sum(sizes), dry_run=True)
        trashed = []
        for item in plan:
            env = item.env
            pool = self.pools.get(env.backend)
            if item.reason == Reason.EXPIRED:
                if pool is None or not pool.retire({env.id}):
                    continue  # taken since the scan
            elif item.reason != Reason.HOLDER_GONE and read_lease(env.path) is not None:
                continue  # handed out (perhaps kept) since the scan
            self.leases.release(env.path)
            target = move_to_trash(env.path, self.trash_dir)
            if target is not None:
                log.info("gc: deleting %s (%s)", env.path.name, item.reason)
                trashed.append((item, target))
        self.refill()

        def remove() -> list[int]:
            sizes = []
            for _item, target in trashed:
                sizes.append(dir_size(target))
                shutil.rmtree(target, ignore_errors=True)
            return sizes

        sizes = await asyncio.to_thread(remove)
        items = [_gc_item(item.env, item.reason, size) for (item, _), size in zip(trashed, sizes, strict=True)]
        return GcReport(removed=items, freed_bytes=sum(sizes), dry_run=False)

    async def sweep(self) -> None:
        report = await self.gc()
        if self.bytecode_store is not None:
            await asyncio.to_thread(collect_store_logged, self.bytecode_store)
        if report.removed:
            log.info("gc: freed %d bytes in %d env(s)", report.freed_bytes, len(report.removed))

    async def envs(self) -> EnvList:
        disk = await asyncio.to_thread(scan_disk, self.envs_dir)
        sizes = await asyncio.to_thread(lambda: [dir_size(e.path) for e in disk])
        tracked = self._tracked()
        entries = [
            EnvEntry(
                path=str(env.path),
                backend=env.backend,
                id=env.id,
                state=env_state(env, tracked).value,
                size_bytes=size,
                age_s=round(env.age_s, 1),
                holder_pid=env.lease.pid if env.lease else None,
            )
            for env, size in zip(disk, sizes, strict=True)
        ]
        return EnvList(envs=entries)


def _gc_item(env: DiskEnv, reason: Reason, size: int) -> GcItem:
    return GcItem(path=str(env.path), backend=env.backend, reason=reason.value, size_bytes=size)
