"""One daemon per cache dir; clean exits; recovery from a killed daemon."""

from __future__ import annotations

import json
import signal
import subprocess

import psutil

from tests.support.daemon import DaemonProcess, runtimed_cmd

NO_POOLS = "[backends.uv]\npool_size = 0\n"


def test_second_daemon_says_so_and_exits_0(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    result = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    pid = daemon.daemon_json()["pid"]
    assert f"runtimed is already running (pid {pid}, socket {daemon.socket})" in result.stdout


def test_daemon_json_describes_the_daemon(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    info = daemon.daemon_json()
    assert info["pid"] == daemon.proc.pid  # type: ignore[union-attr]
    assert info["endpoint"] == str(daemon.socket)
    assert info["protocol_version"] == 1 and info["version"] and info["started_at"]


def test_stop_leaves_nothing_behind(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    worker_pid = daemon.status().pools["uv"].worker.pid  # type: ignore[union-attr]
    result = daemon.run_cli("stop")
    assert result.returncode == 0, result.stderr
    assert "stopped" in result.stdout
    assert daemon.proc.wait(10) == 0  # type: ignore[union-attr]
    assert not psutil.pid_exists(worker_pid) or psutil.Process(worker_pid).status() == psutil.STATUS_ZOMBIE
    assert not daemon.socket.exists()
    assert not (daemon.cache_dir / "daemon.json").exists()
    assert daemon.leftover_processes() == []
    # A partial env being built when we stopped was deleted too.
    envs = daemon.cache_dir / "envs"
    assert all((e / ".runtimed" / "manifest.json").exists() for e in envs.iterdir())
    assert daemon.run_cli("stop").returncode == 0  # stopping a stopped daemon is fine


def test_sigterm_is_a_clean_exit(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert daemon.proc.wait(15) == 0  # type: ignore[union-attr]
    assert not daemon.socket.exists() and not (daemon.cache_dir / "daemon.json").exists()


def test_stale_socket_of_a_killed_daemon_is_replaced(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    daemon.kill()
    assert daemon.socket.exists()  # left behind by SIGKILL
    daemon.start()
    with daemon.client() as c:
        assert c.ping().protocol_version == 1
    assert json.loads((daemon.cache_dir / "daemon.json").read_text())["pid"] == daemon.proc.pid  # type: ignore[union-attr]


def test_a_file_at_the_socket_path_is_never_removed(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS)
    daemon.socket.parent.mkdir(parents=True, exist_ok=True)
    daemon.socket.write_text("precious")
    result = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "not a socket" in result.stderr
    assert daemon.socket.read_text() == "precious"
