"""A runtimed "home" with no daemon and auto-start on, for tests of auto-start.

The test process's own ``RUNTIMED_*`` variables point at it (so in-process clients,
such as the kernel provisioner, resolve its paths), and every daemon started for
its cache dir, by whatever client, is stopped at the end and must leave nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.daemon import DaemonProcess


def daemon_processes(cache_dir: Path) -> list[psutil.Process]:
    """The live ``runtimed run`` processes (supervisors, not workers) of ``cache_dir``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        with contextlib.suppress(psutil.Error):
            cmd = proc.info["cmdline"] or []
            if "runtimed.cli" not in cmd or "run" not in cmd or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            env = proc.info["environ"] or {}
            if str(cache_dir) in cmd or env.get("RUNTIMED_CACHE_DIR") == str(cache_dir):
                found.append(proc)
    return found


class AutoStartHome(DaemonProcess):
    """A :class:`DaemonProcess` that the test never starts itself (clients do)."""

    def daemons(self) -> list[psutil.Process]:
        return daemon_processes(self.cache_dir)

    def log_text(self) -> str:
        try:
            return (self.cache_dir / "runtimed.log").read_text(errors="replace")
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Stop whatever daemon runs for this cache dir; fail on anything left behind."""
        self.run_cli("stop", timeout=60)
        leftovers = self.leftover_processes()
        for proc in leftovers:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        assert not leftovers, f"processes left behind: {leftovers}"


@contextlib.contextmanager
def autostart_home(
    base: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch, config: str = ""
) -> Iterator[AutoStartHome]:
    """An :class:`AutoStartHome` in ``base`` (uv pool of 1, no pre-started kernels unless
    ``config`` says otherwise), with this process's environment pointing at it."""
    base.mkdir(parents=True, exist_ok=True)
    home = AutoStartHome(
        base,
        config=config or "[backends.uv]\npool_size = 1\n",
        env={"UV_CACHE_DIR": str(uv_cache), "RUNTIMED_AUTO_START": "1"},
    )
    for name in ("RUNTIMED_CACHE_DIR", "RUNTIMED_CONFIG", "UV_CACHE_DIR", "RUNTIMED_AUTO_START"):
        monkeypatch.setenv(name, home.env[name])
    try:
        yield home
    finally:
        home.cleanup()
