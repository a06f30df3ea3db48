"""Who holds a handed-out env, and whether they still live (psutil)."""

from __future__ import annotations

import contextlib

import psutil

from runtimed.envs.envdir import Lease
from runtimed.util.files import now_iso

__all__ = ["holder_alive", "make_lease"]

# psutil derives create_time from boot time + start ticks: identical for one process.
_CREATE_TIME_SLACK_S = 0.5


def make_lease(pid: int | None, *, keep: bool = False) -> Lease:
    """A lease for ``pid``, with its create time so a reused pid is not mistaken for it."""
    create_time = None
    if pid:
        with contextlib.suppress(psutil.Error):
            create_time = psutil.Process(pid).create_time()
    return Lease(pid=pid, create_time=create_time, taken_at=now_iso(), keep=keep)


def holder_alive(lease: Lease) -> bool:
    """True while the process that took the env runs. A lease with no pid at all
    (unknown holder) counts as alive: runtimed never deletes what it cannot judge."""
    if lease.pid is None:
        return True
    if lease.create_time is None:
        return False  # the holder was already gone when it took the env
    try:
        proc = psutil.Process(lease.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - lease.create_time) < _CREATE_TIME_SLACK_S
    except psutil.Error:
        return False
