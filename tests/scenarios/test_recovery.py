"""Crash recovery with real uv envs and real SIGKILLs: the uv worker killed mid-build
20 times, the supervisor killed mid-warming 5 times. After each, the invariants hold:
(a) every env handed out is complete and imports ipykernel, (b) nothing is handed out
twice, (c) no orphan processes, (d) no partial dirs after recovery, (e) pools serve."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import psutil

from runtimed.envs.envdir import read_manifest
from tests.support.daemon import DaemonProcess, wait_for

PERMISSIVE = """
[supervision]
start_grace_s = 0.2
restart_base_s = 0.05
restart_cap_s = 0.2
max_restarts = 1000
"""


def _building_worker(daemon: DaemonProcess, handed_out: set[str]) -> int:
    """The uv worker's pid once it has a build's tool (uv or python) running under it.
    A full pool builds nothing: then take an env (recorded as handed out) to make it."""

    def check() -> int | None:
        pool = daemon.status().pools["uv"]
        if pool.worker is None or pool.worker.pid is None:
            return None
        if pool.warming == 0 and pool.available >= pool.target:
            with daemon.client() as c:
                env = c.take("uv")
            if env is not None:
                assert env.venv_path not in handed_out, "handed out twice"
                handed_out.add(env.venv_path)
            return None
        try:
            return pool.worker.pid if psutil.Process(pool.worker.pid).children() else None
        except psutil.Error:
            return None

    return wait_for(check, timeout=60, interval=0.05, what="a build in progress")


def _strays(daemon: DaemonProcess) -> list[psutil.Process]:
    """Processes under the cache dir that are not the daemon's current tree."""
    tree = {p.pid for p in daemon.process_tree()}
    return [p for p in daemon.leftover_processes() if p.pid not in tree]


def _assert_recovered(daemon: DaemonProcess, handed_out: set[str], size: int) -> None:
    status = daemon.wait_pool("uv", size, timeout=180)
    assert status.pools["uv"].warming == 0
    envs = list((daemon.cache_dir / "envs").iterdir())
    partial = [e for e in envs if read_manifest(e) is None]
    assert not partial, f"partial envs left after recovery: {partial}"
    wait_for(lambda: not _strays(daemon), timeout=15, what="no orphan processes")
    with daemon.client() as c:
        env = c.take("uv")
    assert env is not None and env.venv_path not in handed_out, "handed out twice"
    subprocess.run([env.python_path, "-c", "import ipykernel"], check=True)
    handed_out.add(env.venv_path)


def test_uv_worker_killed_mid_build_20_times(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 2\nconcurrency = 2\n" + PERMISSIVE).start()
    handed_out: set[str] = set()
    rng = random.Random(20)
    for _ in range(20):
        pid = _building_worker(daemon, handed_out)
        time.sleep(rng.uniform(0, 1.0))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda p=pid: daemon.status().pools["uv"].worker.pid not in (None, p), timeout=30, what="restart")  # type: ignore[union-attr]
    status = daemon.status()
    assert status.pools["uv"].worker.restarts >= 20  # type: ignore[union-attr]
    _assert_recovered(daemon, handed_out, 2)


def test_supervisor_killed_mid_warming_5_times(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 2\n" + PERMISSIVE)
    handed_out: set[str] = set()
    rng = random.Random(5)
    for round_ in range(5):
        daemon.start()
        if round_ % 2 == 1:
            # Take an env first: after the crash it must never be pooled again.
            with daemon.client() as c:
                env = c.take("uv", wait_s=120)
            assert env is not None and env.venv_path not in handed_out
            handed_out.add(env.venv_path)
        _building_worker(daemon, handed_out)
        time.sleep(rng.uniform(0, 2.0))  # land in different phases: venv, install, compile, warm-up
        daemon.kill()
        # Its worker and the worker's uv/python children notice and die with it.
        wait_for(lambda: not daemon.leftover_processes(), timeout=20, what="orphans of the killed supervisor to exit")
        assert daemon.socket.exists()  # stale, replaced by the next start
    daemon.start()
    _assert_recovered(daemon, handed_out, 2)
    # Envs leased before the crashes were never pooled: every take is new.
    with daemon.client() as c:
        more = [c.take("uv", wait_s=120) for _ in range(2)]
    assert all(e is not None and e.venv_path not in handed_out for e in more)
    assert all(Path(p).exists() for p in handed_out)  # their holder (this test) lives
