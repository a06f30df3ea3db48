"""juv's lock: the text of a ``uv.lock`` in ``metadata["uv.lock"]``, read as exact pins.

What is honoured: every ``[[package]]`` installed from a registry becomes
``name==version``. Packages from elsewhere (a path, a URL, git) and the project
itself (``virtual``/``editable`` sources) are not pinned; their requirement stays as
declared. A lock is stale, and ignored, when its ``[manifest] requirements`` name
other packages than the notebook declares (the dependencies were edited and not
locked again). Hashes, markers and the lock's own ``requires-python`` are not used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runtimed.config import tomllib
from runtimed.deps.spec import canonical_name, requirement_name

__all__ = ["LockPins", "lock_pins"]

LockPins = tuple[str, ...]


def lock_pins(text: str, declared: Iterable[str]) -> tuple[LockPins, str | None]:
    """The pins of the lock ``text`` and None, or no pins and why the lock is not used."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return (), f"uv.lock is not valid TOML ({exc}); installing without it"
    wanted = {requirement_name(d) for d in declared}
    locked = _manifest_names(data)
    if locked is not None and locked != wanted:
        return (), "uv.lock is stale (it locks other packages than the notebook declares); installing without it"
    packages = data.get("package", [])
    if not isinstance(packages, list):
        return (), "uv.lock has no [[package]] list; installing without it"
    return tuple(sorted(pin for p in packages if (pin := _pin(p)))), None


def _manifest_names(data: dict[str, Any]) -> set[str] | None:
    requirements = data.get("manifest", {}).get("requirements")
    if not isinstance(requirements, list):
        return None
    return {canonical_name(r["name"]) for r in requirements if isinstance(r, dict) and isinstance(r.get("name"), str)}


def _pin(package: Any) -> str | None:
    if not isinstance(package, dict):
        return None
    name, version, source = package.get("name"), package.get("version"), package.get("source")
    if not (isinstance(name, str) and isinstance(version, str) and isinstance(source, dict)):
        return None
    if "registry" not in source:
        return None
    return f"{name}=={version}"  # normalised by DependencySpec.create
