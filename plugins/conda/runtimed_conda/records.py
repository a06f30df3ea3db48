"""What the manifest lists of a conda prefix's records (read by ``runtimed.backend.conda_records``)."""

from __future__ import annotations

from typing import Any

__all__ = ["package_list"]


def package_list(records: list[dict[str, Any]]) -> list[str]:
    """``name==version`` of every record (the manifest's ``packages``)."""
    return [f"{r['name']}=={r['version']}" for r in records]
