"""Notebooks as the tools write them, for the tests of runtimed.deps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

PEP723 = '# /// script\n# requires-python = ">=3.11"\n# dependencies = ["httpx", "Six"]\n# ///\nimport httpx\n'


def notebook(*cells: tuple[str, str], **metadata: Any) -> dict[str, Any]:
    """A v4 notebook with ``(cell_type, source)`` cells and this metadata."""
    nb = nbformat.v4.new_notebook()
    new = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
    nb.cells = [new[kind](source) for kind, source in cells]
    nb.metadata.update(metadata)
    return json.loads(nbformat.writes(nb))  # type: ignore[no-untyped-call,no-any-return]


def write(path: Path, nb: dict[str, Any]) -> Path:
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path
