"""The I/O edge: the notebook from JPY_SESSION_NAME, and reading it never raises."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import runtimed.deps.notebook
from runtimed.deps import find_notebook, read_notebook_deps
from tests.deps.notebooks import PEP723, notebook, write


def test_an_absolute_session_name_is_the_notebook(tmp_path: Path) -> None:
    assert find_notebook(str(tmp_path / "a.ipynb"), "/elsewhere") == tmp_path / "a.ipynb"


def test_a_relative_session_name_is_resolved_against_the_kernels_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "a.ipynb", notebook())
    assert find_notebook("sub/a.ipynb", tmp_path) == tmp_path / "sub" / "a.ipynb"
    assert find_notebook("b.ipynb", tmp_path) == tmp_path / "b.ipynb"  # not there: read_notebook_deps says so


def test_an_api_path_with_the_kernel_already_in_the_notebooks_dir(tmp_path: Path) -> None:
    """jupyter_server without a file name sets the path relative to its root, and
    starts the kernel in the notebook's directory."""
    write(tmp_path / "a.ipynb", notebook())
    assert find_notebook("sub/a.ipynb", tmp_path) == tmp_path / "a.ipynb"


@pytest.mark.parametrize("name", [None, "", "console-1-abc", "script.py"])
def test_no_notebook_without_a_notebook_session_name(name: str | None) -> None:
    assert find_notebook(name, "/tmp") is None


def test_a_notebook_with_dependencies(tmp_path: Path) -> None:
    spec, problem = read_notebook_deps(write(tmp_path / "a.ipynb", notebook(("code", PEP723))))
    assert problem is None
    assert spec is not None and spec.packages == ("httpx", "six")


def test_a_notebook_without_dependencies_is_no_problem(tmp_path: Path) -> None:
    assert read_notebook_deps(write(tmp_path / "a.ipynb", notebook(("code", "1")))) == (None, None)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read"),
        ("{", "not valid notebook JSON"),
        ("[1, 2]", "not a notebook"),
        ('{"metadata": {"runt": {"uv": {"dependencies": [1]}}}}', "invalid dependencies"),
        ('{"metadata": [], "cells": []}', "invalid dependencies"),
        ('{"metadata": {"runt": {"uv": {"dependencies": ["==1"]}}}}', "not a requirement"),
        ("[" * 100_000 + "]" * 100_000, "not valid notebook JSON"),
        ('{"cells": {"a": 1}}', "invalid dependencies"),
    ],
)
def test_a_bad_file_gives_none_and_the_reason(tmp_path: Path, content: str | None, reason: str) -> None:
    path = tmp_path / "a.ipynb"
    if content is not None:
        path.write_text(content)
    spec, problem = read_notebook_deps(path)
    assert spec is None
    assert problem is not None and reason in problem and str(path) in problem


def test_an_unreadable_file_gives_the_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "a.ipynb", notebook(("code", PEP723)))
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("root's permission bypass is on (run as CI does, with setpriv)")
    assert read_notebook_deps(path) == (None, f"cannot read {path}: Permission denied")


def test_a_huge_notebook_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.ipynb", notebook(("code", PEP723)))
    monkeypatch.setattr(runtimed.deps.notebook, "MAX_NOTEBOOK_BYTES", path.stat().st_size - 1)
    spec, problem = read_notebook_deps(path)
    assert spec is None and problem is not None and "larger than" in problem
