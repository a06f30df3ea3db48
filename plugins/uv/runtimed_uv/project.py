"""A ``pyproject.toml`` as a project: ``[project] dependencies`` and ``requires-python``,
``[tool.uv] exclude-newer``, and the exact versions of ``uv.lock`` beside it when it is
current (then ``exclude-newer`` is not applied: the lock's pins are the truth).

The lock is read with tomllib: from the project's own entry (its ``source`` is
``editable`` or ``virtual``) its ``dependencies`` are followed through the lock's
``[[package]]`` entries (with the extras asked for), and every package from a
registry reached becomes ``name==version``, with the markers of the edges that
reach it (dev groups are not followed). A lock whose project entry requires other
packages than ``[project] dependencies`` declares is stale and is not used (the
declared requirements are installed).
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runtimed.backend import ProjectSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["lock_pins", "read_pyproject"]

LOCK = "uv.lock"


def read_pyproject(file: Path) -> ProjectSpec | None:
    """The project ``file`` declares; None without a ``[project]`` table. ValueError if malformed."""
    data = tomllib.loads(file.read_text(encoding="utf-8"))
    project = data.get("project")
    if project is None:
        return None
    if not isinstance(project, dict):
        raise ValueError("[project] is not a table")
    declared = project.get("dependencies", [])
    if not isinstance(declared, list) or not all(isinstance(d, str) for d in declared):
        raise ValueError("[project] dependencies is not a list of strings")
    python = project.get("requires-python")
    if python is not None and not isinstance(python, str):
        raise ValueError("[project] requires-python is not a string")
    exclude_newer = _exclude_newer(data)
    lock = file.with_name(LOCK)
    pins = (
        lock_pins(tomllib.loads(lock.read_text(encoding="utf-8")), project.get("name"), declared)
        if lock.is_file()
        else None
    )
    return ProjectSpec(
        file=file,
        packages=tuple(pins if pins is not None else declared),
        python=python,
        locked=pins is not None,
        inputs=(file, lock),
        requires_python=python,
        exclude_newer=exclude_newer if pins is None else None,
    )


def _exclude_newer(data: dict[str, Any]) -> str | None:
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    value = uv.get("exclude-newer") if isinstance(uv, dict) else None
    if value is None:
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):  # TOML's own date/time values
        return value.isoformat()
    if not isinstance(value, str):
        raise ValueError("[tool.uv] exclude-newer is not a date or a time")
    return value


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _root(packages: list[dict[str, Any]], name: Any) -> dict[str, Any] | None:
    roots = [p for p in packages if isinstance(p.get("source"), dict) and {"editable", "virtual"} & set(p["source"])]
    named = [p for p in roots if isinstance(name, str) and _norm(str(p.get("name", ""))) == _norm(name)]
    found = named or roots
    return found[0] if found else None


def _required_names(root: dict[str, Any]) -> set[str] | None:
    requires = root.get("metadata", {}).get("requires-dist")
    if not isinstance(requires, list):
        return None
    return {_norm(str(r.get("name", ""))) for r in requires if isinstance(r, dict)}


def _declared_names(declared: Iterable[str]) -> set[str]:
    names = set()
    for requirement in declared:
        name = requirement.strip()
        for stop in "[<>=!~;@ (":
            name = name.split(stop, 1)[0]
        names.add(_norm(name))
    return names


def lock_pins(data: dict[str, Any], name: Any, declared: list[str]) -> list[str] | None:
    """``name==version[ ; markers]`` of every registry package the project's
    dependencies reach in the lock ``data``; None when the lock does not fit the project."""
    packages = [p for p in data.get("package", []) if isinstance(p, dict)]
    root = _root(packages, name)
    if root is None or _required_names(root) != _declared_names(declared):
        return None
    by_name = {_norm(str(p.get("name", ""))): p for p in packages}
    markers: dict[str, set[str]] = {}  # package -> the markers of the edges reaching it ("" = always)
    todo = [(dep, "") for dep in root.get("dependencies", [])]
    while todo:
        dep, via = todo.pop()
        if not isinstance(dep, dict):
            continue
        target = _norm(str(dep.get("name", "")))
        marker = " and ".join(f"({m})" for m in (via, dep.get("marker", "")) if m)
        seen = markers.setdefault(target, set())
        if marker in seen or "" in seen:
            continue
        seen.add(marker)
        package = by_name.get(target, {})
        followed = list(package.get("dependencies", []))
        for extra in dep.get("extra", []):
            followed += package.get("optional-dependencies", {}).get(extra, [])
        todo += [(d, marker) for d in followed]
    return sorted(
        _pin(by_name[n], m) for n, m in markers.items() if n in by_name and "registry" in by_name[n].get("source", {})
    )


def _pin(package: dict[str, Any], markers: set[str]) -> str:
    pin = f"{package['name']}=={package['version']}"
    if "" in markers or not markers:
        return pin
    return f"{pin} ; {' or '.join(sorted(markers))}"
