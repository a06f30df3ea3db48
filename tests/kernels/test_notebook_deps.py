"""A notebook's own packages through the kernelspec, driven by nbclient: untrusted
(a base kernel that says which packages are missing and how to approve them), then
trusted (the packages importable), PEP 723 and nteract formats, an unknown package."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from tests.kernels.test_provisioner import install_spec, wait_kernels
from tests.support.conda_channel import ChannelServer, build_channel
from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for

pytestmark = pytest.mark.slow  # a daemon, kernels, installs from PyPI

CONFIG = "[backends.uv]\npool_size = 2\nkernels = 1\n[daemon]\nlease_check_s = 0.3\n"


def notebook(path: Path, cells: list[str], metadata: dict[str, Any] | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(metadata or {})
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)
    return path


def run(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Execute the notebook as papermill would (the notebook named in the kernel's env);
    every cell's outputs."""
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="rt", timeout=300, allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    client.execute()
    return [output for cell in nb.cells for output in cell.outputs]


def text(outputs: list[dict[str, Any]]) -> str:
    return "".join(o.get("text", "") + "".join(o.get("traceback", [])) for o in outputs)


@pytest.fixture
def daemon(daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DaemonProcess:
    started = daemon_factory(config=CONFIG).start()
    install_spec(started, tmp_path, monkeypatch)
    monkeypatch.setenv("RUNTIMED_CONFIG", str(started.config_file))  # the provisioner reads trust_notebooks
    monkeypatch.setenv("RUNTIMED_TRUST_FILE", str(tmp_path / "trust.json"))
    wait_kernels(started)
    return started


def trust(*args: str) -> None:
    """``runtimed trust`` as the user runs it (the same RUNTIMED_TRUST_FILE)."""
    result = subprocess.run(runtimed_cmd("trust", *args), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_an_nteract_notebook_untrusted_then_trusted(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = notebook(tmp_path / "six.ipynb", ["import six\nprint('six', six.PY3)"],
                    {"runt": {"uv": {"dependencies": ["six"]}}})  # fmt: skip
    untrusted = run(path, monkeypatch)
    assert untrusted[0]["output_type"] == "error" and untrusted[0]["ename"] == "ModuleNotFoundError"
    said = text(untrusted)
    assert "six" in said and f"runtimed trust {path}" in said, said
    trust(str(path))
    trusted = run(path, monkeypatch)
    assert text(trusted).strip() == "six True", trusted
    assert "launching a kernel with the notebook's packages (six)" in (daemon.cache_dir / "runtimed.log").read_text()


def test_a_pep_723_notebook_whose_packages_are_allowed(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell = '# /// script\n# dependencies = ["idna"]\n# ///\nimport idna\nprint(idna.encode("bücher.example").decode())'
    path = notebook(tmp_path / "idna.ipynb", [cell])
    trust("--package", "idna")
    assert text(run(path, monkeypatch)).strip() == "xn--bcher-kva.example"


def test_an_unknown_package_still_gives_a_kernel_that_says_why(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = "runtimed-test-no-such-package-4f1c"
    path = notebook(tmp_path / "broken.ipynb", [f"import {missing.replace('-', '_')}"],
                    {"runt": {"uv": {"dependencies": [missing]}}})  # fmt: skip
    trust(str(path))
    outputs = run(path, monkeypatch)
    said = text(outputs)
    assert outputs[0]["ename"] == "ModuleNotFoundError"
    assert "could not install this notebook's packages" in said and missing in said, said


def package_kernels(daemon: DaemonProcess, backend: str = "uv") -> int:
    kernels = daemon.status().pools[backend].kernels
    return kernels.package_sets if kernels is not None else 0


def test_the_second_open_gets_a_pre_started_kernel_of_the_set_and_a_restart_keeps_its_packages(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = notebook(tmp_path / "six.ipynb", ["import six\nprint('six', six.PY3)"],
                    {"runt": {"uv": {"dependencies": ["six"]}}})  # fmt: skip
    trust(str(path))
    assert text(run(path, monkeypatch)).strip() == "six True"
    wait_for(lambda: package_kernels(daemon) >= 1, timeout=120, what="a pre-started kernel of the set")
    log = daemon.cache_dir / "runtimed.log"
    assert "of the package set" not in log.read_text()
    km = KernelManager(kernel_name="rt")
    km.start_kernel(env={**os.environ, "JPY_SESSION_NAME": str(path)})
    try:
        assert "of the package set" in log.read_text()  # the second open: a pre-started kernel of the set
        for _ in range(2):  # and again after a restart, which keeps its packages
            assert execute(km, "import six; print('six', six.PY3)") == "six True"
            km.restart_kernel()
    finally:
        km.shutdown_kernel(now=True)


def execute(km: KernelManager, code: str) -> str:
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        said: list[str] = []
        reply = client.execute_interactive(
            code, timeout=60, output_hook=lambda m: said.append(m["content"].get("text", ""))
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(said).strip()
    finally:
        client.stop_channels()


def test_a_conda_notebook_gets_its_package_from_a_channel_over_http(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ChannelServer(build_channel()) as server:
        config = f"[backends.conda]\npool_size = 1\nkernels = 1\nchannels = [{json.dumps(server.url)}]\n"
        started = daemon_factory(config=config + "[backends.uv]\npool_size = 0\n").start()
        kernels = tmp_path / "jupyter" / "kernels"
        result = started.run_cli("kernel", "install", "--backend", "conda", "--name", "rt",
                                 "--kernels-dir", str(kernels), "--socket", str(started.socket))  # fmt: skip
        assert result.returncode == 0, result.stderr
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
        monkeypatch.setenv("RUNTIMED_CONFIG", str(started.config_file))
        monkeypatch.setenv("RUNTIMED_TRUST_FILE", str(tmp_path / "trust.json"))
        cell = "import os, sys\nprint(open(os.path.join(sys.prefix, 'share/rt-hello/hello.txt')).read())"
        conda = {"dependencies": ["rt-hello"], "channels": [server.url]}
        path = notebook(tmp_path / "hello.ipynb", [cell], {"runt": {"conda": conda}})
        trust(str(path))
        assert text(run(path, monkeypatch)).strip() == "hello from rt-hello"


def test_notebooks_written_by_juv_get_their_locked_or_stamped_versions(
    daemon: DaemonProcess, juv: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert callable(juv)
    locked, stamped = tmp_path / "locked.ipynb", tmp_path / "stamped.ipynb"
    for path, package in ((locked, "six<1.17"), (stamped, "six>=1.5")):
        juv("init", str(path))
        juv("add", str(path), package)
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell("import six\nprint(six.__version__)"))
        nbformat.write(nb, path)
    juv("lock", str(locked))  # six==1.16.0, exactly
    juv("stamp", str(stamped), "--timestamp", "2014-12-01T00:00:00Z")  # exclude-newer: six 1.8.0
    trust(str(locked), str(stamped))
    assert text(run(locked, monkeypatch)).strip() == "1.16.0"
    assert text(run(stamped, monkeypatch)).strip() == "1.8.0"


def test_a_launched_kernel_shows_the_notice_too(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = daemon_factory(config="[backends.uv]\npool_size = 1\nkernels = 0\n").start()  # no pre-started kernel
    install_spec(started, tmp_path, monkeypatch)
    monkeypatch.setenv("RUNTIMED_CONFIG", str(started.config_file))
    monkeypatch.setenv("RUNTIMED_TRUST_FILE", str(tmp_path / "trust.json"))
    started.wait_pool("uv", 1)
    path = notebook(tmp_path / "six.ipynb", ["import six"], {"runt": {"uv": {"dependencies": ["six"]}}})
    said = text(run(path, monkeypatch))
    assert "ModuleNotFoundError" in said and f"runtimed trust {path}" in said, said


def test_editing_the_dependencies_then_restarting_gives_the_new_set(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = notebook(tmp_path / "edit.ipynb", [], {"runt": {"uv": {"dependencies": ["six"]}}})
    trust(str(path))
    km = KernelManager(kernel_name="rt")
    km.start_kernel(env={**os.environ, "JPY_SESSION_NAME": str(path)})
    try:
        assert execute(km, "import six; print('six')") == "six"
        notebook(path, [], {"runt": {"uv": {"dependencies": ["six", "idna"]}}})  # edited and saved
        trust(str(path))
        km.restart_kernel()  # the provisioner reads the notebook again
        assert execute(km, "import six, idna; print('both')") == "both"
    finally:
        km.shutdown_kernel(now=True)
