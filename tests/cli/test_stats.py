"""``runtimed stats`` and ``runtimed status --watch`` against a real daemon (toy backends)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for
from tests.support.plugins import install_toys

CONFIG = "[backends.quick]\npool_size = 2\n[backends.stuck]\npool_size = 1\n"


def toy_daemon(factory: type[DaemonProcess], tmp_path: Path) -> DaemonProcess:
    """``quick`` builds in milliseconds; ``stuck``'s build stays in its installing phase."""
    site = install_toys(tmp_path / "site", quick="", stuck="installing")
    return factory(config=CONFIG, env={"PYTHONPATH": str(site)})


def stats_json(daemon: DaemonProcess) -> dict[str, Any]:
    result = daemon.run_cli("stats", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_stats_count_takes_and_empty_replies_across_a_restart(
    daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    daemon = toy_daemon(daemon_factory, tmp_path).start()
    daemon.wait_pool("quick", 2)
    with daemon.client() as c:
        assert c.take("quick", keep=True) is not None
        assert c.take("quick", keep=True) is not None
        assert c.take("stuck") is None  # its env never gets built
        assert c.take("stuck", wait_s=0.3) is None  # waits, then empty
    stats = stats_json(daemon)
    quick, stuck = stats["backends"]["quick"], stats["backends"]["stuck"]
    assert (quick["takes"]["served"], quick["takes"]["empty"], quick["takes"]["waited"]) == (2, 0, 0)
    assert (stuck["takes"]["served"], stuck["takes"]["empty"], stuck["takes"]["waited"]) == (0, 2, 1)
    assert stuck["takes"]["wait_s"]["count"] == 1 and stuck["takes"]["wait_s"]["p50"] >= 0.3
    assert quick["builds"]["succeeded"] >= 2 and quick["builds"]["phases_s"]["creating"]["count"] >= 2
    assert quick["disk_bytes"] is not None and stats["daemon_running"] is True
    table = daemon.run_cli("stats")
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.startswith("stuck "))
    assert row.split()[1:4] == ["0", "2", "1"]

    assert daemon.stop() == 0
    saved = json.loads((daemon.cache_dir / "stats.json").read_text())
    assert saved["usage"]["backends"]["quick"]["takes"]["served"] == 2
    offline = daemon.run_cli("stats", "--json")  # no daemon: the saved counts, said so
    assert offline.returncode == 0 and "runtimed is not running" in offline.stderr
    assert json.loads(offline.stdout)["daemon_running"] is False

    daemon.start()
    with daemon.client() as c:
        assert c.take("quick", wait_s=30, keep=True) is not None
    after = stats_json(daemon)
    assert after["backends"]["quick"]["takes"]["served"] == 3  # counted on from the saved file
    assert after["backends"]["stuck"]["takes"]["empty"] == 2
    assert after["since"] == stats["since"]


def test_corrupt_stats_file_is_replaced_and_the_daemon_runs(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 0\n")
    daemon.cache_dir.mkdir(parents=True)
    (daemon.cache_dir / "stats.json").write_text("{garbage")
    daemon.start()
    assert stats_json(daemon)["daemon_running"] is True
    assert (daemon.cache_dir / "stats.json.corrupt").read_text() == "{garbage"
    assert "usage stats" in daemon.output() and "unusable" in daemon.output()


def test_stats_without_daemon_or_file_exits_1(tmp_path: Path) -> None:
    env = {**os.environ, "RUNTIMED_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("RUNTIMED_SOCKET", None)
    result = subprocess.run(runtimed_cmd("stats"), env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "runtimed is not running" in result.stderr


def test_build_phase_in_status_json_and_status_watch(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    daemon = toy_daemon(daemon_factory, tmp_path).start()

    def installing() -> dict[str, Any] | None:
        data = json.loads(daemon.run_cli("status", "--json").stdout)
        builds = data["pools"]["stuck"]["builds"]
        return builds[0] if builds and builds[0]["phase"] == "installing" else None

    build = wait_for(installing, timeout=60, what="the stuck build to report its installing phase")
    assert build["message"] == "toy install" and build["elapsed_s"] >= 0 and build["env_id"]
    later = wait_for(lambda: (b := installing()) and b["elapsed_s"] > build["elapsed_s"] and b, what="time to pass")
    assert later["phase_elapsed_s"] >= build["phase_elapsed_s"]

    watch = subprocess.Popen(
        runtimed_cmd("status", "--watch", "--interval", "0.2"),
        env=daemon.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        output = read_until(watch, lambda text: text.count("(Ctrl-C to stop)") >= 2, timeout=60)
        watch.send_signal(signal.SIGINT)
        rest, stderr = watch.communicate(timeout=20)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, stderr
    assert "Traceback" not in stderr and "\x1b[" not in output  # not a terminal: plain snapshots
    snapshot = output.split("\n\n")[0]
    row = next(line for line in (output + rest).splitlines() if line.startswith("stuck ") and "installing" in line)
    assert build["env_id"] in row and "toy install" in row
    assert "AVAILABLE" in snapshot


def read_until(proc: subprocess.Popen[str], done: Any, timeout: float) -> str:
    """Read ``proc``'s stdout until ``done(text)`` (without blocking past ``timeout``)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    text = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while not done(text):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"no expected output (exit {proc.poll()}): {text[-2000:]!r}")
            if sel.select(timeout=0.5):
                chunk = os.read(fd, 65536)
                text += chunk.decode(errors="replace")
    os.set_blocking(fd, True)
    return text


def test_a_real_uv_build_reports_every_phase(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    daemon.wait_pool("uv", 1)
    builds = stats_json(daemon)["backends"]["uv"]["builds"]
    assert builds["succeeded"] == 1 and builds["failed"] == 0
    phases = builds["phases_s"]
    assert set(phases) == {"creating", "installing", "compiling", "warming_up"}
    assert all(p["count"] == 1 and p["p50"] is not None for p in phases.values())
    assert sum(p["max"] for p in phases.values()) <= builds["total_s"]["max"] + 0.01
