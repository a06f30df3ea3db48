"""Warming an env (``runtimed.envs.warm``): the warm-up import must succeed, and proves it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from runtimed.envs.envdir import META_DIR
from runtimed.envs.warm import REPORT_FILE, WarmupFailed, warm_env


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    path = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(path), "platbase": str(path)}))
    (site / "rt_mod.py").write_text("VALUE = 42\n")
    return path


def test_a_failing_warm_up_import_fails_the_warm(venv: Path, tmp_path: Path) -> None:
    with pytest.raises(WarmupFailed, match="No module named 'rt_missing'"):
        warm_env(
            venv / "bin" / "python", venv, store=tmp_path / "store", modules=("rt_mod", "rt_missing"), env=os.environ
        )
    assert not (venv / META_DIR / REPORT_FILE).exists()


def test_warm_up_overlaps_a_small_compile_and_writes_no_bytecode_itself(venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    report = warm_env(venv / "bin" / "python", venv, store=tmp_path / "store", modules=("rt_mod",), env=env)
    # rt_mod.py has one link: compiled for this env, not published.
    assert (report.per_env, report.compiled, report.shared) == (1, 0, 0), report
    details = json.loads((venv / META_DIR / REPORT_FILE).read_text())
    assert details["timings_s"]["overlapped"] is True and details["mode"] == "per-env"
    pycs = list(venv.rglob("*.pyc"))
    assert [p.name for p in pycs] == [f"rt_mod.{sys.implementation.cache_tag}.pyc"]
    assert not list((tmp_path / "store").rglob("*.pyc"))
