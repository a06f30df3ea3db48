"""The conda records installed in a prefix, read from its ``conda-meta/*.json`` (pure I/O, no rattler).

rattler writes one ``conda-meta/<name>-<version>-<build>.json`` per installed
package, as conda does; these files are the truth about what a prefix contains.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["RECORD_FIELDS", "installed_records", "package_list"]

#: The fields of each record kept in the manifest (enough to pin it exactly).
RECORD_FIELDS = ("name", "version", "build", "channel", "subdir", "url", "sha256")


def installed_records(prefix: Path) -> list[dict[str, Any]]:
    """The installed packages of ``prefix``, sorted by name, with :data:`RECORD_FIELDS` only."""
    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "name" in data:
            records.append({key: data.get(key) for key in RECORD_FIELDS})
    return sorted(records, key=lambda r: str(r["name"]))


def package_list(records: list[dict[str, Any]]) -> list[str]:
    """``name==version`` of every record (the manifest's ``packages``)."""
    return [f"{r['name']}=={r['version']}" for r in records]
