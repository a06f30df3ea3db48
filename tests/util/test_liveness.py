"""Is this pid still the process it was: one answer for leases, kernels, their owners
and the daemon (runtimed.util.liveness), judged with psutil on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from runtimed.envs.envdir import Lease
from runtimed.envs.leases import holder_alive
from runtimed.util.liveness import CREATE_TIME_SLACK_S, create_time_of, is_alive, running, same_process

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(SLEEP)
    yield proc
    proc.kill()
    proc.wait()


def _own_create_time() -> float:
    created = create_time_of(os.getpid())
    assert created is not None
    return created


def test_the_running_process_is_itself() -> None:
    created = _own_create_time()
    proc = same_process(os.getpid(), created)
    assert proc is not None and proc.pid == os.getpid()
    assert is_alive(os.getpid(), created)


def test_a_missing_create_time_is_never_the_process() -> None:
    """None: the create time could not be read when the process was recorded (it was
    gone already): not the process now, even though the pid runs."""
    assert not is_alive(os.getpid(), None)
    assert same_process(os.getpid(), None) is None


def test_create_times_within_the_slack_match_and_beyond_do_not() -> None:
    created = _own_create_time()
    assert is_alive(os.getpid(), created + CREATE_TIME_SLACK_S * 0.8)
    assert is_alive(os.getpid(), created - CREATE_TIME_SLACK_S * 0.8)
    assert not is_alive(os.getpid(), created + CREATE_TIME_SLACK_S + 0.1)
    assert not is_alive(os.getpid(), created - 100)  # a reused pid


def test_a_zombie_and_a_reaped_process_are_gone(child: subprocess.Popen[bytes]) -> None:
    created = create_time_of(child.pid)
    assert created is not None and is_alive(child.pid, created)
    child.kill()
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        os.sched_yield()
    assert not is_alive(child.pid, created)  # exited, not reaped: a zombie
    child.wait()
    assert not is_alive(child.pid, created)
    assert create_time_of(child.pid) is None


def test_a_lease_is_judged_by_the_same_rule() -> None:
    """Env leases used a tighter slack (0.5 s) than the daemon's own record (1 s)."""
    created = _own_create_time()
    shifted = created + CREATE_TIME_SLACK_S * 0.8
    assert holder_alive(Lease(pid=os.getpid(), create_time=shifted, taken_at="")) == is_alive(os.getpid(), shifted)
    assert holder_alive(Lease(pid=os.getpid(), create_time=shifted, taken_at=""))


def test_running_is_any_live_process_by_pid(child: subprocess.Popen[bytes]) -> None:
    """For a pid just read from a live source (no create time to compare)."""
    proc = running(child.pid)
    assert proc is not None and proc.pid == child.pid
    child.kill()
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        os.sched_yield()
    assert running(child.pid) is None  # a zombie has exited
