"""Who holds a handed-out env, and whether they still live (psutil)."""

from __future__ import annotations

from runtimed.envs.envdir import Lease
from runtimed.util.files import now_iso
from runtimed.util.liveness import create_time_of, is_alive

__all__ = ["holder_alive", "make_lease"]


def make_lease(pid: int | None, *, keep: bool = False) -> Lease:
    """A lease for ``pid``, with its create time so a reused pid is not mistaken for it."""
    create_time = create_time_of(pid) if pid else None
    return Lease(pid=pid, create_time=create_time, taken_at=now_iso(), keep=keep)


def holder_alive(lease: Lease) -> bool:
    """True while the process that took the env runs. A lease with no pid at all
    (unknown holder) counts as alive: runtimed never deletes what it cannot judge."""
    if lease.pid is None:
        return True
    return is_alive(lease.pid, lease.create_time)  # no create time: gone when it took the env
