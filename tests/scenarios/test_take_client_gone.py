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


def test_a_kernel_for_a_client_that_has_gone_is_ended(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    """The argv launcher gives up on a slow take and starts a plain kernel: the kernel
    the daemon launches afterwards must not run on for nobody (its owner is alive)."""
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\nkernels = 0\n").start()
    sock = raw_connect(daemon.socket)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    request = {"type": "take_kernel", "env_type": "uv", "wait_s": 120, "cwd": str(tmp_path), "env": env,
               "owner_pid": os.getpid()}  # fmt: skip
    sock.sendall(json.dumps(request).encode() + b"\n")
    time.sleep(0.2)  # the pool's first env is still building
    sock.close()

    def handed_out() -> int:
        kernels = daemon.status().pools["uv"].kernels
        assert kernels is not None
        return kernels.handed_out

    wait_for(lambda: "the client has gone" in daemon.output() or handed_out(), timeout=120, what="the take to end")
    assert handed_out() == 0
    assert "take_kernel: the client has gone; ending kernel" in daemon.output()
    assert not list((daemon.cache_dir / "kernels").glob("*/record.json"))
    kernels = [p for p in daemon.leftover_processes() if "ipykernel_launcher" in " ".join(p.cmdline())]
    assert not kernels, kernels
