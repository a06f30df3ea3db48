"""Finding a notebook's project (closest first, the tie order, where the walk stops)
and reading the built-in project files (pyproject.toml with uv.lock, environment.yml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtimed.core.extras import WarmSet, superseded
from runtimed.core.project import ProjectSpec, project_key
from runtimed.deps.project import Candidate, find_candidates
from runtimed_conda.project import read_environment
from runtimed_uv.project import read_pyproject

CLAIMS = [("uv", "pyproject.toml"), ("conda", "environment.yml"), ("conda", "environment.yaml")]


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_closest_project_comes_first_in_the_tie_order(tmp_path: Path) -> None:
    top, inner = tmp_path / "repo", tmp_path / "repo" / "inner"
    (top / ".git").mkdir(parents=True)
    touch(top / "pyproject.toml")
    touch(inner / "pyproject.toml")
    touch(inner / "environment.yaml")
    touch(inner / "environment.yml")
    touch(tmp_path / "pyproject.toml")  # above the repository: never found
    found = find_candidates(inner / "notebooks" / "deep", CLAIMS, home=None)
    assert found == [
        Candidate(inner / "environment.yml", "conda"),  # backends by name, each in its own order
        Candidate(inner / "environment.yaml", "conda"),
        Candidate(inner / "pyproject.toml", "uv"),
        Candidate(top / "pyproject.toml", "uv"),
    ]


def test_the_walk_stops_below_the_home_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    touch(home / "pyproject.toml")
    touch(home / "work" / "nb" / "x.txt")
    assert find_candidates(home / "work" / "nb", CLAIMS, home=home) == []
    touch(home / "work" / "pyproject.toml")
    found = find_candidates(home / "work" / "nb", CLAIMS, home=home)
    assert found == [Candidate(home / "work" / "pyproject.toml", "uv")]


LOCK = """
version = 1
[[package]]
name = "demo"
version = "0"
source = { virtual = "." }
dependencies = [{ name = "click" }, { name = "six" }]
[package.metadata]
requires-dist = [{ name = "click" }, { name = "six", specifier = ">=1" }]
[package.dev-dependencies]
dev = [{ name = "idna" }]
[[package]]
name = "click"
version = "8.1.7"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "colorama", marker = "sys_platform == 'win32'" }]
[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
[[package]]
name = "six"
version = "1.15.0"
source = { registry = "https://pypi.org/simple" }
[[package]]
name = "idna"
version = "3.0"
source = { registry = "https://pypi.org/simple" }
"""
PYPROJECT = '[project]\nname = "demo"\nversion = "0"\nrequires-python = ">=3.10"\ndependencies = ["click", "six>=1"]\n'


def test_a_pyproject_with_its_lock_gives_exact_pins_with_markers(tmp_path: Path) -> None:
    file = touch(tmp_path / "pyproject.toml", PYPROJECT)
    unlocked = read_pyproject(file)
    assert unlocked is not None and unlocked.packages == ("click", "six>=1") and not unlocked.locked
    assert unlocked.python == ">=3.10" and unlocked.inputs == (file, tmp_path / "uv.lock")
    touch(tmp_path / "uv.lock", LOCK)
    locked = read_pyproject(file)
    assert locked is not None and locked.locked
    assert locked.packages == ("click==8.1.7", "colorama==0.4.6 ; (sys_platform == 'win32')", "six==1.15.0")
    assert project_key("uv", locked) != project_key("uv", unlocked.__class__(file=file, inputs=(file,)))


def test_requires_python_and_exclude_newer_are_applied_but_a_lock_pins_exactly(tmp_path: Path) -> None:
    file = touch(tmp_path / "pyproject.toml", PYPROJECT + '[tool.uv]\nexclude-newer = "2021-01-01T00:00:00Z"\n')
    spec = read_pyproject(file)
    assert spec is not None and spec.requires_python == ">=3.10" and spec.exclude_newer == "2021-01-01T00:00:00Z"
    touch(tmp_path / "uv.lock", LOCK)
    locked = read_pyproject(file)
    assert locked is not None and locked.locked and locked.exclude_newer is None
    assert locked.requires_python == ">=3.10"
    dated = touch(tmp_path / "d" / "pyproject.toml", PYPROJECT + "[tool.uv]\nexclude-newer = 2021-01-01T00:00:00Z\n")
    assert read_pyproject(dated).exclude_newer == "2021-01-01T00:00:00+00:00"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="exclude-newer"):
        read_pyproject(touch(tmp_path / "e" / "pyproject.toml", PYPROJECT + "[tool.uv]\nexclude-newer = 3\n"))


def test_a_stale_lock_is_not_used(tmp_path: Path) -> None:
    file = touch(tmp_path / "pyproject.toml", PYPROJECT.replace('"click", ', ""))
    touch(tmp_path / "uv.lock", LOCK)
    spec = read_pyproject(file)
    assert spec is not None and spec.packages == ("six>=1",) and not spec.locked


def test_pyproject_files_that_are_no_project_or_malformed(tmp_path: Path) -> None:
    assert read_pyproject(touch(tmp_path / "a" / "pyproject.toml", "[tool.ruff]\nline-length = 1\n")) is None
    with pytest.raises(ValueError, match="Expected"):
        read_pyproject(touch(tmp_path / "b" / "pyproject.toml", "[project\n"))
    with pytest.raises(ValueError, match="dependencies"):
        read_pyproject(touch(tmp_path / "c" / "pyproject.toml", '[project]\ndependencies = "six"\n'))


def test_an_environment_yml_with_a_pip_list(tmp_path: Path) -> None:
    text = "name: x\nchannels:\n  - conda-forge  # comment\ndependencies:\n  - python=3.11\n  - 'numpy >=1'\n"
    text += "  - pip\n  - pip:\n    - six\n    - idna>=3\n"
    spec = read_environment(touch(tmp_path / "environment.yml", text))
    assert spec.channels == ("conda-forge",) and spec.packages == ("python=3.11", "numpy >=1", "pip")
    assert spec.pypi_packages == ("six", "idna>=3") and spec.python == "=3.11"
    with pytest.raises(ValueError, match="YAML"):
        read_environment(touch(tmp_path / "bad" / "environment.yml", "dependencies: [a\n"))
    with pytest.raises(ValueError, match="neither"):
        read_environment(touch(tmp_path / "bad2" / "environment.yml", "dependencies:\n  - {conda: x}\n"))


def test_a_newer_set_of_a_project_supersedes_the_older_ones(tmp_path: Path) -> None:
    file = tmp_path / "pyproject.toml"
    old = WarmSet(key="old", packages=("six",), project=ProjectSpec(file=file))
    other = WarmSet(key="other", packages=("six",), project=ProjectSpec(file=tmp_path / "x" / "pyproject.toml"))
    plain = WarmSet(key="plain", packages=("six",))
    busy = WarmSet(key="busy", packages=("idna",), project=ProjectSpec(file=file), installing=True)
    new = WarmSet(key="new", packages=("six", "idna"), project=ProjectSpec(file=file))
    assert superseded([old, other, plain, busy, new], new) == [old]
    assert superseded([old, new], plain) == [] and superseded([old], None) == []
