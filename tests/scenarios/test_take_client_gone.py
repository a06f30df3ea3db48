"""A take whose client has gone is not served (issue 10, item 8): a waiting take is
dropped when its connection closes, and the env built meanwhile stays in the pool."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from runtimed.envs.envdir import read_lease
from tests.support.daemon import DaemonProcess, raw_connect, wait_for
from tests.support.plugins import install_toys


def test_waiting_take_of_a_disconnected_client_is_not_served(
    daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    site = install_toys(tmp_path / "site", slow3="slow3")
    daemon = daemon_factory(
        config="[backends.uv]\npool_size = 0\n[backends.slow3]\npool_size = 1\n",
        env={"PYTHONPATH": str(site)},
    ).start()
    daemon.wait_pool("slow3", 1, timeout=60)
    with daemon.client() as c:
        first = c.take("slow3")  # empties the pool: a 3 s rebuild starts
    assert first is not None
    sock = raw_connect(daemon.socket)
    sock.sendall(json.dumps({"type": "take", "env_type": "slow3", "wait_s": 60}).encode() + b"\n")
    time.sleep(0.5)
    sock.close()  # the client gives up while its take waits
    status = daemon.wait_pool("slow3", 1, timeout=60)
    time.sleep(1.5)  # the waiting take wakes at least every second
    status = daemon.status()
    assert status.pools["slow3"].available == 1 and status.pools["slow3"].leased == 1  # only the first
    envs = [e for e in (daemon.cache_dir / "envs").iterdir() if read_lease(e) is None]
    assert len(envs) == 1 and (envs[0] / ".runtimed" / "manifest.json").exists()
    wait_for(lambda: "the client has gone" in daemon.output(), timeout=10, what="the dropped take logged")


def _ask_for_a_kernel_and_go(daemon: DaemonProcess, tmp_path: Path, after_s: float) -> None:
    sock = raw_connect(daemon.socket)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    request = {"type": "take_kernel", "env_type": "uv", "wait_s": 120, "cwd": str(tmp_path), "env": env,
               "owner_pid": os.getpid()}  # fmt: skip
    sock.sendall(json.dumps(request).encode() + b"\n")
    time.sleep(after_s)
    sock.close()


def _no_kernel_left(daemon: DaemonProcess) -> None:
    kernels = daemon.status().pools["uv"].kernels
    assert kernels is not None and kernels.handed_out == 0
    assert not list((daemon.cache_dir / "kernels").glob("*/record.json"))
    processes = [p for p in daemon.leftover_processes() if "ipykernel_launcher" in " ".join(p.cmdline())]
    assert not processes, processes


def _handed_out(daemon: DaemonProcess) -> int:
    kernels = daemon.status().pools["uv"].kernels
    assert kernels is not None
    return kernels.handed_out


def test_no_kernel_is_launched_for_a_client_that_has_gone(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    """The argv launcher gives up on a slow take and starts a plain kernel on the same
    ports: the daemon must not launch one for it afterwards (nor leave one running for
    its owner, who is alive)."""
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\nkernels = 0\n").start()
    _ask_for_a_kernel_and_go(daemon, tmp_path, after_s=0.2)  # the pool's first env is still building
    gone = "the client has gone"
    wait_for(lambda: gone in daemon.output() or _handed_out(daemon), timeout=120, what="the take to end")
    assert "take_kernel: the client has gone; no kernel launched for it" in daemon.output()
    assert "ending kernel" not in daemon.output()  # none was started
    _no_kernel_left(daemon)


def test_a_kernel_whose_client_went_while_it_started_is_ended(
    daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\nkernels = 0\n").start()
    daemon.wait_pool("uv", 1, timeout=120)
    _ask_for_a_kernel_and_go(daemon, tmp_path, after_s=0.05)  # a kernel takes over 0.1 s to start
    gone = "the client has gone"
    wait_for(lambda: gone in daemon.output() or _handed_out(daemon), timeout=120, what="the take to end")
    assert "launching a kernel" in daemon.output()
    assert "take_kernel: the client has gone; ending kernel" in daemon.output()
    _no_kernel_left(daemon)
