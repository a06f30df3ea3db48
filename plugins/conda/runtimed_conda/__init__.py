"""The ``conda`` backend for runtimed: conda prefixes solved and installed with py-rattler.

No conda or mamba binary is involved: :mod:`rattler` solves against the configured
channels (repodata cached under the runtimed cache and used offline first) and
installs into the env's final path, hardlinking from a package cache.
"""

from __future__ import annotations

from runtimed.backend import hookimpl
from runtimed_conda.backend import CondaBackend

__all__ = ["CondaBackend", "runtimed_backend"]


@hookimpl
def runtimed_backend() -> CondaBackend:
    """The backend object of this plugin."""
    return CondaBackend()
