"""``runtimed trust FILE`` for a project file (``pyproject.toml``, ``environment.yml``, ...).

The file is read by the installed backend plugins that name it in their
``project_files`` (loaded here, in the command's process), in the daemon's tie order
(backends by name): the first that reads it as a project decides what is printed and
approved. The approval is keyed by :func:`runtimed.core.project.project_key` (the
backend, the file's path, the bytes of the file and its lock), exactly the key the
daemon checks: editing the file or its lock needs a new approval.
"""

from __future__ import annotations

import sys
from pathlib import Path

from attrs import frozen

from runtimed.core.project import ProjectSpec, project_key
from runtimed.deps import TrustStore
from runtimed.envs.plugins import PluginLoadError, discover_plugins, load_backend

__all__ = ["ProjectRead", "approve_project", "is_project_file", "read_project", "revoke_project"]


@frozen
class ProjectRead:
    backend: str
    spec: ProjectSpec
    key: str


def _claimants(name: str) -> list[str]:
    found = []
    for backend in sorted(discover_plugins()):
        try:
            if name in load_backend(backend).project_files:
                found.append(backend)
        except PluginLoadError:
            continue
    return found


def is_project_file(path: Path) -> bool:
    return path.suffix != ".ipynb" and bool(_claimants(path.name))


def read_project(path: Path) -> ProjectRead | str:
    """The project ``path`` declares, or why none (not a project, malformed)."""
    path = path.absolute()
    for backend in _claimants(path.name):
        try:
            spec = load_backend(backend).read_project(path)
        except (ValueError, OSError) as exc:
            return f"{path} could not be read ({backend}): {exc}"
        if spec is not None:
            return ProjectRead(backend, spec, project_key(backend, spec))
    return f"{path} is not a project any backend reads (e.g. a pyproject.toml without [project])"


def approve_project(store: TrustStore, path: Path) -> bool:
    """Print what the project declares and approve it; True when that failed."""
    read = read_project(path)
    if isinstance(read, str):
        print(f"runtimed: {read}", file=sys.stderr)
        return True
    print(f"{read.spec.file} ({read.backend} project):")
    print(f"  {read.spec.describe()}")
    approval = store.approve_key(read.key, f"{read.backend} project: {read.spec.describe()}", read.spec.file)
    print(f"  approved (key {approval.key[:12]})")
    return False


def revoke_project(store: TrustStore, path: Path) -> bool:
    """Forget the approval of the project as it is now; True when there was none."""
    read = read_project(path)
    if isinstance(read, str):
        print(f"runtimed: {read}", file=sys.stderr)
        return True
    removed = store.revoke(read.key)
    for approval in removed:
        print(f"revoked {approval.key[:12]}  {approval.summary}")
    if not removed:
        print(f"runtimed: no approval of {path} to revoke (see `runtimed trust --list`)", file=sys.stderr)
    return not removed
