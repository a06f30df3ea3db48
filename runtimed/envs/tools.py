"""Running a backend's tools: a clean environment and a command runner that classifies failures."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from runtimed.core.failure import BackendError, ErrorKind
from runtimed.util.output import tail

__all__ = ["clean_env", "run_command"]

_ENV_LEAKS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONSTARTUP")


def clean_env(extra: Mapping[str, str] | None = None, *, write_bytecode: bool = False) -> dict[str, str]:
    """The worker's environment without variables that would leak into an env's python."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_LEAKS}
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra or {})
    return env


def run_command(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    kind: ErrorKind | str = ErrorKind.SETUP_FAILED,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; on failure raise :class:`BackendError` with the tail of its output."""
    args = [os.fspath(c) for c in cmd]
    try:
        proc = subprocess.run(
            args,
            env=dict(env) if env is not None else clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BackendError(ErrorKind.TOOL_MISSING, f"{args[0]} not found: {exc}") from exc
    if proc.returncode != 0:
        label = what or os.path.basename(args[0])
        raise BackendError(kind, f"{label} failed (exit {proc.returncode}): {tail(proc.stderr or proc.stdout)}")
    return proc
