"""``runtimed stop``: graceful over the socket, then SIGTERM, then SIGKILL."""

from __future__ import annotations

import argparse
import contextlib
import signal
import time
from typing import Any

import psutil

from runtimed.client import DaemonNotRunning
from runtimed.singleton import read_daemon_state

from ._util import client_from, paths_from


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "stop",
        parents=[common],
        help="stop the daemon",
        description="Ask the daemon to shut down; if it is still there after --timeout seconds send "
        "SIGTERM, then SIGKILL. Waits until the process is gone. Exits 0 if no daemon runs.",
    )
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="grace period per step")
    p.set_defaults(func=main)


def _gone(proc: psutil.Process) -> bool:
    try:
        # A zombie has exited; only its parent (not us) can reap it.
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(proc: psutil.Process | None, timeout: float) -> bool:
    if proc is None:
        return True
    deadline = time.monotonic() + timeout
    while not _gone(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def main(args: argparse.Namespace) -> int:
    paths = paths_from(args)
    proc = None
    pid = None
    try:
        with client_from(args) as client:
            pid = client.status().daemon.pid
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
            client.shutdown()
    except DaemonNotRunning:
        state = read_daemon_state(paths)
        pid = state.get("pid") if state else None
        if isinstance(pid, int):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
        if proc is None:
            print("runtimed is not running")
            return 0
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and proc is not None:
            print(f"runtimed (pid {pid}) did not stop; sending {sig.name}")
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        if _wait_gone(proc, args.timeout):
            print(f"runtimed stopped (pid {pid})")
            return 0
    print(f"runtimed (pid {pid}) is still running")
    return 1
