"""Building uv virtualenvs at their final path, offline first."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

from runtimed.backend import (
    Availability,
    Backend,
    BackendError,
    BuildPhase,
    BuildRequest,
    ErrorKind,
    ExtrasRequest,
    ProjectSpec,
    clean_env,
    find_uv,
    repair_once,
)
from runtimed_uv.errors import classify_uv_error
from runtimed_uv.project import read_pyproject

__all__ = ["UvBackend", "find_uv"]

log = logging.getLogger("runtimed_uv")


class UvBackend(Backend):
    """``uv venv`` + ``uv pip install``, trying ``--offline`` first; warm() compiles bytecode."""

    name: ClassVar[str] = "uv"
    recipe_version: ClassVar[str] = "1"
    project_files: ClassVar[tuple[str, ...]] = ("pyproject.toml",)

    def __init__(self) -> None:
        self._uv = find_uv()

    def availability(self) -> Availability:
        if self._uv is None:
            return Availability(ok=False, reason="uv not found: install the 'uv' package or put uv on PATH")
        return Availability(ok=True, detail=self._uv)

    def prepare(self, cache_dir: Path) -> None:
        """Give the directories of the uv cache that an earlier runtimed left unenterable
        (``drw-------``, its workers' umask) their search bits back, once per uv cache."""
        if self._uv is None:
            return
        proc = self._uv_run(["cache", "dir"])
        if proc.returncode != 0 or not proc.stdout.strip():
            log.warning("uv cache dir failed: %s", proc.stderr.strip())
            return
        result = repair_once(Path(proc.stdout.strip()), stamp_dir=cache_dir)
        if result is not None and (result.repaired or result.errors):
            log.warning("uv cache %s", result.summary())

    def _uv_run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        if self._uv is None:
            raise BackendError(ErrorKind.TOOL_MISSING, "uv not found")
        return subprocess.run(
            [self._uv, *args],
            env=clean_env({"UV_NO_PROGRESS": "1"}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )

    def _check(self, proc: subprocess.CompletedProcess[str]) -> None:
        if proc.returncode != 0:
            raise classify_uv_error(proc.stderr + proc.stdout, proc.returncode)

    def create(self, request: BuildRequest) -> None:
        python = request.config.python or sys.executable
        request.progress(f"uv venv --python {python}")
        self._check(self._uv_run(["venv", "--quiet", "--no-project", "--python", python, str(request.path)]))
        target = str(self.python_path(request.path))
        # No --compile-bytecode: warm() links each file's .pyc from the shared bytecode
        # store and compiles only what the store lacks (uv would compile every file).
        install = ["pip", "install", "--quiet", "--python", target, *self.packages(request.config)]
        request.phase(BuildPhase.INSTALLING)
        request.progress("uv pip install --offline")
        offline = self._uv_run([*install, "--offline"])
        if offline.returncode == 0:
            return
        # A cold cache (or a new package): go online. A bad spec fails the same way online.
        request.progress("uv pip install (online)")
        self._check(self._uv_run(install))

    def install_extras(self, request: ExtrasRequest) -> None:
        """``uv pip install`` the extras into the venv, offline first, then online."""
        if request.channels:
            raise BackendError(ErrorKind.INVALID_PACKAGE, "uv envs take no conda channels")
        target = str(self.python_path(request.path))
        install = ["pip", "install", "--quiet", "--python", target, *request.packages]
        if request.exclude_newer:
            install += ["--exclude-newer", request.exclude_newer]
        request.progress("uv pip install --offline (extras)")
        if self._uv_run([*install, "--offline"]).returncode == 0:
            return
        request.progress("uv pip install (extras, online)")
        self._check(self._uv_run(install))

    def read_project(self, file: Path) -> ProjectSpec | None:
        """``[project] dependencies`` and ``requires-python``; the pins of a current
        ``uv.lock`` beside it (:mod:`runtimed_uv.project`)."""
        return read_pyproject(file)

    def activation(self, path: Path) -> dict[str, str]:
        """What ``source bin/activate`` sets."""
        return {"VIRTUAL_ENV": str(path), "PATH": str(path / "bin")}
