"""An example third-party runtimed backend: conda envs and `pixi <https://pixi.sh>`_
workspaces, built with py-rattler (and uv for PyPI packages), no pixi binary needed.

It uses exactly the interface the built-in uv and conda backends use: a
``runtimed_backend`` hook returning a :class:`runtimed.backend.Backend`, and imports
nothing of runtimed but :mod:`runtimed.backend`. runtimed loads it in its own
worker process, so whatever it does cannot hurt the daemon.
"""

from __future__ import annotations

from runtimed.backend import Backend, hookimpl
from runtimed_pixi.backend import PixiBackend

__all__ = ["PixiBackend", "runtimed_backend"]


@hookimpl
def runtimed_backend() -> Backend:
    return PixiBackend()
