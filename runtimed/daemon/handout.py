"""Handing one pooled env out: cheap checks, then a lease, exactly once.

Runs on the event loop inside the pool's condition, so no other take or build
interleaves between popping an env and leasing it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from runtimed.core.records import Lease, ReadyEnv
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.runtime import BackendRuntime
from runtimed.envs.envdir import META_DIR, missing_part
from runtimed.envs.leases import make_lease
from runtimed.protocol.messages import Error

__all__ = ["hand_out", "looks_whole"]

log = logging.getLogger("runtimed.daemon.supervisor")


def looks_whole(env: ReadyEnv) -> str | None:
    """Why a pooled env cannot be handed out (None if it can), from a few ``stat`` calls:
    the env dir must still be runtimed's own (not a symlink planted in its place), and
    its manifest and what its backend said makes it whole (``Backend.whole_paths``,
    recorded in the manifest: by default the python, ipykernel and its launcher) must
    still exist (cache cleaners delete files)."""
    if os.path.islink(env.path):
        return "it was replaced by a symlink"
    if not os.path.exists(env.path / META_DIR / "manifest.json"):
        return "its manifest is gone"
    missing = missing_part(env.path, env.manifest)
    if missing is not None:
        return f"{missing} is gone"
    return None


def hand_out(
    runtime: BackendRuntime,
    leases: LeaseTable,
    holder: int | None,
    keep: bool,
    discard: Callable[[Path], None],
    write_lease: Callable[[Path, Lease], None],
) -> ReadyEnv | Error | None:
    """Take the next good env from the pool and lease it to ``holder``.

    Broken envs met on the way are discarded and skipped. If the lease cannot be
    written, the env goes back to the pool (nothing is lost) and an error is returned.

    Durability: ``write_lease`` (``Session.write_lease``) writes the lease with an
    atomic rename before the reply, but without an fsync (a ``keep`` lease excepted):
    a daemon crash loses nothing (the page cache has the lease), and after an OS
    crash the next daemon deletes every env this daemon's session could have handed
    out and that has no lease on disk (see ``runtimed.daemon.session``). So no env is
    handed out twice, and a take costs no disk flush.
    """
    pool = runtime.pool
    while True:
        outdated = not pool.available
        env = pool.take()
        if env is None:
            return None
        broken = looks_whole(env)
        if broken is not None:
            log.warning("pooled env %s is broken (%s); deleting it", env.path.name, broken)
            discard(env.path)
            continue
        try:
            lease = make_lease(holder, keep=keep)
            write_lease(env.path, lease)
        except (OSError, ValueError) as exc:
            pool.put_back(env, outdated=outdated)
            log.error("cannot lease %s: %s", env.path.name, exc)
            return Error(code="lease_failed", message=f"cannot write the lease of {env.path.name}: {exc}")
        leases.add(env.path, runtime.name, lease)
        # Logged after the reply has gone out: a log write is as dear as the lease's.
        asyncio.get_running_loop().call_soon(
            log.info, "handed out %s to pid %s%s", env.path.name, lease.pid, " (kept)" if keep else ""
        )
        return env
