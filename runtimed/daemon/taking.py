"""A ``take``: hand a ready env out exactly once, or wait up to ``wait_s`` for one.

:func:`hand_out` pops one pooled env and leases it: it runs on the event loop inside
the pool's condition, so no other take or build interleaves between popping an env
and leasing it, and checks the env cheaply first (:func:`looks_whole`). The lease's
durability is the session's (``runtimed.daemon.session``). A take that empties the
pool starts the replacement build (through :meth:`runtimed.daemon.builder.Builder.carry_out`)
after its reply has gone out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runtimed.core.records import Lease, ReadyEnv
from runtimed.core.usage import UsageRecorder
from runtimed.daemon.extras import ExtrasTaker
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.runtime import BackendRuntime
from runtimed.envs.envdir import META_DIR, missing_part
from runtimed.envs.leases import make_lease
from runtimed.protocol.messages import Empty, EnvReply, Error, PooledEnv, Take

__all__ = ["Taker", "hand_out", "looks_whole"]

log = logging.getLogger("runtimed.daemon.supervisor")


class Taker:
    """Answers ``take`` requests for every backend, with narrow collaborators."""

    def __init__(
        self,
        *,
        runtimes: Mapping[str, BackendRuntime],
        leases: LeaseTable,
        discard: Callable[[Path], None],
        write_lease: Callable[[Path, Lease], None],
        carry_out: Callable[[BackendRuntime], None],
        usage: UsageRecorder,
        stopping: Callable[[], bool],
    ) -> None:
        self.runtimes = runtimes
        self.leases = leases
        self.discard = discard
        self.write_lease = write_lease  # the session's: no fsync (see runtimed.daemon.session)
        self.carry_out = carry_out
        self.usage = usage
        self.stopping = stopping
        self.extras: ExtrasTaker | None = None  # takes with extra packages (set by wiring)

    async def take(
        self,
        request: Take,
        peer_pid: int | None,
        client_gone: Callable[[], bool] = lambda: False,
        *,
        counted: bool = True,
    ) -> EnvReply | Empty | Error:
        """Hand out a ready env, exactly once, or wait up to ``wait_s`` for one. A
        ``counted`` take that is answered goes into the usage stats."""
        runtime = self.runtimes.get(request.env_type)
        if runtime is None:
            known = ", ".join(sorted(self.runtimes)) or "none"
            return Error(code="unknown_env_type", message=f"no backend {request.env_type!r} (known: {known})")
        holder = request.lease_pid or peer_pid
        if holder is not None and holder <= 0:
            return Error(code="invalid_message", message=f"lease_pid must be a positive pid, got {holder}")
        if (request.packages or request.channels) and self.extras is not None:
            reply = await self.extras.take(runtime, request, holder)
            if counted:
                self.usage.take(runtime.name, served=isinstance(reply, EnvReply), wait_s=None)
            return reply
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
                handed = hand_out(runtime, self.leases, holder, request.keep, self.discard, self.write_lease)
                if handed is not None and not isinstance(handed, Error):
                    # Start the replacement build after the reply has gone out.
                    asyncio.get_running_loop().call_soon(self.carry_out, runtime)
                    return answered(EnvReply(env=PooledEnv.from_ready(handed)))
                self.carry_out(runtime)
                if isinstance(handed, Error):
                    return handed
                remaining = deadline - time.monotonic()
                pending = runtime.pool.warming or (not runtime.ready and runtime.pool.target > 0)
                if remaining <= 0 or not pending or self.stopping():
                    return answered(Empty(retry_in_s=runtime.pool.retry_in(time.monotonic())))
                waited = True
                with contextlib.suppress(asyncio.TimeoutError):
                    # Wake at least every second to notice a client that went away.
                    await asyncio.wait_for(runtime.changed.wait(), min(remaining, 1.0))

    async def take_uncounted(self, request: Take, peer_pid: int | None) -> EnvReply | Empty | Error:
        """A take for a kernel: counted as a kernel, not as a take."""
        return await self.take(request, peer_pid, counted=False)


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
