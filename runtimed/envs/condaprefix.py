"""What backends that build conda prefixes share: the records a prefix holds (pure
JSON reading of ``conda-meta/*.json``) and the variables its activation sets (from
py-rattler's activation API, imported only when asked: the core does not need it)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, cast

__all__ = ["CONDA_RECORD_FIELDS", "conda_activation", "conda_records"]

#: The fields of each record kept in a manifest (enough to pin it exactly).
CONDA_RECORD_FIELDS = ("name", "version", "build", "channel", "subdir", "url", "sha256")
_BASE_PATH = "/runtimed-base-path"  # stands for the kernel's own PATH, which is not known here


def conda_records(prefix: Path) -> list[dict[str, Any]]:
    """The packages installed in ``prefix`` (rattler and conda write one
    ``conda-meta/<name>-<version>-<build>.json`` each), sorted by name, with
    :data:`CONDA_RECORD_FIELDS` only."""
    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "name" in data:
            records.append({key: data.get(key) for key in CONDA_RECORD_FIELDS})
    return sorted(records, key=lambda r: str(r["name"]))


def conda_activation(prefix: Path) -> dict[str, str]:
    """The variables conda activation of ``prefix`` sets, its activation scripts'
    exports too; ``PATH`` holds only the entries activation puts before the
    kernel's own. Needs py-rattler."""
    from rattler.shell import ActivationVariables, Shell, activate

    result = activate(prefix, ActivationVariables(None, [_BASE_PATH]), Shell.bash)
    entries = [str(p) for p in cast("list[Path]", result.path)]
    variables = {"PATH": os.pathsep.join(entries[: entries.index(_BASE_PATH)] if _BASE_PATH in entries else entries)}
    for line in result.script.splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if line.startswith("export ") and sep and name != "PATH":
            variables[name] = (shlex.split(value) or [""])[0]
    variables.setdefault("CONDA_PREFIX", str(prefix))
    return variables
