"""PyPI packages with uv: finding uv, and ``uv pip install`` into any env's python
(a conda prefix's ``pip:`` list, a pixi workspace's ``[pypi-dependencies]``), offline
first. Re-exported by :mod:`runtimed.backend` for plugins: the one copy of both."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from runtimed.core.failure import BackendError, ErrorKind
from runtimed.envs.tools import clean_env
from runtimed.util.output import tail

__all__ = ["find_uv", "install_pypi"]

# What uv prints (lower-cased) when a requirement cannot be met, and when the index cannot be reached.
_INVALID = ("no solution found", "not found in the package registry", "because there is no version")
_NETWORK = ("failed to fetch", "dns error", "connection refused", "could not connect", "error sending request",
            "timed out")  # fmt: skip


def find_uv() -> str | None:
    """uv from the ``uv`` wheel (a dependency of runtimed), else from ``PATH``."""
    try:
        import uv

        path = uv.find_uv_bin()
        if path and os.path.exists(path):
            return str(path)
    except (ImportError, FileNotFoundError):
        pass
    return shutil.which("uv")


def install_pypi(
    python: Path,
    requirements: Sequence[str],
    *,
    no_deps: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> None:
    """Install PEP 508 ``requirements`` into the env of ``python`` with ``uv pip install``,
    offline first (the uv cache), then online; ``no_deps``: exactly these (from a lock).
    Raises :class:`BackendError`: ``invalid_package``, ``network``, ``tool_missing`` or
    ``setup_failed``, with the tail of uv's output."""
    if not requirements:
        return
    uv = find_uv()
    if uv is None:
        raise BackendError(ErrorKind.TOOL_MISSING, "uv not found: install the 'uv' package or put uv on PATH")
    command = [uv, "pip", "install", "--quiet", "--python", str(python), *(["--no-deps"] if no_deps else [])]
    command += list(requirements)
    progress(f"uv pip install --offline ({len(requirements)} PyPI packages)")
    if _run([*command, "--offline"]).returncode == 0:
        return
    progress(f"uv pip install ({len(requirements)} PyPI packages)")
    proc = _run(command)
    if proc.returncode != 0:
        raise _classify(proc.stderr + proc.stdout, proc.returncode)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = clean_env({"UV_NO_PROGRESS": "1"})
    return subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)


def _classify(output: str, returncode: int) -> BackendError:
    lowered = output.lower()
    message = f"uv pip install failed (exit {returncode}): {tail(output, 20)}"
    if any(marker in lowered for marker in _INVALID):
        return BackendError(ErrorKind.INVALID_PACKAGE, message)
    if any(marker in lowered for marker in _NETWORK):
        return BackendError(ErrorKind.NETWORK, message)
    return BackendError(ErrorKind.SETUP_FAILED, message)
