"""Finding a notebook's project: the project files above its directory, closest first.

The walk starts in the notebook's directory (or the kernel's cwd) and goes up to
the directory that holds ``.git`` (included), or to the file system's root; the
home directory and anything above it are never searched (a ``~/pyproject.toml`` is
no project of every notebook under home). Within one directory the candidates come
in the *tie order*: backends by name (``conda``, ``pixi``, ``uv``, ...), each
backend's files in its own ``project_files`` order. So ``environment.yml`` and
``pixi.toml`` (env files) come before ``pyproject.toml`` (often only a package's
metadata), and pixi reads a ``pyproject.toml`` before uv (pixi takes it only with a
``[tool.pixi]`` table). The first candidate its backend reads as a project wins.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path

from attrs import frozen

from runtimed.core.project import ProjectSpec

__all__ = ["Candidate", "find_candidates", "malformed_project_message", "untrusted_project_message"]


@frozen
class Candidate:
    """A file named by a backend's ``project_files``, found on the walk."""

    path: Path
    backend: str


def _directories(start: Path, home: Path | None) -> Iterator[Path]:
    here = start.absolute()
    home = home.absolute() if home is not None else None
    while True:
        if home is not None and (here == home or here in home.parents):
            return
        yield here
        if (here / ".git").exists() or here.parent == here:
            return
        here = here.parent


def _home() -> Path | None:
    try:
        return Path.home()
    except RuntimeError:  # no HOME and no passwd entry
        return None


def find_candidates(start: Path, claims: Sequence[tuple[str, str]], home: Path | None = None) -> list[Candidate]:
    """Every project file above ``start`` that a backend claims (``claims``: (backend,
    file name) pairs), closest directory first, in the tie order within a directory."""
    if home is None:
        home = _home()
    order = sorted(claims, key=lambda claim: claim[0])  # stable: each backend's own order kept
    found: list[Candidate] = []
    for directory in _directories(start, home):
        found += [Candidate(directory / name, backend) for backend, name in order if (directory / name).is_file()]
    return found


def untrusted_project_message(spec: ProjectSpec, backend: str) -> str:
    """What the notebook shows when its project's packages were not installed (not approved)."""
    listed = "\n".join(f"  {p}" for p in (*spec.packages, *spec.pypi_packages))
    return (
        f"runtimed: this notebook's project {spec.file} declares {backend} packages that were not "
        f"installed: nobody approved them. Not installed:\n{listed}\n"
        f"To approve them (installing runs their code), run in a terminal:\n"
        f"  runtimed trust {shlex.quote(str(spec.file))}\n"
        f"then restart the kernel."
    )


def malformed_project_message(file: Path, problem: str) -> str:
    """What the notebook shows when its project file cannot be read."""
    return (
        f"runtimed: this notebook's project file {file} could not be read: {problem}\n"
        "This kernel runs in a base env without the project's packages; fix the file, then restart the kernel."
    )
