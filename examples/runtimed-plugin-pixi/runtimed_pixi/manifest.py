"""Reading a pixi workspace (``pixi.toml``, or ``pyproject.toml`` with ``[tool.pixi]``)
into a :class:`~runtimed.backend.ProjectSpec`.

What is read (the workspace's ``default`` environment for this platform):

* ``[workspace]`` (or the older ``[project]``): ``channels`` (names, URLs, or paths
  relative to the manifest) and ``platforms`` (this machine's must be listed, if any are);
* ``[dependencies]``, then ``[target.<selector>.dependencies]`` for this platform
  (``unix``, ``linux``, ``osx``, ``win`` or the exact platform), as conda match specs;
* ``[pypi-dependencies]`` (and its targets) as PEP 508 requirements; a pyproject's
  ``[project] dependencies`` are PyPI dependencies too, and its ``requires-python``
  gives the python when ``[tool.pixi.dependencies]`` names none;
* ``pixi.lock`` next to the manifest, when it exists: its exact packages
  (``locked=True``). It must lock every dependency the manifest names.

Features and other environments are not read. Anything that cannot be read raises
``ValueError`` naming the file and what is wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from runtimed.backend import ProjectSpec
from runtimed_pixi.conda import current_platform, locked_environment, record_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["LOCK_FILE", "read_workspace"]

LOCK_FILE = "pixi.lock"


def read_workspace(file: Path) -> ProjectSpec | None:
    """The workspace ``file`` declares; None for a ``pyproject.toml`` without ``[tool.pixi]``."""
    tables = _pixi_tables(file, _load(file))
    if tables is None:
        return None
    table, project = tables
    workspace = table.get("workspace", table.get("project"))
    if not isinstance(workspace, dict):
        raise ValueError(f"{file}: no {'[tool.pixi.workspace]' if project is not None else '[workspace]'} table")
    _check_platforms(workspace, file)
    project = project or {}
    conda = {n: _conda_spec(n, v, file) for n, v in _merged(table, "dependencies", file).items()}
    pypi = [_pep508(n, v, file) for n, v in _merged(table, "pypi-dependencies", file).items()]
    pypi = list(dict.fromkeys([*_project_dependencies(project, file), *pypi]))
    if "python" not in conda and isinstance(project.get("requires-python"), str):
        conda["python"] = f"python {project['requires-python']}"
    spec = ProjectSpec(
        file=file,
        packages=tuple(conda.values()),
        channels=_channels(workspace, file),
        pypi_packages=tuple(pypi),
        python=_version_of(conda.get("python")),
        inputs=(file, file.parent / LOCK_FILE),  # a lock written later changes the env
    )
    lock = file.parent / LOCK_FILE
    return _with_lock(spec, lock, conda, pypi) if lock.is_file() else spec


def _pixi_tables(file: Path, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The pixi tables and, for a pyproject, its ``[project]`` table; None: not a pixi workspace."""
    if file.name != "pyproject.toml":
        return data, None
    tool = data.get("tool", {})
    if not isinstance(tool, dict) or "pixi" not in tool:
        return None
    return _table(tool, "pixi", file, "tool.pixi"), _table(data, "project", file, "project")


def _version_of(spec: str | None) -> str | None:
    """``python 3.11.*`` -> ``3.11.*`` (None for a bare ``python`` or none at all)."""
    return (spec or "").partition(" ")[2].strip() or None


def _load(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as f:
            data: dict[str, Any] = tomllib.load(f)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{file}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ValueError(f"{file}: cannot be read: {exc}") from exc


def _table(data: Mapping[str, Any], key: str, file: Path, name: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{file}: [{name}] must be a table")
    return value


def _check_platforms(workspace: Mapping[str, Any], file: Path) -> None:
    platforms = workspace.get("platforms", [])
    if not isinstance(platforms, list) or not all(isinstance(p, str) for p in platforms):
        raise ValueError(f"{file}: platforms must be a list of strings")
    here = current_platform()
    if platforms and here not in platforms:
        raise ValueError(f"{file}: the workspace's platforms ({', '.join(platforms)}) do not include {here}")


def _channels(workspace: Mapping[str, Any], file: Path) -> tuple[str, ...]:
    channels = workspace.get("channels", [])
    if not isinstance(channels, list):
        raise ValueError(f"{file}: channels must be a list")
    result = []
    for entry in channels:
        name = entry.get("channel") if isinstance(entry, dict) else entry
        if not isinstance(name, str) or not name:
            raise ValueError(f"{file}: a channel must be a name, a URL or a path, not {entry!r}")
        if name.startswith(("./", "../")) or name in (".", ".."):
            name = str((file.parent / name).resolve())
        result.append(name)
    return tuple(result)


def _selectors() -> list[str]:
    """The ``[target.X]`` tables that apply here, least specific first."""
    here = current_platform()
    family = here.split("-")[0]  # linux, osx, win
    return [*(["unix"] if family != "win" else []), family, here]


def _merged(table: Mapping[str, Any], key: str, file: Path) -> dict[str, Any]:
    """``table[key]`` with each applicable ``[target.X.key]`` over it."""
    merged = dict(_table(table, key, file, key))
    targets = _table(table, "target", file, "target")
    for selector in _selectors():
        target = targets.get(selector, {})
        if isinstance(target, dict):
            merged.update(_table(target, key, file, f"target.{selector}.{key}"))
    return merged


def _conda_spec(name: str, value: Any, file: Path) -> str:
    """``numpy = ">=2"`` -> ``numpy >=2``; ``{version, build, channel}`` tables too."""
    from rattler import MatchSpec

    if isinstance(value, dict):
        unsupported = sorted(set(value) - {"version", "build", "channel"})
        if unsupported:
            raise ValueError(f"{file}: dependency {name!r}: {', '.join(unsupported)} is not supported here")
        channel = f"{value['channel']}::" if value.get("channel") else ""
        parts = [f"{channel}{name}", str(value.get("version", "*")), str(value.get("build", ""))]
        spec = " ".join(p for p in parts if p).strip()
    elif isinstance(value, str):
        spec = name if value.strip() in ("", "*") else f"{name} {value.strip()}"
    else:
        raise ValueError(f"{file}: dependency {name!r} must be a version string or a table, not {value!r}")
    try:
        MatchSpec(spec)
    except Exception as exc:
        raise ValueError(f"{file}: dependency {name!r} is not a valid conda spec ({spec!r}): {exc}") from exc
    return spec


def _pep508(name: str, value: Any, file: Path) -> str:
    """A ``[pypi-dependencies]`` entry as a PEP 508 requirement (``editable`` is not kept)."""
    if isinstance(value, str):
        text = _versioned(name, value)
    elif isinstance(value, dict):
        extras = value.get("extras", [])
        head = f"{name}[{','.join(extras)}]" if extras else name
        text = _versioned(head, str(value.get("version", "*")))
        if "path" in value:
            text = f"{head} @ {(file.parent / str(value['path'])).resolve().as_uri()}"
        elif "url" in value:
            text = f"{head} @ {value['url']}"
        elif "git" in value:
            ref = next((value[k] for k in ("rev", "tag", "branch") if k in value), None)
            sub = f"#subdirectory={value['subdirectory']}" if "subdirectory" in value else ""
            text = f"{head} @ git+{value['git']}{'@' + str(ref) if ref else ''}{sub}"
    else:
        raise ValueError(f"{file}: pypi dependency {name!r} must be a version string or a table, not {value!r}")
    return _requirement(text, file)


def _versioned(name: str, version: str) -> str:
    version = version.strip()
    if version in ("", "*"):
        return name
    return f"{name}=={version}" if version[0].isdigit() else f"{name}{version}"


def _requirement(text: str, file: Path) -> str:
    try:
        return str(Requirement(text))
    except InvalidRequirement as exc:
        raise ValueError(f"{file}: {text!r} is not a valid PyPI requirement: {exc}") from exc


def _project_dependencies(project: Mapping[str, Any], file: Path) -> list[str]:
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list):
        raise ValueError(f"{file}: [project] dependencies must be a list")
    return [_requirement(str(d), file) for d in dependencies]


def _with_lock(spec: ProjectSpec, lock: Path, conda: Mapping[str, str], pypi: list[str]) -> ProjectSpec:
    """``spec`` pinned to what ``lock`` holds for this platform (which must cover the manifest)."""
    locked = locked_environment(lock)
    missing = sorted({n.lower() for n in conda} - locked.conda_names | _names(pypi) - {p.name for p in locked.pypi})
    if missing:
        raise ValueError(f"{lock} is out of date: it locks no {', '.join(missing)} (run `pixi lock`)")
    return ProjectSpec(
        file=spec.file,
        packages=tuple(record_spec(r) for r in locked.conda),
        channels=spec.channels,
        pypi_packages=tuple(p.requirement for p in locked.pypi),
        python=spec.python,
        locked=True,
        inputs=(spec.file, lock),
    )


def _names(requirements: list[str]) -> set[str]:
    from packaging.utils import canonicalize_name

    return {str(canonicalize_name(Requirement(r).name)) for r in requirements}
