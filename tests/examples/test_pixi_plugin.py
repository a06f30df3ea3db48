"""The example third-party plugin, installed as a real distribution into a temp dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "runtimed-plugin-pixi"


@pytest.fixture(scope="module")
def pixi_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("pixi-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(EXAMPLE)],
        check=True,
    )  # fmt: skip
    return site


def test_listed_with_its_availability(pixi_site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(pixi_site), "PATH": "/usr/bin:/bin"}  # no pixi here
    result = subprocess.run(runtimed_cmd("plugins", "list", "--json"), env=env, capture_output=True, text=True)
    pixi = {p["name"]: p for p in json.loads(result.stdout)}["pixi"]
    assert pixi["distribution"] == "runtimed-plugin-pixi"
    assert pixi["status"] == "unavailable" and "pixi not found" in pixi["error"]


def test_daemon_reports_the_missing_tool(daemon_factory: type[DaemonProcess], pixi_site: Path) -> None:
    daemon = daemon_factory(
        config="[backends.uv]\npool_size = 0\n[backends.pixi]\npool_size = 1\n",
        env={"PYTHONPATH": str(pixi_site), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    ).start()
    error = wait_for(lambda: daemon.status().pools["pixi"].error, timeout=30, what="pixi's error")
    assert error.kind == "tool_missing" and "pixi" in error.message
