"""Start-up failures exit non-zero with one clear line and never hang, and leave no
worker behind, whatever fails (including after the workers are spawned)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

import pytest

from tests.support.daemon import DaemonProcess, runtimed_cmd

ONE_UV = "[backends.uv]\npool_size = 1\n"


def _run(daemon: DaemonProcess, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=timeout)
    assert time.monotonic() - started < 45, "start-up failure took too long to be reported"
    return result


def _one_clear_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("runtimed:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("name", ["daemon.json", "daemon.lock"])
def test_state_file_that_is_a_directory(daemon_factory: type[DaemonProcess], name: str) -> None:
    daemon = daemon_factory(config=ONE_UV)
    (daemon.cache_dir / name).mkdir(parents=True)
    result = _run(daemon)
    assert result.returncode == 1
    line = _one_clear_line(result.stderr)
    assert name in line and "not a regular file" in line
    assert (daemon.cache_dir / name).is_dir()  # left for the user to look at
    assert daemon.leftover_processes() == []


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ("[daemon]\nmax_connections = 2147483648\n", "max_connections"),
        ("[supervision]\nmemory_limit_mb = -1\n", "memory_limit_mb"),
        ("[daemon]\nlease_check_s = nan\n", "lease_check_s"),
    ],
)
def test_nonsense_numbers_are_config_errors(daemon_factory: type[DaemonProcess], config: str, key: str) -> None:
    daemon = daemon_factory(config=config)
    result = _run(daemon)
    assert result.returncode == 2
    line = _one_clear_line(result.stderr)
    assert key in line and str(daemon.config_file) in line


def test_failure_after_workers_spawned_stops_them_and_exits(daemon_factory: type[DaemonProcess]) -> None:
    """The socket dir is a read-only mount: it passes the checks, then bind() fails
    once the uv worker is already up."""
    daemon = daemon_factory(config=ONE_UV)
    sock_dir = daemon.base / "ro"
    sock_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,mode=0700", "tmpfs", str(sock_dir)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        daemon.env["RUNTIMED_SOCKET"] = str(sock_dir / "r.sock")
        result = _run(daemon)
        assert result.returncode == 1
        line = _one_clear_line(result.stderr)
        assert f"cannot listen on {sock_dir / 'r.sock'}: Read-only file system" in line
        log = (daemon.cache_dir / "runtimed.log").read_text()
        assert "Traceback" in log and "shutting down" in log  # the supervisor was stopped
        assert not (daemon.cache_dir / "daemon.json").exists()
        assert daemon.leftover_processes() == []
    finally:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", str(sock_dir)], check=True)


def test_socket_dir_that_is_a_file(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=ONE_UV)
    not_a_dir = daemon.base / "file"
    not_a_dir.write_text("x")
    daemon.env["RUNTIMED_SOCKET"] = str(not_a_dir / "r.sock")
    result = _run(daemon)
    assert result.returncode == 1
    line = _one_clear_line(result.stderr)
    assert str(not_a_dir) in line
    assert not_a_dir.read_text() == "x"
    assert os.path.isfile(not_a_dir)
