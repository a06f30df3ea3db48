"""Is this pid still the process it was? A pid is reused once its process ends, so a
process is named by its pid *and* its create time, and judged by both.

The semantics, decided once for every caller (env leases, kernels and their owners,
the daemon named in ``daemon.json``):

* a missing create time (``None``) means it could not be read when the process was
  recorded: the process was already gone then, so it is **not** the process now;
* a zombie has exited: not alive;
* the create times may differ by up to :data:`CREATE_TIME_SLACK_S` (psutil derives
  them from the boot time, which moves when the wall clock is stepped).
"""

from __future__ import annotations

import contextlib

import psutil

__all__ = ["CREATE_TIME_SLACK_S", "create_time_of", "is_alive", "running", "same_process"]

CREATE_TIME_SLACK_S = 1.0


def create_time_of(pid: int) -> float | None:
    """``pid``'s create time, or None if there is no such process (or it cannot be read)."""
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).create_time()
    return None


def running(pid: int) -> psutil.Process | None:
    """The process ``pid`` if it runs (is not a zombie), whichever it is: for a pid just
    read from a live source; a pid recorded earlier is judged by :func:`same_process`."""
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc
    except psutil.Error:
        return None


def same_process(pid: int, create_time: float | None) -> psutil.Process | None:
    """The running process ``pid`` if it is the one created at ``create_time``, else None."""
    if create_time is None:
        return None
    proc = running(pid)
    try:
        return proc if proc is not None and abs(proc.create_time() - create_time) <= CREATE_TIME_SLACK_S else None
    except psutil.Error:
        return None


def is_alive(pid: int, create_time: float | None) -> bool:
    """True while ``pid`` runs and is the process created at ``create_time`` (not a reuse)."""
    return same_process(pid, create_time) is not None
