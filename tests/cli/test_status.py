"""``runtimed status``, ``ping`` and ``take`` from the command line."""

from __future__ import annotations

import json
import os
import subprocess

from tests.support.daemon import DaemonProcess, runtimed_cmd


def test_status_without_daemon_exits_1_with_a_clear_message() -> None:
    for command in ("status", "ping", "take"):
        result = subprocess.run(runtimed_cmd(command), env=os.environ, capture_output=True, text=True)
        assert result.returncode == 1, command
        assert "runtimed is not running" in result.stderr


def test_status_table_and_json(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    daemon.wait_pool("uv", 1)
    table = daemon.run_cli("status")
    assert table.returncode == 0
    header = next(line for line in table.stdout.splitlines() if line.startswith("BACKEND"))
    assert header.split() == ["BACKEND", "AVAILABLE", "WARMING", "LEASED", "KERNELS", "WORKER", "RSS", "LAST", "ERROR"]
    row = next(line for line in table.stdout.splitlines() if line.startswith("uv "))
    assert "1/1" in row and "running pid" in row and "MiB" in row
    data = json.loads(daemon.run_cli("status", "--json").stdout)
    assert data["pools"]["uv"]["available"] == 1
    assert data["pools"]["uv"]["worker"]["rss_bytes"] > 0
    assert data["daemon"]["pid"] == daemon.proc.pid  # type: ignore[union-attr]
    ping = daemon.run_cli("ping")
    assert ping.returncode == 0 and "protocol 1" in ping.stdout


def test_help_everywhere() -> None:
    for args in ([], ["run"], ["status"], ["stop"], ["ping"], ["take"], ["plugins"], ["plugins", "list"]):
        result = subprocess.run(runtimed_cmd(*args, "--help"), capture_output=True, text=True)
        assert result.returncode == 0 and "usage: runtimed" in result.stdout, args


def test_bad_config_is_reported_and_exits_2(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_sise = 1\n")
    result = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "pool_sise" in result.stderr and str(daemon.config_file) in result.stderr
