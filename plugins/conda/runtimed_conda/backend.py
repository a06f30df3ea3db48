"""Building conda prefixes at their final path with py-rattler: solve, install, warm.

The backend's cache directory (``<cache>/backends/conda``) holds

* ``repodata/``: rattler's repodata cache, used offline first (:mod:`runtimed_conda.solve`);
* ``pkgs/``: the extracted package cache. Envs hardlink their files from it (the
  envs live on the same file system), so each further env costs little more than
  its bytecode and the files rattler rewrote for its prefix.

rattler writes no ``.pyc`` files; the base :meth:`Backend.warm` gives the prefix's
stdlib and site-packages their bytecode (hardlinked from the shared store for
files hardlinked from ``pkgs/``, compiled per env for prefix-rewritten ones),
then imports ipykernel.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from runtimed.backend import (
    META_DIR,
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
    run_sync,
    write_json_atomic,
)
from runtimed_conda.errors import classify_error
from runtimed_conda.project import read_environment
from runtimed_conda.records import package_list
from runtimed_conda.solve import DEFAULT_REPODATA_TTL_S, RepodataCache, solve_specs
from runtimed_conda.specs import BASE_PACKAGES, channel_source, merge_specs, python_spec

__all__ = ["BUILD_INFO", "CondaBackend"]

#: Per-env build facts (channels, specs, repodata mode, timings), under ``.runtimed/``.
BUILD_INFO = "conda-build.json"


class CondaBackend(Backend):
    """conda envs from ``channels`` with py-rattler alone (no conda/mamba binary).

    ``repodata_ttl_s``: how long repodata fetched online is used offline before the
    channels are asked again (see :mod:`runtimed_conda.solve`).
    """

    name: ClassVar[str] = "conda"
    recipe_version: ClassVar[str] = "1"
    project_files: ClassVar[tuple[str, ...]] = ("environment.yml", "environment.yaml")
    base_packages: ClassVar[tuple[str, ...]] = BASE_PACKAGES

    def __init__(self, repodata_ttl_s: float = DEFAULT_REPODATA_TTL_S) -> None:
        self.repodata_ttl_s = repodata_ttl_s

    def availability(self) -> Availability:
        try:
            import rattler  # noqa: F401
        except ImportError as exc:
            return Availability(ok=False, reason=f"py-rattler cannot be imported: {exc}")
        from importlib.metadata import PackageNotFoundError, version

        try:
            detail = f"py-rattler {version('py-rattler')}"
        except PackageNotFoundError:
            detail = "py-rattler"
        return Availability(ok=True, detail=detail)

    def packages(self, config: BackendConfig) -> list[str]:
        """Match specs: ``python ipykernel ipywidgets``, then ``python=<python>`` and ``packages``.

        A configured spec naming a base package replaces it. With the channels and
        python (config fields) these make the spec hash.
        """
        configured = [python_spec(config.python)] if config.python else []
        return merge_specs(self.base_packages, [*configured, *config.packages])

    def create(self, request: BuildRequest) -> None:
        """Solve (offline first) and install into ``request.path``, hardlinking from the package cache."""

        if not request.config.channels:
            raise BackendError(ErrorKind.SETUP_FAILED, "no conda channels configured (set channels = [...])")
        specs = self.packages(request.config)
        _check_specs(specs)
        cache = RepodataCache(request.cache_dir / "repodata", self.repodata_ttl_s)
        request.phase(BuildPhase.INSTALLING)  # solving is part of it
        started = time.monotonic()
        solved = solve_specs(request.config.channels, specs, cache, request.progress)
        solved_at = time.monotonic()
        request.progress(f"installing {len(solved.records)} packages")
        _install(solved.records, request.path, request.cache_dir)
        info = {
            "channels": [channel_source(c) for c in request.config.channels],
            "specs": specs,
            "repodata": solved.mode,
            "timings_s": {
                "solve": round(solved_at - started, 3),
                "install": round(time.monotonic() - solved_at, 3),
            },
        }
        write_json_atomic(request.path / META_DIR / BUILD_INFO, info)

    def install_extras(self, request: ExtrasRequest) -> None:
        """Solve the env's specs plus the extras, keeping its installed records where
        it can (rattler's ``locked_packages``), and install the difference into the prefix;
        then ``pypi_packages`` (an ``environment.yml``'s ``pip:``) with uv.

        The extras' ``channels`` come after the pool's (which keep their priority)."""
        if request.packages or request.channels:
            self._install_conda_extras(request)
        if request.pypi_packages:
            install_pypi(self.python_path(request.path), request.pypi_packages, progress=request.progress)

    def read_project(self, file: Path) -> ProjectSpec | None:
        """``channels``, ``dependencies`` and its ``pip:`` list (:mod:`runtimed_conda.project`)."""
        return read_environment(file)

    def _install_conda_extras(self, request: ExtrasRequest) -> None:
        from rattler import PrefixRecord

        channels = [*request.config.channels, *(c for c in request.channels if c not in request.config.channels)]
        if not channels:
            raise BackendError(ErrorKind.SETUP_FAILED, "no conda channels configured (set channels = [...])")
        _check_specs(list(request.packages))
        specs = [*self.packages(request.config), *request.packages]
        installed = [PrefixRecord.from_path(p) for p in sorted((request.path / "conda-meta").glob("*.json"))]
        cache = RepodataCache(request.cache_dir / "repodata", self.repodata_ttl_s)
        solved = solve_specs(channels, specs, cache, request.progress, locked=installed)
        request.progress(f"installing into {len(installed)} installed packages")
        _install(solved.records, request.path, request.cache_dir, installed)

    def python_path(self, path: Path) -> Path:
        return path / "python.exe" if os.name == "nt" else path / "bin" / "python"

    def installed_packages(self, path: Path) -> list[str]:
        """``name==version`` of every conda package in the prefix (not just Python distributions)."""
        return package_list(conda_records(path))

    def activation(self, path: Path) -> dict[str, str]:
        """The variables conda activation sets, from py-rattler's activation API."""
        return conda_activation(path)

    def manifest_details(self, request: BuildRequest) -> dict[str, object]:
        """Channels, specs, how repodata was obtained, phase timings and the exact records."""
        return {**_read_build_info(request.path), "records": conda_records(request.path)}


def _check_specs(specs: list[str]) -> None:
    """Raise ``invalid_package`` naming the first spec rattler cannot parse."""
    from rattler import MatchSpec

    for spec in specs:
        try:
            MatchSpec(spec)
        except Exception as exc:
            raise BackendError(
                ErrorKind.INVALID_PACKAGE, f"invalid package spec {spec!r}: {exc}", package=spec
            ) from exc


def _read_build_info(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / META_DIR / BUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _install(records: Any, prefix: Path, cache_dir: Path, installed: Any = None) -> None:
    """Install solved ``records`` into ``prefix`` (``installed``: its records now, kept where they match)."""
    import rattler

    try:
        run_sync(
            rattler.install(
                records,
                target_prefix=prefix,
                cache_dir=cache_dir / "pkgs",
                installed_packages=installed,
                show_progress=False,
            )
        )
    except Exception as exc:
        raise classify_error(exc) from exc
