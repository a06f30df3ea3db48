"""The ``uv`` backend for runtimed: virtualenvs built with ``uv venv`` + ``uv pip install``."""

from __future__ import annotations

from runtimed.backend import hookimpl
from runtimed_uv.backend import UvBackend

__all__ = ["UvBackend", "runtimed_backend"]


@hookimpl
def runtimed_backend() -> UvBackend:
    return UvBackend()
