"""``runtimed stop`` signals only the process proven to be this cache dir's daemon
(it holds daemon.lock), never a pid read from a file; a stopped (SIGSTOP) daemon is
"not responding", not "not running"."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import psutil

from tests.support.daemon import DaemonProcess

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
    finally:
        stranger.kill()
        stranger.wait(10)


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
