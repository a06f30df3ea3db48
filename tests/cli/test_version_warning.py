"""Every daemon-talking command warns once when the daemon's version or protocol differs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runtimed import __version__
from runtimed.protocol.messages import PROTOCOL_VERSION
from runtimed.protocol.version import mismatch
from tests.support.daemon import DaemonProcess, runtimed_cmd


def test_mismatch() -> None:
    assert mismatch(__version__, PROTOCOL_VERSION) is None
    assert "runtimed 9.9.9 (protocol 1)" in (mismatch("9.9.9", 1) or "")
    assert f"protocol {PROTOCOL_VERSION + 1}" in (mismatch(__version__, PROTOCOL_VERSION + 1) or "")


def _cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in daemon.env.items() if k != "PYTHONPATH"}  # this CLI is the real version
    return subprocess.run(runtimed_cmd(*args), env=env, capture_output=True, text=True, timeout=60)


def test_an_older_daemon_gets_one_warning_per_command(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    # The daemon believes it is runtimed 9.9.9: patched in before anything imports it.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import runtimed._version\nruntimed._version.__version__ = '9.9.9'\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    daemon = daemon_factory(env=env).start()
    with daemon.client() as client:
        assert client.ping().daemon_version == "9.9.9"
    expected = (
        f"runtimed: warning: the daemon runs runtimed 9.9.9 (protocol {PROTOCOL_VERSION}) but this is runtimed "
        f"{__version__} (protocol {PROTOCOL_VERSION}); restart it (`runtimed stop`, then `runtimed run` or "
        "`systemctl --user restart runtimed`)"
    )
    for command in [("status",), ("ping",), ("envs",), ("take", "uv"), ("flush",), ("gc",), ("stop",)]:
        result = _cli(daemon, *command)
        warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
        assert warnings == [expected], (command, result.stderr)


def test_a_matching_daemon_gets_no_warning(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory().start()
    result = _cli(daemon, "status")
    assert result.returncode == 0 and result.stderr == ""
