"""An ``environment.yml`` as a project: ``channels``, ``dependencies`` (match specs)
and the ``pip:`` sub-list (PEP 508 requirements, installed with uv into the prefix).

Read with PyYAML's ``safe_load`` (the file is YAML: comments, quoting, flow lists).
``name`` and ``prefix`` are ignored (runtimed names its envs), so are ``variables``.
A ``python`` spec in ``dependencies`` is reported as the project's Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtimed.backend import ProjectSpec

__all__ = ["read_environment"]


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ValueError(f"{what} is not a list of strings")
    return [str(v) for v in value]


def read_environment(file: Path) -> ProjectSpec:
    """What ``file`` declares; ValueError naming the problem if malformed."""
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("the file is not a mapping (channels:, dependencies:)")
    channels = _strings(data.get("channels"), "channels")
    raw = data.get("dependencies") or []
    if not isinstance(raw, list):
        raise ValueError("dependencies is not a list")
    specs: list[str] = []
    pip: list[str] = []
    for entry in raw:
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            pip += _strings(entry["pip"], "dependencies: pip:")
        elif isinstance(entry, str):
            specs.append(entry)
        else:
            raise ValueError(f"dependencies: {entry!r} is neither a match spec nor a pip: list")
    python = next((s.strip()[len("python") :].strip() or None for s in specs if _name(s) == "python"), None)
    return ProjectSpec(
        file=file,
        packages=tuple(specs),
        channels=tuple(channels),
        pypi_packages=tuple(pip),
        python=python,
        inputs=(file,),
    )


def _name(spec: str) -> str:
    name = spec.strip().split("::")[-1]
    for stop in "<>=!~ [":
        name = name.split(stop, 1)[0]
    return name.lower()
