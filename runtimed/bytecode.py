"""Compiling an env's bytecode explicitly, tolerating files that are not valid Python 3.

Kernels must not pay for compilation at start, and nothing else does it for us:
rattler writes no ``.pyc`` at all, and PYTHONDONTWRITEBYTECODE may be set. Every
``.py`` under the env's own stdlib and site-packages is compiled with the env's
python (library dirs outside the prefix, such as a venv's base interpreter, are
left alone). Like conda and pip, a file that does not compile (Python 2 test
data, templates shipped as ``.py``) is reported, not fatal; any other compileall
failure is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from runtimed.failure import BackendError, ErrorKind
from runtimed.process import clean_env, run_command

__all__ = ["compile_prefix", "library_dirs"]

_SYSCONFIG = (
    "import sysconfig, json; p = sysconfig.get_paths();"
    "print(json.dumps(sorted({p[k] for k in ('stdlib', 'platstdlib', 'purelib', 'platlib')})))"
)
_FAILED = re.compile(r"^\*\*\* Error compiling '(.+)'\.\.\.$", re.MULTILINE)


def library_dirs(python: Path, prefix: Path) -> list[str]:
    """The stdlib and site-packages directories of ``python`` inside ``prefix``, none nested in another."""
    out = run_command([python, "-c", _SYSCONFIG], what="python (sysconfig)").stdout
    root = os.path.realpath(prefix)
    inside = [d for d in json.loads(out) if _within(d, root) and os.path.isdir(d)]
    # compileall recurses: site-packages inside the stdlib dir would be compiled twice.
    return [d for d in inside if not any(other != d and _within(d, other) for other in inside)]


def _within(path: str, root: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


def compile_prefix(python: Path, prefix: Path) -> list[str]:
    """Compile every ``.py`` in the prefix's library dirs; return the files that do not compile.

    Raises :class:`BackendError` (``setup_failed``) if compileall itself fails.
    """
    dirs = library_dirs(python, prefix)
    if not dirs:
        return []
    proc = subprocess.run(
        [os.fspath(python), "-m", "compileall", "-q", "-j", "0", *dirs],
        env=clean_env(write_bytecode=True),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    failed = _FAILED.findall(proc.stdout)
    if proc.returncode != 0 and not failed:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BackendError(ErrorKind.SETUP_FAILED, f"compileall failed (exit {proc.returncode}): {tail}")
    return sorted(failed)
