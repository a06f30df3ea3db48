"""The pixi backend: conda envs and pixi workspaces built with py-rattler (no pixi binary).

* **Pool mode** (:meth:`PixiBackend.create`): a generic env from ``[backends.pixi]``'s
  ``channels`` and ``packages`` (plus ``python``, ``ipykernel``, ``ipywidgets``), solved
  and installed with rattler into the env's final path.
* **Projects** (:meth:`PixiBackend.read_project`, :meth:`PixiBackend.install_extras`
  with ``request.project`` set): a workspace installed into one of the pool's envs,
  exactly from its ``pixi.lock`` when there is one, else solved from the manifest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from runtimed.backend import (
    Availability,
    Backend,
    BackendConfig,
    BackendError,
    BuildPhase,
    BuildRequest,
    ErrorKind,
    ExtrasRequest,
    ProjectSpec,
    conda_activation,
    conda_records,
    install_pypi,
    list_distributions,
)
from runtimed_pixi import conda
from runtimed_pixi.manifest import LOCK_FILE, read_workspace

__all__ = ["KERNEL_PACKAGES", "PixiBackend", "merge_specs", "python_spec", "spec_name"]

#: What a kernel needs besides python: added to a ``pixi.lock`` that lacks them.
KERNEL_PACKAGES: tuple[str, ...] = ("ipykernel", "ipywidgets")
_NAME = re.compile(r"^\s*(?:[^\s:]+::)?([A-Za-z0-9_][A-Za-z0-9_.\-]*)")


class PixiBackend(Backend):
    """conda envs from channels, and pixi workspaces, with py-rattler and uv."""

    name: ClassVar[str] = "pixi"
    recipe_version: ClassVar[str] = "2"  # 1: built by the pixi binary, under .pixi/envs/default
    base_packages: ClassVar[tuple[str, ...]] = ("python", *KERNEL_PACKAGES)
    project_files: ClassVar[tuple[str, ...]] = ("pixi.toml", "pyproject.toml")

    def availability(self) -> Availability:
        from importlib.metadata import PackageNotFoundError, version

        try:
            import rattler  # noqa: F401

            detail = f"py-rattler {version('py-rattler')}"
        except (ImportError, PackageNotFoundError) as exc:
            return Availability(ok=False, reason=f"py-rattler cannot be imported: {exc}")
        return Availability(ok=True, detail=detail)

    def packages(self, config: BackendConfig) -> list[str]:
        """Match specs: the base packages, then ``python <python>`` and ``packages``
        (a configured spec naming a base package replaces it)."""
        configured = [python_spec(config.python)] if config.python else []
        return merge_specs(self.base_packages, [*configured, *config.packages])

    def create(self, request: BuildRequest) -> None:
        """Solve the pool's specs and install them at ``request.path``."""
        channels = _require_channels(request.config.channels)
        specs = self.packages(request.config)
        _check_specs(specs)
        request.phase(BuildPhase.INSTALLING)
        request.progress(f"solving {len(specs)} specs")
        records = conda.solve(channels, specs, request.cache_dir)
        request.progress(f"installing {len(records)} packages")
        conda.install(records, request.path, request.cache_dir)

    def read_project(self, file: Path) -> ProjectSpec | None:
        """The workspace ``file`` declares (see :mod:`runtimed_pixi.manifest`)."""
        return read_workspace(file)

    def install_extras(self, request: ExtrasRequest) -> None:
        """A workspace (``request.project``) or extra packages into the env at ``request.path``."""
        if request.project is not None and request.project.locked:
            self._install_locked(request, request.project)
            return
        channels, specs, pypi = self._wanted(request)
        _check_specs(specs)
        request.progress(f"solving {len(specs)} specs")
        installed = conda.prefix_records(request.path)
        records = conda.solve(channels, specs, request.cache_dir, locked=installed)
        conda.install(records, request.path, request.cache_dir)
        install_pypi(self.python_path(request.path), pypi, progress=request.progress)

    def _wanted(self, request: ExtrasRequest) -> tuple[list[str], list[str], list[str]]:
        """The channels, conda specs and PyPI requirements of an unlocked install: the
        workspace's (with the kernel's packages), or the pool's plus the request's."""
        project = request.project
        if project is not None:
            channels = _require_channels(project.channels or request.config.channels)
            specs = merge_specs(self.base_packages, [*project.packages, *request.packages])
            return channels, specs, _union(project.pypi_packages, request.pypi_packages)
        channels = _require_channels(_union(request.config.channels, request.channels))
        return channels, merge_specs(self.packages(request.config), request.packages), list(request.pypi_packages)

    def _install_locked(self, request: ExtrasRequest, project: ProjectSpec) -> None:
        """Exactly the locked packages; the kernel's packages and the request's extras
        (if the lock lacks them) are solved for with every locked record pinned."""
        try:
            lock = conda.locked_environment(project.file.parent / LOCK_FILE)
        except ValueError as exc:
            raise BackendError(ErrorKind.SETUP_FAILED, str(exc)) from exc
        added = [*(p for p in KERNEL_PACKAGES if p not in lock.conda_names), *_new(request.packages, project.packages)]
        records = list(lock.conda)
        if added:
            _check_specs(added)
            request.progress(f"adding {', '.join(added)} to the locked packages")
            channels = _require_channels(project.channels or request.config.channels)
            specs = [conda.record_spec(r) for r in lock.conda] + added
            records = conda.solve(channels, specs, request.cache_dir, pinned=lock.conda)
        request.progress(f"installing {len(records)} locked packages")
        conda.install(records, request.path, request.cache_dir)
        python = self.python_path(request.path)
        install_pypi(python, [p.requirement for p in lock.pypi], no_deps=True, progress=request.progress)
        install_pypi(python, _new(request.pypi_packages, project.pypi_packages), progress=request.progress)

    def python_path(self, path: Path) -> Path:
        return path / "python.exe" if os.name == "nt" else path / "bin" / "python"

    def installed_packages(self, path: Path) -> list[str]:
        """The conda packages, then the Python distributions installed from PyPI (not by conda)."""
        records = conda_records(path)
        names = {str(r["name"]) for r in records}
        pypi = [d for d in list_distributions(self.python_path(path)) if _canonical(d.split("==")[0]) not in names]
        return [f"{r['name']}=={r['version']}" for r in records] + pypi

    def activation(self, path: Path) -> dict[str, str]:
        return conda_activation(path)

    def manifest_details(self, request: BuildRequest) -> dict[str, object]:
        return {"channels": list(request.config.channels), "records": conda_records(request.path)}


def python_spec(python: str) -> str:
    """A configured python version as a match spec: ``3.12`` -> ``python=3.12`` (any 3.12.x),
    ``>=3.10`` -> ``python>=3.10``; a spec naming python is kept."""
    python = python.strip()
    if spec_name(python) == "python":
        return python
    return f"python={python}" if python[:1].isdigit() else f"python{python}"


def spec_name(spec: str) -> str:
    """The (lower-cased) package name of a match spec (``conda-forge::numpy >=2`` -> ``numpy``)."""
    match = _NAME.match(spec)
    return match.group(1).lower() if match else spec.strip()


def merge_specs(base: Iterable[str], configured: Sequence[str]) -> list[str]:
    """``base`` specs not named by a ``configured`` one, then ``configured``; duplicates dropped."""
    named = {spec_name(s) for s in configured}
    kept = [b for b in base if spec_name(b) not in named]
    return list(dict.fromkeys(s.strip() for s in (*kept, *configured)))


def _check_specs(specs: Sequence[str]) -> None:
    from rattler import MatchSpec

    for spec in specs:
        try:
            MatchSpec(spec)
        except Exception as exc:
            raise BackendError(
                ErrorKind.INVALID_PACKAGE, f"invalid package spec {spec!r}: {exc}", package=spec
            ) from exc


def _require_channels(channels: Sequence[str]) -> list[str]:
    if not channels:
        raise BackendError(ErrorKind.SETUP_FAILED, "no conda channels configured (set channels = [...])")
    return list(channels)


def _union(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


def _new(requested: Sequence[str], declared: Sequence[str]) -> list[str]:
    """The ``requested`` entries the project does not declare itself."""
    return [r for r in requested if r not in declared]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
