"""``runtimed trust``: approve, list, revoke, allow; clear errors and no traceback for user errors."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from runtimed.deps import DependencySpec, TrustStore, read_notebook_deps
from tests.deps.notebooks import PEP723, notebook, write
from tests.support.daemon import runtimed_cmd

CONDA = {"dependencies": ["numpy"], "channels": ["conda-forge"]}


@pytest.fixture
def trust(tmp_path: Path) -> object:
    env = {
        **os.environ,
        "RUNTIMED_TRUST_FILE": str(tmp_path / "conf" / "trust.json"),
        "RUNTIMED_CONFIG": str(tmp_path / "conf" / "config.toml"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            runtimed_cmd("trust", *args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    return run


def _store(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "conf" / "trust.json")


def _spec(path: Path) -> DependencySpec:
    spec, problem = read_notebook_deps(path)
    assert spec is not None, problem
    return spec


def test_trust_prints_the_dependencies_and_approves_them(trust: object, tmp_path: Path) -> None:
    assert callable(trust)
    nb = write(tmp_path / "a.ipynb", notebook(("code", PEP723)))
    result = trust("a.ipynb")
    assert result.returncode == 0, result.stderr
    assert "uv: httpx, six (python >=3.11)" in result.stdout
    assert _store(tmp_path).is_trusted(_spec(nb))
    assert stat.S_IMODE((tmp_path / "conf" / "trust.json").stat().st_mode) == 0o600
    listed = trust("--list")
    assert str(nb) in listed.stdout and _spec(nb).key[:12] in listed.stdout


def test_both_kinds_are_approved(trust: object, tmp_path: Path) -> None:
    assert callable(trust)
    nb = write(tmp_path / "a.ipynb", notebook(("code", PEP723), runt={"conda": CONDA}))
    assert trust(str(nb)).returncode == 0
    assert [a.summary.split(":")[0] for a in _store(tmp_path).approved()] == ["uv", "conda"]


def test_revoke_by_notebook_and_by_key(trust: object, tmp_path: Path) -> None:
    assert callable(trust)
    a = write(tmp_path / "a.ipynb", notebook(("code", PEP723)))
    b = write(tmp_path / "b.ipynb", notebook(runt={"conda": CONDA}))
    assert trust("a.ipynb", "b.ipynb").returncode == 0
    assert trust("--revoke", "a.ipynb").returncode == 0
    assert not _store(tmp_path).is_trusted(_spec(a))
    assert _store(tmp_path).is_trusted(_spec(b))
    assert trust("--revoke", _spec(b).key[:10]).returncode == 0
    assert not _store(tmp_path).is_trusted(_spec(b))
    again = trust("--revoke", _spec(b).key[:10])
    assert again.returncode == 1 and "no approval of" in again.stderr


def test_package_allowlist(trust: object, tmp_path: Path) -> None:
    assert callable(trust)
    nb = write(tmp_path / "a.ipynb", notebook(("code", PEP723)))
    result = trust("--package", "HTTPX", "--package", "six")
    assert result.returncode == 0, result.stderr
    assert _store(tmp_path).is_trusted(_spec(nb))
    assert "allowed packages: httpx, six" in trust("--list").stdout
    assert trust("--remove-package", "six").returncode == 0
    assert not _store(tmp_path).is_trusted(_spec(nb))


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "cannot read"),
        ("{nope", "not valid notebook JSON"),
        ('{"cells": [], "metadata": {}}', "declares no dependencies"),
        ('{"cells": [], "metadata": {"runt": {"uv": {"dependencies": "x"}}}}', "must be a list of strings"),
    ],
)
def test_user_errors_are_one_clear_line(trust: object, tmp_path: Path, content: str | None, error: str) -> None:
    assert callable(trust)
    if content is not None:
        (tmp_path / "a.ipynb").write_text(content)
    result = trust("a.ipynb")
    assert result.returncode == 1
    assert error in result.stderr and "a.ipynb" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "conf" / "trust.json").exists()


def test_a_damaged_store_is_one_clear_line(trust: object, tmp_path: Path) -> None:
    assert callable(trust)
    write(tmp_path / "a.ipynb", notebook(("code", PEP723)))
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "trust.json").write_text("{")
    result = trust("a.ipynb")
    assert result.returncode == 1
    assert "trust store" in result.stderr and "Traceback" not in result.stderr


def test_nothing_to_do_is_a_usage_error(trust: object) -> None:
    assert callable(trust)
    result = trust()
    assert result.returncode == 2 and "name a NOTEBOOK" in result.stderr


def test_says_when_the_check_is_off(trust: object, tmp_path: Path) -> None:
    assert callable(trust)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.toml").write_text("[daemon]\ntrust_notebooks = false\n")
    assert "every notebook is trusted" in trust("--list").stderr
