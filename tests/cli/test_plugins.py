"""``runtimed plugins list``: a broken plugin is listed as broken and breaks nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.daemon import DaemonProcess, runtimed_cmd
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
