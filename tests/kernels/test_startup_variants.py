"""Pre-started kernels follow the front ends' start-up environment: a Jupyter server
with its own JUPYTER_CONFIG_DIR gets a fallback once, then pre-started kernels;
two front ends that differ alternate through the kept variants; ``status``,
``stats`` and ``doctor`` say what was refused and why."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.kernels.test_provisioner import install_spec, wait_kernels
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.jupyter_server import JupyterServer
from tests.support.kernel import run_code, running_kernel

pytestmark = pytest.mark.slow  # a daemon, kernels, a Jupyter server

CONFIG = "[backends.uv]\npool_size = 2\nkernels = 1\npreimported = 0\n[daemon]\nlease_check_s = 0.3\n"
PROBE = "import os; print(os.environ.get('JUPYTER_CONFIG_DIR'), os.getpid())"


def handed_out(daemon: DaemonProcess) -> int:
    return (daemon.cache_dir / "runtimed.log").read_text().count("handed out pre-started kernel")


def test_a_jupyter_server_with_its_own_config_dir_gets_pre_started_kernels_after_the_first(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    install_spec(daemon, tmp_path, monkeypatch)
    wait_kernels(daemon)
    config_dir = tmp_path / "server-config"
    config_dir.mkdir()
    (tmp_path / "root").mkdir()
    server = JupyterServer(tmp_path / "root", {**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir)}).start()
    try:
        seen = []
        for n in range(3):
            if n:
                wait_kernels(daemon)  # the kernel started with the server's values
            session = server.request("POST", "/api/sessions", {"path": f"n{n}.ipynb", "type": "notebook",
                                                               "kernel": {"name": "rt"}})  # fmt: skip
            ws = server.kernel_socket(session["kernel"]["id"])
            config_seen, _pid = ws.execute(PROBE).split()
            ws.close()
            seen.append((config_seen, handed_out(daemon)))
        assert seen == [(str(config_dir), 0), (str(config_dir), 1), (str(config_dir), 2)]
    finally:
        server.stop()
    kernels = daemon.status().pools["uv"].kernels
    assert kernels is not None
    assert kernels.refused == {"startup_variable:JUPYTER_CONFIG_DIR": 1}
    assert kernels.recent == ["startup_variable:JUPYTER_CONFIG_DIR", "", ""]
    status = daemon.run_cli("status")
    assert "uv kernel requests not served pre-started: startup_variable:JUPYTER_CONFIG_DIR 1" in status.stdout
    stats = json.loads(daemon.run_cli("stats", "--json").stdout)
    assert stats["backends"]["uv"]["kernels"]["refused"] == {"startup_variable:JUPYTER_CONFIG_DIR": 1}


async def _open(name: str, pythonpath: str) -> str:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    async with running_kernel(name, env=env, now=True) as (km, kc):
        reply, out = await run_code(kc, "import os; print(os.environ['PYTHONPATH'])")
        assert reply["status"] == "ok" and out.strip() == pythonpath
        kernel = km.provisioner.kernel
        return "pre-started" if kernel is not None and kernel.prestarted else "fallback"


def test_two_front_ends_alternate_through_the_kept_variants_and_doctor_says_so(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    install_spec(daemon, tmp_path, monkeypatch)
    fronts = [str(tmp_path / "src-a"), str(tmp_path / "src-b")]

    def settled() -> bool:
        kernels = daemon.status().pools["uv"].kernels
        return kernels is not None and kernels.available == kernels.target and not kernels.starting

    def alternate(rounds: int) -> list[str]:
        served = []
        for n in range(rounds):
            wait_for(settled, 180, what="the kernels of the kept variants")
            served.append(asyncio.run(_open("rt", fronts[n % 2])))
        return served

    # One variant kept (the default): each front end pushes the other's kernels out.
    assert alternate(4) == ["fallback"] * 4
    doctor = daemon.run_cli("doctor")
    assert "kernel requests got no pre-started kernel: PYTHONPATH differs" in doctor.stdout, doctor.stdout
    assert "daemon.kernel_variants 2" in doctor.stdout
    # Two kept: once the first front end is seen again, both are served pre-started.
    daemon.write_config(CONFIG + "kernel_variants = 2\n")
    wait_for(lambda: "changed; reloading" in (daemon.cache_dir / "runtimed.log").read_text(), 60)
    assert alternate(6) == ["fallback", "pre-started", "pre-started", "pre-started", "pre-started", "pre-started"]
    assert daemon.status().pools["uv"].kernels.target == 2  # type: ignore[union-attr]
