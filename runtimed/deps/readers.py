"""Read a notebook's dependencies from its JSON (pure: a dict in, a spec out).

Formats, first found wins within one backend:

* uv: the PEP 723 ``# /// script`` block at the top of the first code cell (juv,
  uvnb), then nteract's ``metadata.runt.uv``, then the older ``metadata.uv``;
* conda: ``metadata.runt.conda``, then the older ``metadata.conda``.

The rule for a notebook with both uv and conda dependencies: they are never mixed
(PyPI and conda names differ). The kernelspec's backend serves its own kind; with
only one kind declared, that kind's backend serves them whatever the kernelspec
says (conda when only conda deps are given); with both and a kernelspec of another
backend, uv. The other kind is ignored (:attr:`NotebookDeps.ignored` says so).
"""

from __future__ import annotations

from typing import Any

from attrs import frozen

from runtimed.deps.lock import lock_pins
from runtimed.deps.pep723 import parse_script_block
from runtimed.deps.spec import Backend, DependencySpec, Source

__all__ = ["NotebookDeps", "choose_spec", "conda_spec", "notebook_deps", "read_deps", "uv_spec"]


@frozen
class NotebookDeps:
    """What a notebook declares: the spec that is served, the one ignored, notes."""

    spec: DependencySpec | None
    ignored: DependencySpec | None = None
    notes: tuple[str, ...] = ()


def read_deps(notebook: dict[str, Any], backend: str | None = None) -> DependencySpec | None:
    """The dependencies the backend of the kernelspec (``backend``) serves, or None.
    ValueError if the notebook declares them in an invalid way."""
    return notebook_deps(notebook, backend).spec


def notebook_deps(notebook: dict[str, Any], backend: str | None = None) -> NotebookDeps:
    """Both kinds read, one chosen (see the module's rule), with notes on the lock."""
    uv, notes = uv_spec(notebook)
    chosen, ignored = choose_spec(uv, conda_spec(notebook), backend)
    return NotebookDeps(spec=chosen, ignored=ignored, notes=notes)


def choose_spec(
    uv: DependencySpec | None, conda: DependencySpec | None, backend: str | None
) -> tuple[DependencySpec | None, DependencySpec | None]:
    """(the spec served, the spec ignored) by the rule of this module."""
    if uv is None or conda is None:
        return uv or conda, None
    if backend == Backend.CONDA.value:
        return conda, uv
    return uv, conda


def _metadata(notebook: dict[str, Any]) -> dict[str, Any]:
    metadata = notebook.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError("the notebook's metadata is not an object")
    return metadata


def _placed(metadata: dict[str, Any], kind: str) -> tuple[dict[str, Any], Source] | None:
    runt = metadata.get("runt")
    for table, source in ((runt, Source.NTERACT), (metadata, Source.NTERACT_OLD)):
        if isinstance(table, dict) and kind in table:
            value = table[kind]
            if not isinstance(value, dict):
                raise ValueError(f"{source.value}.{kind} is not an object")
            return value, source
    return None


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings")
    return value


def _string(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where} must be a string")
    return value


def _first_code_source(notebook: dict[str, Any]) -> str | None:
    cells = notebook.get("cells", [])
    if not isinstance(cells, list):
        raise ValueError("the notebook's cells are not a list")
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else str(source)
    return None


def uv_spec(notebook: dict[str, Any]) -> tuple[DependencySpec | None, tuple[str, ...]]:
    """The uv dependencies (PEP 723 first, then nteract's), with the lock's pins; notes."""
    metadata = _metadata(notebook)
    spec = _pep723_spec(notebook) or _nteract_uv_spec(metadata)
    lock = metadata.get("uv.lock")
    if spec is None or not isinstance(lock, str):
        return spec, ()
    pins, problem = lock_pins(lock, spec.packages)
    if problem:
        return spec, (problem,)
    return DependencySpec.create(
        spec.backend,
        spec.packages,
        python=spec.python,
        uv_options=spec.uv_option_dict(),
        pins=pins,
        source=spec.source,
    ), ()


def _pep723_spec(notebook: dict[str, Any]) -> DependencySpec | None:
    source = _first_code_source(notebook)
    block = parse_script_block(source) if source else None
    if block is None or not block.dependencies:
        return None
    return DependencySpec.create(
        Backend.UV, block.dependencies, python=block.requires_python, uv_options=block.tool_uv, source=Source.PEP723
    )


def _nteract_uv_spec(metadata: dict[str, Any]) -> DependencySpec | None:
    placed = _placed(metadata, "uv")
    if placed is None:
        return None
    table, source = placed
    where = f"{source.value}.uv"
    packages = _strings(table.get("dependencies"), f"{where}.dependencies")
    python = _string(table.get("requires-python"), f"{where}.requires-python")
    if not packages:
        return None
    return DependencySpec.create(Backend.UV, packages, python=python, source=source)


def conda_spec(notebook: dict[str, Any]) -> DependencySpec | None:
    """The conda dependencies (``metadata.runt.conda``, then ``metadata.conda``)."""
    placed = _placed(_metadata(notebook), "conda")
    if placed is None:
        return None
    table, source = placed
    where = f"{source.value}.conda"
    packages = _strings(table.get("dependencies"), f"{where}.dependencies")
    channels = _strings(table.get("channels"), f"{where}.channels")
    python = _string(table.get("python"), f"{where}.python")
    if not packages:
        return None
    return DependencySpec.create(Backend.CONDA, packages, python=python, channels=channels, source=source)
