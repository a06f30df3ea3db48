"""The I/O edge: which notebook a kernel runs (``JPY_SESSION_NAME``), and its dependencies."""

from __future__ import annotations

import json
import os
from pathlib import Path

from attrs import frozen

from runtimed.deps.readers import NotebookDeps, notebook_deps
from runtimed.deps.spec import DependencySpec

__all__ = ["NotebookRead", "find_notebook", "load_notebook_deps", "read_notebook_deps"]

SESSION_ENV = "JPY_SESSION_NAME"
# A notebook bigger than this is not read for its dependencies (outputs can be huge).
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024


def find_notebook(session_name: str | None, cwd: str | os.PathLike[str] | None) -> Path | None:
    """The notebook a kernel runs, from ``JPY_SESSION_NAME``: None when unset or not a
    ``.ipynb`` (a console). A relative path is resolved against the kernel's ``cwd``;
    when that is no file but the name alone is one in ``cwd``, that one (jupyter_server
    sets the API path, relative to its root, when it does not know the file name)."""
    if not session_name or not session_name.strip().endswith(".ipynb"):
        return None
    path = Path(session_name.strip()).expanduser()
    if path.is_absolute():
        return path
    base = Path(cwd) if cwd else Path.cwd()
    candidate = base / path
    if not candidate.is_file() and (base / path.name).is_file():
        return (base / path.name).absolute()
    return candidate.absolute()


@frozen
class NotebookRead:
    """The outcome of reading a notebook: what it declares, or why it could not be read."""

    deps: NotebookDeps | None
    problem: str | None = None

    @property
    def spec(self) -> DependencySpec | None:
        return self.deps.spec if self.deps else None


def load_notebook_deps(path: Path, backend: str | None = None) -> NotebookRead:
    """Read ``path``; never raises: a missing, unreadable or invalid notebook gives a
    :class:`NotebookRead` with no deps and the reason."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        return NotebookRead(None, f"cannot read {path}: {exc.strerror or exc}")
    if len(raw) > MAX_NOTEBOOK_BYTES:
        return NotebookRead(None, f"{path} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB; not read")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return NotebookRead(None, f"{path} is not valid notebook JSON: {exc}")
    if not isinstance(data, dict):
        return NotebookRead(None, f"{path} is not a notebook (its JSON is not an object)")
    try:
        return NotebookRead(notebook_deps(data, backend))
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        return NotebookRead(None, f"{path}: invalid dependencies: {exc}")


def read_notebook_deps(path: Path, backend: str | None = None) -> tuple[DependencySpec | None, str | None]:
    """(the spec, None), (None, None) for a notebook without dependencies, or (None, the
    reason it could not be read): never an exception."""
    result = load_notebook_deps(path, backend)
    return result.spec, result.problem
