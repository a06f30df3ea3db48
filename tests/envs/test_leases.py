"""Lease holders, judged with psutil for real: a dead or reused pid is not the holder."""

from __future__ import annotations

import os
import subprocess
import sys

import attrs

from runtimed.envs.envdir import Lease
from runtimed.envs.leases import holder_alive, make_lease


def test_live_then_dead_holder() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lease = make_lease(proc.pid)
        assert lease.create_time is not None and holder_alive(lease)
    finally:
        proc.kill()
        proc.wait()
    assert not holder_alive(lease)


def test_reused_pid_is_not_the_holder() -> None:
    lease = make_lease(os.getpid())
    assert holder_alive(lease)
    assert not holder_alive(attrs.evolve(lease, create_time=lease.create_time - 100))  # type: ignore[operator]


def test_unknown_holder_is_kept_and_vanished_holder_is_not() -> None:
    assert holder_alive(Lease(pid=None, create_time=None, taken_at=""))
    assert not holder_alive(Lease(pid=999_999_999, create_time=None, taken_at=""))
