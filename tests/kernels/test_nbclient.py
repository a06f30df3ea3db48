"""nbclient (what papermill runs) executing a real notebook on the runtimed kernelspec."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.kernels.test_provisioner import PRESTARTED, install_spec, wait_kernels
from tests.support.daemon import DaemonProcess, wait_for


def test_nbclient_runs_a_notebook_on_a_prestarted_kernel(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config=PRESTARTED).start()
    install_spec(daemon, tmp_path, monkeypatch)
    nb_dir = tmp_path / "project"
    nb_dir.mkdir()
    (nb_dir / "data.txt").write_text("relative file\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("print(open('data.txt').read().strip())"),
        nbformat.v4.new_code_cell("import ipywidgets\nprint(ipywidgets.IntSlider(value=3).value)"),
        nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"),
    ]
    path = nb_dir / "analysis.ipynb"
    nbformat.write(nb, path)
    wait_kernels(daemon)

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="rt", timeout=120, resources={"metadata": {"path": str(nb_dir)}}).execute()

    outputs = [cell.outputs[0]["text"].strip() for cell in nb.cells]
    assert outputs[:2] == ["relative file", "3"]
    assert [cell.execution_count for cell in nb.cells] == [1, 2, 3]
    env_path = outputs[2]
    assert env_path.startswith(str(daemon.cache_dir / "envs"))
    # nbclient's --HistoryManager.hist_file=:memory: is applied, not a reason for a slow start.
    assert "handed out pre-started kernel" in (daemon.cache_dir / "runtimed.log").read_text()
    wait_for(lambda: not Path(env_path).exists(), timeout=30, what="the kernel's env to be deleted")
