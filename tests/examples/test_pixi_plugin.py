"""The example third-party plugin, installed as a real distribution into a temp dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.conda_channel import build_channel
from tests.support.daemon import DaemonProcess, runtimed_cmd
from tests.support.kernel import execute_in_kernel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "runtimed-plugin-pixi"


NO_PIXI_PATH = "/usr/bin:/bin"


def test_listed_as_active_without_a_pixi_binary(pixi_site: Path) -> None:
    assert shutil.which("pixi", path=NO_PIXI_PATH) is None
    env = {**os.environ, "PYTHONPATH": str(pixi_site), "PATH": NO_PIXI_PATH}
    result = subprocess.run(runtimed_cmd("plugins", "list", "--json"), env=env, capture_output=True, text=True)
    pixi = {p["name"]: p for p in json.loads(result.stdout)}["pixi"]
    assert pixi["distribution"] == "runtimed-plugin-pixi"
    assert pixi["status"] == "active" and pixi["error"] is None


def test_a_daemon_fills_the_pool_and_adds_packages_through_the_worker(
    daemon_factory: type[DaemonProcess], pixi_site: Path
) -> None:
    """A real daemon and pixi worker, no pixi binary: the pool's env from the local channel,
    then a take with an extra conda package (the worker's ``install_extras``), and a kernel."""
    channels = json.dumps([str(build_channel())])
    daemon = daemon_factory(
        config=f"[backends.uv]\npool_size = 0\n[backends.pixi]\npool_size = 1\nchannels = {channels}\n",
        env={"PYTHONPATH": str(pixi_site), "PATH": f"{Path(sys.executable).parent}:{NO_PIXI_PATH}"},
    ).start()
    daemon.wait_pool("pixi", 1, timeout=180)
    with daemon.client() as c:
        env = c.take("pixi", packages=["rt-hello"], wait_s=120)
    assert env is not None and env.env_type == "pixi"
    prefix = Path(env.venv_path)
    assert (prefix / "share" / "rt-hello" / "hello.txt").is_file() and "rt-hello==1.0.0" in env.packages
    assert execute_in_kernel(env.python_path, "import sys; sys.prefix")["result"].strip("'") == str(prefix)
