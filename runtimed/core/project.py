"""A project file's declared env (:class:`ProjectSpec`, read by the backend that
understands the file) and its key: pure, no I/O but reading the inputs' bytes.

Re-exported by ``runtimed.backend`` (the plugin API): a plugin imports it from there.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from attrs import define

__all__ = ["ProjectSpec", "project_key"]


@define(frozen=True)
class ProjectSpec:
    """What one project file declares, as the backend that understands it reads it
    (:meth:`runtimed.backend.Backend.read_project`).

    ``packages`` are the backend's own specs (PEP 508 requirements for uv, match
    specs for conda), exact pins when ``locked`` (read from a lock file);
    ``pypi_packages`` are PEP 508 requirements installed with uv into a conda prefix
    (``environment.yml``'s ``pip:``, pixi's ``[pypi-dependencies]``). ``inputs`` are
    the files whose bytes decide the env (the project file, its lock), including a lock
    not written yet (a missing file counts as empty): runtimed keys the project's env by
    their hash (:func:`project_key`), reads the file again and rebuilds the env when one
    changes, appears or goes.
    ``python`` is what the file says of Python, shown and approved (a conda-like
    backend has its spec among ``packages``). ``requires_python`` is a PEP 440
    specifier the env's Python must satisfy (uv's ``requires-python``): checked before
    anything is installed, and the notebook is told when the pool's Python does not.
    ``exclude_newer`` installs only versions uploaded before that RFC 3339 time (uv's
    ``[tool.uv] exclude-newer``).
    """

    file: Path
    packages: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    pypi_packages: tuple[str, ...] = ()
    python: str | None = None
    locked: bool = False
    inputs: tuple[Path, ...] = ()
    requires_python: str | None = None
    exclude_newer: str | None = None

    def describe(self) -> str:
        """One line: ``a, b>=1 (pip: c; channels x; python >=3.11; locked)``."""
        extras = [f"pip: {', '.join(self.pypi_packages)}"] if self.pypi_packages else []
        extras += [f"channels {', '.join(self.channels)}"] if self.channels else []
        extras += [f"python {self.python}"] if self.python else []
        extras += ["locked"] if self.locked else []
        tail = f" ({'; '.join(extras)})" if extras else ""
        return f"{', '.join(self.packages) or '(no packages)'}{tail}"


def project_key(backend: str, spec: ProjectSpec) -> str:
    """The project's key: a hash of the backend, the project file's absolute path (a
    relative path in it means another thing elsewhere) and the bytes of every input
    (an input that is gone counts as empty). Its warm set and its approval are keyed by it.
    OSError if an input cannot be read."""
    digest = hashlib.sha256(f"{backend}\0{Path(spec.file).absolute()}\0".encode())
    for path in sorted({Path(spec.file), *spec.inputs}):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:32]
