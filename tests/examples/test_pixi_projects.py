"""A notebook in a pixi workspace, through the kernelspec and nbclient: the pixi plugin
(installed as a distribution, no pixi binary) serves the workspace's packages once the
workspace is trusted, from the local conda channel and PyPI; then with a pixi.lock,
exactly the locked versions; the second kernel of the workspace is a pre-started one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runtimed_pixi.conda import current_platform, solve
from tests.examples.pixi_lock import SIX_1_16, conda_entry, write_lock, write_manifest
from tests.examples.test_pixi_plugin import NO_PIXI_PATH
from tests.kernels.test_notebook_deps import notebook, package_kernels, run, text, trust
from tests.support.conda_channel import build_channel
from tests.support.daemon import DaemonProcess, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(current_platform() != "linux-64", reason="the test channel is linux-64"),
]

CELL = "import six, sys, pathlib\nprint(six.__version__, pathlib.Path(sys.prefix, 'share/rt-hello/hello.txt').exists())"


def test_a_pixi_workspace_without_then_with_a_lock(
    daemon_factory: type[DaemonProcess], pixi_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = str(build_channel())
    monkeypatch.setenv("PYTHONPATH", str(pixi_site))  # `runtimed trust` reads pixi.toml with the plugin
    monkeypatch.setenv("RUNTIMED_TRUST_FILE", str(tmp_path / "trust.json"))
    pixi = f"[backends.pixi]\npool_size = 1\nkernels = 1\nchannels = [{json.dumps(channel)}]\n"
    config = "[backends.uv]\npool_size = 0\n" + pixi
    path = f"{Path(sys.executable).parent}:{NO_PIXI_PATH}"
    env = {"PYTHONPATH": str(pixi_site), "PATH": path, "RUNTIMED_TRUST_FILE": str(tmp_path / "trust.json")}
    daemon = daemon_factory(config=config, env=env).start()
    kernels = tmp_path / "jupyter" / "kernels"
    installed = daemon.run_cli("kernel", "install", "--backend", "pixi", "--name", "rt",
                               "--kernels-dir", str(kernels), "--socket", str(daemon.socket))  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("RUNTIMED_CONFIG", str(daemon.config_file))
    daemon.wait_pool("pixi", 1, timeout=300)

    root = tmp_path / "ws"
    (root / ".git").mkdir(parents=True)
    manifest = write_manifest(root, f'[workspace]\nname = "demo"\nchannels = [{json.dumps(channel)}]\n'
                              'platforms = ["linux-64"]\n[dependencies]\nrt-hello = "*"\n'
                              '[pypi-dependencies]\nsix = "*"\n')  # fmt: skip
    nb = notebook(root / "a.ipynb", [CELL])
    said = text(run(nb, monkeypatch))
    assert "runtimed trust" in said, (daemon.cache_dir / "runtimed.log").read_text()[
        -6000:
    ]  # untrusted: a base kernel that says so
    trust(str(manifest))
    version, hello = text(run(nb, monkeypatch)).split()
    assert hello == "True" and version != SIX_1_16.version  # solved: the newest six

    wait_for(lambda: package_kernels(daemon, "pixi") >= 1, timeout=180, what="the workspace's pre-started kernel")
    log = daemon.cache_dir / "runtimed.log"
    assert text(run(notebook(root / "b.ipynb", [CELL]), monkeypatch)).split() == [version, "True"]
    assert "of the package set" in log.read_text()  # the workspace's second kernel: pre-started

    records = solve([channel], ["python", "ipykernel", "ipywidgets", "rt-hello"], tmp_path / "lock-solve")
    write_lock(root, [f"{channel}/"], [conda_entry(r) for r in records], [SIX_1_16])
    trust(str(manifest))  # the lock changed the workspace: approved again
    assert text(run(nb, monkeypatch)).split() == [SIX_1_16.version, "True"]  # exactly the locked six
