"""Notebooks as nteract and Jupyter write them (nbformat 4 JSON), for the tests of runtimed.deps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PEP723 = '# /// script\n# requires-python = ">=3.11"\n# dependencies = ["httpx", "Six"]\n# ///\nimport httpx\n'


def _cell(kind: str, source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "id": f"c{abs(hash(source)) % 10**8}", "metadata": {}}
    cell["source"] = source
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def notebook(*cells: tuple[str, str], **metadata: Any) -> dict[str, Any]:
    """A v4 notebook with ``(cell_type, source)`` cells and this metadata."""
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": kernelspec, **metadata},
        "cells": [_cell(kind, source) for kind, source in cells],
    }


def write(path: Path, nb: dict[str, Any]) -> Path:
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path
