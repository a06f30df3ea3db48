"""Recovering state from disk at start-up: leases remembered, partial envs deleted,
complete envs validated by their worker and adopted into the pool.

Adoption waits for the backend's spec hash (from its worker), so it happens when
each worker is first ready; until then :attr:`Adopter.pending` keeps GC away from
those envs. It gets narrow collaborators, never the supervisor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from runtimed.core.failure import BackendError
from runtimed.core.gc import DiskEnv
from runtimed.core.records import ReadyEnv
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.runtime import BackendRuntime
from runtimed.envs.envdir import missing_part, read_lease, read_manifest
from runtimed.protocol.jobs import ValidateEnv

__all__ = ["Adopter"]

log = logging.getLogger("runtimed.daemon.supervisor")


class Adopter:
    """Turns what a previous daemon left on disk into pool and lease state."""

    def __init__(
        self,
        *,
        leases: LeaseTable,
        discard: Callable[[Path], None],
        measure: Callable[[Path], None],
        spawn: Callable[[Coroutine[Any, Any, object]], object],
        stopping: Callable[[], bool],
        settled: Callable[[BackendRuntime], Coroutine[Any, Any, None]],
    ) -> None:
        self.leases = leases
        self.discard = discard
        self.measure = measure
        self.spawn = spawn
        self.stopping = stopping
        self.settled = settled  # refill the pool and wake waiting takes
        self.pending: set[str] = set()  # ids of complete envs found on disk, not yet adopted or deleted

    def recover(self, envs: list[DiskEnv], suspects: frozenset[str] = frozenset()) -> dict[str, list[DiskEnv]]:
        """Leased envs are remembered, kept ones forgotten, partial ones deleted, and
        so are ``suspects`` with no lease (named by a session that ended in an OS
        crash: their lease may have been lost, see ``runtimed.daemon.session``); complete
        ones are returned by backend, to await adoption."""
        complete: dict[str, list[DiskEnv]] = {}
        for env in envs:
            if env.lease is not None:
                if not env.lease.keep:
                    self.leases.add(env.path, env.backend, env.lease)
                    self.measure(env.path)
            elif env.path.name in suspects:
                log.warning("deleting %s: it may have been handed out before an OS crash lost its lease", env.path.name)
                self.discard(env.path)
            elif env.manifest is None:
                log.info("deleting partial env %s", env.path.name)
                self.discard(env.path)
            else:
                complete.setdefault(env.backend, []).append(env)
                self.pending.add(env.id)
        return complete

    def adopt(self, runtime: BackendRuntime, envs: Iterable[DiskEnv]) -> None:
        """Validate (in the worker) the envs worth keeping; delete the others."""
        for env in envs:
            manifest = read_manifest(env.path)  # re-read: the worker took a while to start
            if manifest is None or read_lease(env.path) is not None:
                self.pending.discard(env.id)
                continue
            current = manifest.spec_hash == runtime.spec_hash
            expired = env.age_s > runtime.config.max_age_s
            pool = runtime.pool
            room = len(pool.available) + len(pool.warming) < pool.target if current else pool.target > 0
            missing = missing_part(env.path, manifest)  # e.g. a venv's base interpreter was removed
            if missing is not None:
                log.warning("deleting broken env %s: %s is gone", env.path.name, missing)
                self.pending.discard(env.id)
                self.discard(env.path)
            elif expired or not room:
                log.info("deleting %s env %s", "expired" if expired else "surplus", env.path.name)
                self.pending.discard(env.id)
                self.discard(env.path)
            else:
                if current:
                    pool.build_started(env.id)  # holds a warming slot while validating: no over-building
                self.spawn(self._validate(runtime, ReadyEnv(path=env.path, manifest=manifest), current))

    async def _validate(self, runtime: BackendRuntime, env: ReadyEnv, current: bool) -> None:
        """Pool an env found on disk only once it has shown it can still start a kernel
        (packages or its base interpreter may have changed since it was built)."""
        try:
            await runtime.worker.submit(ValidateEnv(path=env.path), timeout=runtime.config.build_timeout)
            valid = True
        except BackendError as exc:
            log.warning("env %s failed validation, deleting it: [%s] %s", env.path.name, exc.kind, exc.message)
            valid = False
        finally:
            if current:
                runtime.pool.build_abandoned(env.id)
            self.pending.discard(env.id)
        if valid and not self.stopping() and runtime.pool.adopt(env, current=current):
            log.info("reusing env %s%s", env.path.name, "" if current else " (outdated: a fallback)")
            self.measure(env.path)
        else:
            self.discard(env.path)
        await self.settled(runtime)
