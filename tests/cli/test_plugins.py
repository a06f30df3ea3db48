"""``runtimed plugins list``: a broken plugin is listed as broken and breaks nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for
from tests.support.plugins import BROKEN_IMPORT, install_plugin, toy_backend


def _plugins_env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_lists_uv_active_and_broken_plugin_with_its_error(tmp_path: Path) -> None:
    site = install_plugin(tmp_path / "site", "broken", BROKEN_IMPORT)
    env = _plugins_env(site)
    result = subprocess.run(runtimed_cmd("plugins", "list", "--json"), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    by_name = {p["name"]: p for p in json.loads(result.stdout)}
    assert by_name["uv"]["status"] == "active"
    assert by_name["uv"]["distribution"] == "runtimed-uv"
    assert by_name["broken"]["status"] == "broken"
    assert "frobnicate" in by_name["broken"]["error"]
    table = subprocess.run(runtimed_cmd("plugins", "list"), env=env, capture_output=True, text=True)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "DISTRIBUTION", "VERSION", "STATUS"]
    assert any(line.startswith("broken") and "broken" in line.split()[3] for line in lines[1:])


def test_broken_plugin_does_not_stop_the_daemon(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    site = install_plugin(tmp_path / "site", "broken", BROKEN_IMPORT)
    install_plugin(site, "toy", toy_backend("toy"))
    daemon = daemon_factory(
        config="[backends.uv]\npool_size = 0\n[backends.broken]\npool_size = 1\n[backends.toy]\npool_size = 1\n",
        env={"PYTHONPATH": str(site)},
    ).start()
    daemon.wait_pool("toy", 1, timeout=30)
    status = daemon.status()
    assert status.pools["broken"].available == 0
    with daemon.client() as c:
        env = c.take("toy")
    assert env is not None and env.packages == ["toy==1.0"]


def _ambiguous_site(tmp_path: Path) -> Path:
    """``dup`` registered by two distributions; ``mismatch`` returns a backend named otherwise."""
    site = install_plugin(tmp_path / "site", "dup", toy_backend("dup"), distribution="runtimed-test-dup-a")
    install_plugin(site, "dup", toy_backend("dup"), distribution="runtimed-test-dup-b")
    install_plugin(site, "mismatch", toy_backend("not-mismatch"))
    install_plugin(site, "toy", toy_backend("toy"))
    return site


def test_duplicate_and_misnamed_backends_are_listed_broken(tmp_path: Path) -> None:
    env = _plugins_env(_ambiguous_site(tmp_path))
    result = subprocess.run(runtimed_cmd("plugins", "list", "--json"), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)
    dups = [p for p in reports if p["name"] == "dup"]
    assert sorted(p["distribution"] for p in dups) == ["runtimed-test-dup-a", "runtimed-test-dup-b"]
    for dup in dups:
        assert dup["status"] == "broken"
        assert "runtimed-test-dup-a" in dup["error"] and "runtimed-test-dup-b" in dup["error"]
    (mismatch,) = [p for p in reports if p["name"] == "mismatch"]
    assert mismatch["status"] == "broken" and "'not-mismatch'" in mismatch["error"]
    assert "entry-point name" in mismatch["error"]
    assert {p["name"]: p["status"] for p in reports}["toy"] == "active"


def test_daemon_serves_the_others_and_shows_the_ambiguous_ones(
    daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    site = _ambiguous_site(tmp_path)
    daemon = daemon_factory(
        config="[backends.uv]\npool_size = 0\n[backends.toy]\npool_size = 1\n[backends.mismatch]\npool_size = 1\n",
        env={"PYTHONPATH": str(site)},
    ).start()
    daemon.wait_pool("toy", 1, timeout=30)
    status = daemon.status()
    assert "dup" not in status.pools
    assert "runtimed-test-dup-a" in status.daemon.broken_plugins["dup"]
    wait_for(
        lambda: (e := daemon.status().pools["mismatch"].error) is not None and "not-mismatch" in e.message,
        timeout=30,
        what="the misnamed backend's load error in status",
    )
    assert daemon.status().pools["mismatch"].available == 0
    with daemon.client() as c:
        assert c.take("toy") is not None
