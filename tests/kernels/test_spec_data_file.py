"""Zero-touch: the runtimed kernelspec ships as a data file, so installing runtimed is
enough for the Jupyter of that env to list it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtimed.kernels.specs import kernel_spec

ROOT = Path(__file__).resolve().parents[2]
DATA_FILE = ROOT / "share" / "jupyter" / "kernels" / "runtimed-uv" / "kernel.json"
LIST_SPECS = "import json; from jupyter_client.kernelspec import KernelSpecManager as M; "
LIST_SPECS += "print(json.dumps(M().find_kernel_specs()))"


def test_the_data_file_is_the_portable_kernelspec() -> None:
    assert json.loads(DATA_FILE.read_text()) == kernel_spec("uv", portable=True)


def _source_copy(target: Path) -> Path:
    """What a wheel is built from (a build writes build/ and *.egg-info next to it)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, target / name)
    for name in ("runtimed", "share"):
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.mark.slow  # an install into a fresh venv
def test_a_fresh_venv_with_runtimed_lists_the_kernelspec(tmp_path: Path, uv_cache: Path) -> None:
    env = {**os.environ, "UV_CACHE_DIR": str(uv_cache), "JUPYTER_DATA_DIR": str(tmp_path / "user-data")}
    for name in ("JUPYTER_PATH", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    (tmp_path / "src").mkdir()
    source = _source_copy(tmp_path / "src")
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env, timeout=120)
    install = ["uv", "pip", "install", "-q", "--python", python, "--no-config", str(source), "jupyter_client"]
    subprocess.run(install, check=True, env=env, timeout=600, cwd=tmp_path)  # not editable: a wheel
    shipped = venv / "share" / "jupyter" / "kernels" / "runtimed-uv"
    assert json.loads((shipped / "kernel.json").read_text()) == kernel_spec("uv", portable=True)

    def specs(**extra: str) -> dict[str, str]:
        listed = subprocess.run([python, "-c", LIST_SPECS], env={**env, **extra}, cwd=tmp_path, capture_output=True,
                                text=True, check=False)  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        found: dict[str, str] = json.loads(listed.stdout)
        return found

    assert Path(specs()["runtimed-uv"]) == shipped
    helped = subprocess.run([python, "-m", "runtimed.envscripts.kernel_launcher", "--help"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert helped.returncode == 0 and "ipykernel_launcher" in helped.stdout, helped.stderr
    # A user-level `runtimed kernel install` of the same name: Jupyter's own order decides
    # (jupyter_core >= 5 prefers an active venv's data files unless JUPYTER_PREFER_ENV_PATH=0).
    runtimed = [python, "-m", "runtimed.cli", "kernel", "install"]
    subprocess.run(runtimed, env=env, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    assert Path(specs()["runtimed-uv"]) == shipped
    user = tmp_path / "user-data" / "kernels" / "runtimed-uv"
    assert Path(specs(JUPYTER_PREFER_ENV_PATH="0")["runtimed-uv"]) == user
