"""Housekeeping for the supervisor: lease holders, garbage collection, the env inventory.

The planning is pure (``runtimed.gc``); this module does the I/O around it. All of
it runs on the supervisor's event loop, and between a plan and its execution
nothing awaits, so no take or build can interleave.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import TYPE_CHECKING

from runtimed.bytecode_store import collect_store_logged, store_path
from runtimed.envdir import dir_size, move_to_trash, read_lease
from runtimed.gc import DiskEnv, Reason, Tracked, env_state, plan_gc, scan_disk
from runtimed.leases import holder_alive
from runtimed.protocol import EnvEntry, EnvList, GcItem, GcReport

if TYPE_CHECKING:
    from runtimed.supervisor import Supervisor

__all__ = ["Housekeeper"]

log = logging.getLogger("runtimed.housekeeping")


class Housekeeper:
    """Deletes what nobody needs: envs of exited holders, and what a GC sweep finds."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor

    def check_leases(self) -> int:
        """Delete envs whose holder has exited. Returns how many."""
        gone = [(path, backend) for path, (backend, lease) in self.sup.leases.items() if not holder_alive(lease)]
        for path, _backend in gone:
            del self.sup.leases[path]
            log.info("holder of %s is gone; deleting it", path.name)
            self.sup.discard(path)
        return len(gone)

    def _tracked(self) -> Tracked:
        pools = [r.pool for r in self.sup.runtimes.values()]
        return Tracked(
            backends=frozenset(self.sup.runtimes),
            pooled=frozenset(e.id for p in pools for e in p.available),
            outdated=frozenset(e.id for p in pools for e in p.outdated),
            warming=frozenset(i for p in pools for i in p.warming),
            leased=frozenset(self.sup.leases),
            max_age_s={name: r.config.max_age_s for name, r in self.sup.runtimes.items()},
        )

    async def gc(self, dry_run: bool = False) -> GcReport:
        """One sweep: expired, partial, untracked and abandoned envs go (see ``runtimed.gc``)."""
        disk = await asyncio.to_thread(scan_disk, self.sup.paths.envs)
        # From here to the deletions nothing awaits: no take or build can interleave.
        plan = plan_gc(disk, self._tracked(), holder_alive)
        if dry_run:
            sizes = await asyncio.to_thread(lambda: [dir_size(item.env.path) for item in plan])
            items = [_gc_item(item.env, item.reason, size) for item, size in zip(plan, sizes, strict=True)]
            return GcReport(removed=items, freed_bytes=sum(sizes), dry_run=True)
        trashed = []
        for item in plan:
            env = item.env
            runtime = self.sup.runtimes.get(env.backend)
            if item.reason == Reason.EXPIRED:
                if runtime is None or not runtime.pool.retire({env.id}):
                    continue  # taken since the scan
            elif item.reason != Reason.HOLDER_GONE and read_lease(env.path) is not None:
                continue  # handed out (perhaps kept) since the scan
            self.sup.leases.pop(env.path, None)
            self.sup.sizes.pop(env.path, None)
            target = move_to_trash(env.path, self.sup.paths.trash)
            if target is not None:
                log.info("gc: deleting %s (%s)", env.path.name, item.reason)
                trashed.append((item, target))
        for runtime in self.sup.runtimes.values():
            self.sup.fill(runtime)

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
        await asyncio.to_thread(collect_store_logged, store_path(self.sup.paths.cache_dir))
        if report.removed:
            log.info("gc: freed %d bytes in %d env(s)", report.freed_bytes, len(report.removed))

    async def envs(self) -> EnvList:
        disk = await asyncio.to_thread(scan_disk, self.sup.paths.envs)
        sizes = await asyncio.to_thread(lambda: [dir_size(e.path) for e in disk])
        tracked = self._tracked()
        entries = [
            EnvEntry(
                path=str(env.path),
                backend=env.backend,
                id=env.id,
                state=env_state(env, tracked),
                size_bytes=size,
                age_s=round(env.age_s, 1),
                holder_pid=env.lease.pid if env.lease else None,
            )
            for env, size in zip(disk, sizes, strict=True)
        ]
        return EnvList(envs=entries)


def _gc_item(env: DiskEnv, reason: str, size: int) -> GcItem:
    return GcItem(path=str(env.path), backend=env.backend, reason=reason, size_bytes=size)
