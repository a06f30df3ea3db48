"""The command lines that start runtimed's own modules (workers, the plugin probe, an
auto-started daemon, a service), immune to the directory they run in.

``python -m runtimed.workers.child`` puts its cwd first on ``sys.path``: a checkout named
``runtimed`` there (a clone of this project in ``~``) shadows the installed package
and the process dies with an ``ImportError``. So this interpreter on Python 3.11+
runs ``python -P -m MODULE`` (no unsafe path first); an older or another interpreter
runs :data:`BOOTSTRAP`, which drops the cwd entry and then runs the module as ``-m``
would. Either way ``MODULE`` stays a word of the command line, so processes are
still found by it (``runtimed.workers.child``, ``runtimed.cli``).
"""

from __future__ import annotations

import os
import sys

__all__ = ["BOOTSTRAP", "module_command"]

# `python -c BOOTSTRAP MODULE ARGS...`: -c puts '' (the cwd) first on sys.path.
BOOTSTRAP = (
    "import runpy, sys\n"
    "if sys.path[:1] == ['']: del sys.path[0]\n"
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
)


def _is_this_interpreter(python: str | None) -> bool:
    return python is None or os.path.abspath(python) == os.path.abspath(sys.executable)


def module_command(module: str, *args: str, python: str | None = None, safe_path_flag: bool | None = None) -> list[str]:
    """``python -m MODULE ARGS...`` (``python`` defaults to this interpreter) without
    the cwd on ``sys.path``. ``safe_path_flag`` forces the ``-P`` form (True) or the
    bootstrap (False); by default ``-P`` is used when ``python`` is this interpreter
    and it knows ``-P``."""
    if safe_path_flag is None:
        safe_path_flag = _is_this_interpreter(python) and sys.version_info >= (3, 11)
    executable = python or sys.executable
    if safe_path_flag:
        return [executable, "-P", "-m", module, *args]
    return [executable, "-c", BOOTSTRAP, module, *args]
