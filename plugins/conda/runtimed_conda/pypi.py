"""PyPI packages in a conda prefix (an ``environment.yml``'s ``pip:`` list), with uv.

``uv pip install --python <prefix>/bin/python``, offline first (the uv cache), then
online; uv comes from the ``uv`` wheel (a dependency of this plugin), else ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from runtimed.backend import BackendError, ErrorKind, clean_env, tail

__all__ = ["find_uv", "install_pypi"]

_NETWORK = ("Failed to fetch", "error sending request", "dns error", "Could not connect", "timed out")


def find_uv() -> str | None:
    try:
        import uv

        path = uv.find_uv_bin()
        if path and os.path.exists(path):
            return str(path)
    except (ImportError, FileNotFoundError):
        pass
    return shutil.which("uv")


def install_pypi(python: Path, requirements: Sequence[str], progress: Callable[[str], None]) -> None:
    """Install ``requirements`` into the prefix of ``python``; BackendError naming why not."""
    uv = find_uv()
    if uv is None:
        raise BackendError(ErrorKind.TOOL_MISSING, "uv not found: install the 'uv' package to install pip: packages")
    command = [uv, "pip", "install", "--quiet", "--python", str(python), *requirements]
    progress("uv pip install --offline (pip: packages)")
    if _run([*command, "--offline"]).returncode == 0:
        return
    progress("uv pip install (pip: packages, online)")
    proc = _run(command)
    if proc.returncode == 0:
        return
    output = proc.stderr + proc.stdout
    message = f"uv pip install of the pip: packages failed (exit {proc.returncode}): {tail(output, 12)}"
    if "No solution found" in output:
        raise BackendError(ErrorKind.INVALID_PACKAGE, message)
    if any(marker in output for marker in _NETWORK):
        raise BackendError(ErrorKind.NETWORK, message)
    raise BackendError(ErrorKind.SETUP_FAILED, message)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = clean_env({"UV_NO_PROGRESS": "1"})
    return subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
