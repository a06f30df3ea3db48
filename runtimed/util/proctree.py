"""Process trees: killing a worker with everything it started, describing how it exited."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import psutil

__all__ = [
    "WORKER_MODULES",
    "children",
    "describe_exit",
    "exited",
    "is_worker_of",
    "kill_process_tree",
    "kill_stale_workers",
]

log = logging.getLogger("runtimed.workers")


def kill_process_tree(pid: int, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to ``pid`` and all its descendants; returns how many got it."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.Error:
        return 0
    count = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)
            count += 1
    return count


def kill_stale_workers(backends_dir: Path) -> int:
    """Kill workers (and their trees) left by a previous supervisor of this cache dir.

    They would otherwise go on building into env dirs that startup is about to
    delete. Returns how many were found.
    """
    prefix = str(backends_dir) + os.sep
    found = 0
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if is_worker_of(cmd, prefix) and proc.pid != os.getpid():
            log.warning("killing worker pid %d left by a previous daemon", proc.pid)
            kill_process_tree(proc.pid)
            found += 1
    return found


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


async def exited(proc: asyncio.subprocess.Process) -> int:
    """The exit code, as soon as the process exits.

    ``proc.wait()`` alone is not enough: before Python 3.12 it also waits for the
    pipes to close, which a grandchild holding them can delay forever.
    """
    waiter = asyncio.ensure_future(proc.wait())
    try:
        while proc.returncode is None and not waiter.done():
            await asyncio.wait({waiter}, timeout=0.1)
    finally:
        waiter.cancel()
    assert proc.returncode is not None
    return proc.returncode


def children(pid: int) -> list[psutil.Process]:
    try:
        children: list[psutil.Process] = psutil.Process(pid).children(recursive=False)
        return children
    except psutil.Error:
        return []


#: A worker's module on its command line: today's, and the one earlier daemons ran.
WORKER_MODULES = frozenset({"runtimed.workers.child", "runtimed.worker"})


def is_worker_of(cmdline: list[str], backends_prefix: str) -> bool:
    """Is this command line a runtimed worker of the cache dir whose ``backends/`` is
    ``backends_prefix`` (with a trailing separator)?"""
    return not WORKER_MODULES.isdisjoint(cmdline) and any(arg.startswith(backends_prefix) for arg in cmdline)
