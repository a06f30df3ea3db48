"""``runtimed stop`` signals only the process proven to be this cache dir's daemon
(it holds daemon.lock), never a pid read from a file; a stopped (SIGSTOP) daemon is
"not responding", not "not running"."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil

from tests.support.daemon import DaemonProcess, wait_for
from tests.support.plugins import install_toys

NO_POOLS = "[backends.uv]\npool_size = 0\n"


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "600"])


def test_stale_daemon_json_pointing_at_a_stranger(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS)
    stranger = _sleeper()
    try:
        daemon.cache_dir.mkdir(parents=True)
        state = {"pid": stranger.pid, "endpoint": str(daemon.socket), "version": "0", "protocol_version": 1}
        (daemon.cache_dir / "daemon.json").write_text(json.dumps(state))
        result = daemon.run_cli("stop", "--timeout", "1")
        assert result.returncode == 0, result.stderr
        assert "runtimed is not running (removed a stale daemon.json)" in result.stdout
        assert "sending" not in result.stdout
        time.sleep(0.5)
        assert stranger.poll() is None, "stop signalled a process that is not the daemon"
        assert not (daemon.cache_dir / "daemon.json").exists()
    finally:
        stranger.kill()
        stranger.wait(10)


def test_wrong_pid_in_daemon_json_stops_the_real_daemon_only(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    stranger = _sleeper()
    try:
        state = daemon.daemon_json()
        (daemon.cache_dir / "daemon.json").write_text(json.dumps({**state, "pid": stranger.pid}))
        daemon.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]  # so only signals can stop it
        result = daemon.run_cli("stop", "--timeout", "1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"runtimed stopped (pid {daemon.proc.pid})" in result.stdout  # type: ignore[union-attr]
        assert daemon.proc.wait(10) is not None  # type: ignore[union-attr]
        assert stranger.poll() is None
        # Its workers exit when their stdin closes; stop waits for them (or kills them).
        assert not daemon.leftover_processes()
        assert "killing it" not in result.stdout
    finally:
        stranger.kill()
        stranger.wait(10)


def test_a_killed_daemons_stuck_worker_is_killed(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    site = install_toys(tmp_path / "site", stuck="stuck_prepare")
    daemon = daemon_factory(config=NO_POOLS, env={"PYTHONPATH": str(site)}).start()
    [worker] = wait_for(lambda: _worker_pids(daemon, "stuck"), timeout=30, what="the stuck worker")
    daemon.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    result = daemon.run_cli("stop", "--timeout", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sending SIGKILL" in result.stdout
    assert f"runtimed worker (pid {worker}) did not exit; killing it" in result.stdout
    daemon.proc.wait(10)  # type: ignore[union-attr]
    assert not daemon.leftover_processes()


def _worker_pids(daemon: DaemonProcess, backend: str) -> list[int]:
    return [p.pid for p in daemon.leftover_processes() if backend in p.cmdline()]


def test_stopped_daemon_is_not_responding(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    pid = daemon.proc.pid  # type: ignore[union-attr]
    daemon.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        started = time.monotonic()
        ping = daemon.run_cli("ping")
        assert ping.returncode == 1
        assert "runtimed is not responding" in ping.stderr and "did not answer" in ping.stderr
        assert "not running" not in ping.stderr
        assert time.monotonic() - started < 30
        assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    finally:
        daemon.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    with daemon.client() as c:  # and answers again once continued
        assert c.ping().protocol_version == 1
