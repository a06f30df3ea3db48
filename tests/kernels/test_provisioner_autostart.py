"""The first kernel with no daemon starts one; the next kernel comes from its pool."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager

from runtimed.client import Client
from runtimed.kernels.specs import install, kernel_spec
from tests.support.autostart import AutoStartHome, autostart_home
from tests.support.daemon import wait_for
from tests.support.kernel import run_code

KERNELS = "[backends.uv]\npool_size = 1\nkernels = 1\n[daemon]\nlease_check_s = 0.3\n"


def install_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **config: Any) -> None:
    """A runtimed kernelspec ``rt`` resolving the daemon from RUNTIMED_* (as a user's does)."""
    spec = kernel_spec("uv", "rt")
    spec["metadata"]["kernel_provisioner"]["config"].update(config)  # type: ignore[index]
    install(tmp_path / "jupyter" / "kernels", "rt", spec)
    legacy = {"argv": [sys.executable, "-m", "runtimed.kernel", "-f", "{connection_file}"],
              "display_name": "legacy", "language": "python"}  # fmt: skip
    install(tmp_path / "jupyter" / "kernels", "legacy", legacy)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


async def start_and_run(name: str, code: str = "import sys; print(sys.prefix)") -> tuple[Any, str]:
    """Start kernel ``name``, run ``code``, shut it down; (the provisioner's kernel record, stdout)."""
    km = AsyncKernelManager(kernel_name=name)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=120)
        reply, out = await run_code(kc, code)
        assert reply["status"] == "ok", reply
        return getattr(km.provisioner, "kernel", None), out.strip()
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()


def wait_prestarted(home: AutoStartHome) -> None:
    def ready() -> bool:
        with Client(home.socket) as c:
            kernels = c.status().pools["uv"].kernels
        return kernels is not None and kernels.available >= 1

    wait_for(ready, timeout=240, what="a pre-started kernel in the auto-started daemon")


def test_first_kernel_starts_a_daemon_and_the_next_is_prestarted(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch, config=KERNELS) as home:
        install_specs(tmp_path, monkeypatch)
        caplog.set_level(logging.INFO)
        kernel, prefix = asyncio.run(start_and_run("rt"))
        # This kernel did not wait for the new daemon: the kernelspec's argv served it.
        assert kernel is None and prefix == sys.prefix
        started = [r.getMessage() for r in caplog.records if "started a daemon in the background" in r.getMessage()]
        assert len(started) == 1 and f"cache dir {home.cache_dir}" in started[0], caplog.text
        assert "auto-start is on (RUNTIMED_AUTO_START=1)" in started[0]
        (daemon,) = home.daemons()
        assert f"(pid {daemon.pid}," in started[0]
        assert daemon.cmdline()[daemon.cmdline().index("--cache-dir") + 1] == str(home.cache_dir)

        wait_prestarted(home)
        caplog.clear()
        kernel, prefix = asyncio.run(start_and_run("rt"))
        assert kernel is not None and kernel.prestarted, kernel
        assert prefix.startswith(str(home.cache_dir / "envs"))
        assert "started a daemon" not in caplog.text
        assert [p.pid for p in home.daemons()] == [daemon.pid]  # still the one daemon


def test_waiting_for_the_new_daemon_when_asked(tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch, config=KERNELS) as home:
        install_specs(tmp_path, monkeypatch, auto_start_wait_s=240.0)
        kernel, prefix = asyncio.run(start_and_run("rt"))
        assert kernel is not None  # served by the daemon it started
        assert prefix.startswith(str(home.cache_dir / "envs"))
        assert len(home.daemons()) == 1


def test_kernelspec_can_turn_auto_start_off(tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch) as home:
        install_specs(tmp_path, monkeypatch, auto_start=False)
        kernel, prefix = asyncio.run(start_and_run("rt"))
        assert kernel is None and prefix == sys.prefix
        assert not home.daemons() and not (home.cache_dir / "daemon.json").exists()


def test_legacy_launcher_starts_a_daemon_too(tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch) as home:
        install_specs(tmp_path, monkeypatch)
        _, out = asyncio.run(start_and_run("legacy", "import json, sys; print(json.dumps(sys.executable))"))
        assert json.loads(out) == sys.executable  # this kernel: this interpreter, at once
        wait_for(lambda: len(home.daemons()) == 1, timeout=60, what="the daemon the launcher started")
        wait_for(lambda: (home.cache_dir / "daemon.json").exists(), timeout=60, what="it to listen")
