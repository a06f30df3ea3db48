"""A ``take``: hand a ready env out exactly once, or wait up to ``wait_s`` for one.

The checks on the env are :func:`runtimed.daemon.handout.hand_out`'s; the lease's
durability is the session's (``runtimed.daemon.session``). A take that empties the
pool starts the replacement build (through :meth:`runtimed.daemon.builder.Builder.carry_out`)
after its reply has gone out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runtimed.core.records import Lease
from runtimed.core.usage import UsageRecorder
from runtimed.daemon.handout import hand_out
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.runtime import BackendRuntime
from runtimed.protocol.messages import Empty, EnvReply, Error, PooledEnv, Take

__all__ = ["Taker"]

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
