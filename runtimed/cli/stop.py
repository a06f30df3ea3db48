"""``runtimed stop``: graceful over the socket, then SIGTERM, then SIGKILL.

Signals go only to a process proven to be this cache dir's daemon by its lock
(:func:`runtimed.util.singleton.find_daemon`), never to a pid read from a file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil

from runtimed.client import Client, DaemonNotRunning, DaemonUntrusted
from runtimed.util.paths import Paths
from runtimed.util.proctree import is_worker_of, kill_process_tree
from runtimed.util.singleton import find_daemon, remove_stale_state

from ._util import client_from, paths_from


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "stop",
        parents=[common],
        help="stop the daemon",
        description="Ask the daemon to shut down; if it is still there after --timeout seconds send "
        "SIGTERM, then SIGKILL. Waits until the process is gone (after a SIGKILL, also its workers, "
        "which are killed if they do not exit; kernels handed out live on). Signals go only to the process that "
        "holds this cache dir's daemon.lock. Exits 0 if no daemon runs (a stale daemon.json left by "
        "a killed daemon is removed).",
    )
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="grace period per step")
    p.set_defaults(func=main)


def _gone(proc: psutil.Process) -> bool:
    try:
        # A zombie has exited; only its parent (not us) can reap it.
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _socket_quiet(socket_path: Path, timeout: float) -> bool:
    """Wait until nothing answers on the socket."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with Client(socket_path, timeout=1.0) as client:
                client.ping()
        except DaemonNotRunning:
            return True
        time.sleep(0.1)
    return False


def main(args: argparse.Namespace) -> int:
    paths = paths_from(args)
    answered = False
    try:
        with client_from(args) as client:
            info = client.status().daemon
            # The socket may belong to another cache dir (--socket): prove by that one's lock.
            paths = Paths(cache_dir=Path(info.cache_dir), socket=paths.socket, config_file=paths.config_file)
            proc = find_daemon(paths)
            client.shutdown()
            answered = True
    except DaemonUntrusted:
        raise
    except DaemonNotRunning:  # not there, or not responding: then signals (to a proven daemon)
        proc = find_daemon(paths)
    if proc is None:
        if answered:
            quiet = _socket_quiet(paths.socket, args.timeout)
            print("runtimed stopped" if quiet else "runtimed is still answering")
            return 0 if quiet else 1
        stale = remove_stale_state(paths)
        print("runtimed is not running" + (" (removed a stale daemon.json)" if stale else ""))
        return 0
    pid = proc.pid
    workers: list[psutil.Process] = []
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            print(f"runtimed (pid {pid}) did not stop; sending {sig.name}")
            if sig == signal.SIGKILL:  # then it cannot stop its workers itself
                workers = _workers(proc, paths)
            # psutil refuses if the pid now belongs to another process (create time).
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        if _wait_gone(proc, args.timeout if sig != signal.SIGKILL else max(args.timeout, 5.0)):
            if workers:
                _end_orphans(workers, max(args.timeout, 5.0))
            print(f"runtimed stopped (pid {pid})")
            if sig == signal.SIGKILL:
                remove_stale_state(paths)
            return 0
    print(f"runtimed (pid {pid}) is still running")
    return 1


def _workers(proc: psutil.Process, paths: Paths) -> list[psutil.Process]:
    """The supervisor's worker processes (not its kernels: handed-out ones outlive it)."""
    prefix = str(paths.cache_dir / "backends") + os.sep
    found = []
    with contextlib.suppress(psutil.Error):
        for child in proc.children():
            with contextlib.suppress(psutil.Error):
                if is_worker_of(child.cmdline(), prefix):
                    found.append(child)
    return found


def _end_orphans(workers: list[psutil.Process], timeout: float) -> None:
    """A killed supervisor's workers exit when their stdin closes (after their start-up,
    which may take a while); wait for them, then kill the trees of those left."""
    deadline = time.monotonic() + timeout
    for p in workers:
        _wait_gone(p, max(0.0, deadline - time.monotonic()))
    for p in workers:
        if not _gone(p):
            print(f"runtimed worker (pid {p.pid}) did not exit; killing it")
            kill_process_tree(p.pid)
            _wait_gone(p, 5.0)
