"""Bytecode compilation of a prefix: complete, explicit, tolerant of non-Python-3 files."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import runtimed.envs.bytecode as bytecode
from runtimed.envs.bytecode import BytecodeError, compile_prefix, library_dirs, probe_interpreter


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


def test_a_second_env_on_the_same_interpreter_is_not_probed_again(
    venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bytecode, "_LAYOUTS", {})
    probes: list[Path] = []
    real_probe = bytecode._probe

    def counting_probe(python: Path, prefix: Path, env: object) -> bytecode.Interpreter:
        probes.append(prefix)
        return real_probe(python, prefix, None)

    monkeypatch.setattr(bytecode, "_probe", counting_probe)
    other = tmp_path / "other"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(other)], check=True)
    first = probe_interpreter(venv / "bin" / "python", venv)
    second = probe_interpreter(other / "bin" / "python", other)
    assert probes == [venv]  # the layout was remembered
    assert second.dirs == (str(_site_packages(other).parent),)
    assert (second.cache_tag, second.magic) == (first.cache_tag, first.magic)
    # A prefix without the remembered dirs is asked again.
    for item in sorted(_site_packages(other).parent.parent.rglob("*"), reverse=True):
        item.rmdir() if item.is_dir() else item.unlink()
    probe_interpreter(other / "bin" / "python", other)
    assert probes == [venv, other]


def test_a_bare_prefix_does_not_leave_the_next_env_uncompiled(
    venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A python linked into a dir that holds none of its library dirs (a toy or broken
    env) probes as no dirs at all; remembered, every later env on that interpreter got
    no bytecode (two CI runs of the whole suite saw it)."""
    monkeypatch.setattr(bytecode, "_LAYOUTS", {})
    bare = tmp_path / "bare"
    (bare / "bin").mkdir(parents=True)
    (bare / "bin" / "python").symlink_to((venv / "bin" / "python").resolve())
    assert probe_interpreter(bare / "bin" / "python", bare).dirs == ()
    assert probe_interpreter(venv / "bin" / "python", venv).dirs == (str(_site_packages(venv).parent),)
