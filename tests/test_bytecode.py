"""Bytecode compilation of a prefix: complete, explicit, tolerant of non-Python-3 files."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from runtimed.bytecode import BytecodeError, compile_prefix, library_dirs


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A real venv: its site-packages lies inside it, its stdlib does not."""
    path = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def _site_packages(venv: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))


def test_only_library_dirs_inside_the_prefix_and_none_twice(venv: Path) -> None:
    # A venv's platstdlib is <venv>/lib/pythonX.Y, which holds its site-packages:
    # compiling both would compile site-packages twice. The stdlib is outside.
    dirs = library_dirs(venv / "bin" / "python", venv)
    assert dirs == [str(_site_packages(venv).parent)]


def test_compiles_everything_and_reports_files_that_do_not_compile(venv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # compilation is explicit anyway
    site = _site_packages(venv)
    (site / "pkg").mkdir()
    (site / "pkg" / "good.py").write_text("x = 1\n")
    (site / "pkg" / "py2_data.py").write_text('print "python 2"\n')
    failed = compile_prefix(venv / "bin" / "python", venv)
    assert failed == [str(site / "pkg" / "py2_data.py")]
    assert list((site / "pkg" / "__pycache__").glob("good.cpython-*.pyc"))


def test_a_python_that_cannot_run_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "bin" / "python"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(BytecodeError, match="exit 3"):
        compile_prefix(broken, tmp_path)
