"""What a notebook asks for: :class:`DependencySpec`, normalised, with a stable key."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen
from packaging.utils import canonicalize_name

from runtimed.core.extras import normalise_requirement

__all__ = [
    "Backend",
    "DependencySpec",
    "Source",
    "canonical_name",
    "has_direct_reference",
    "normalise_conda",
    "normalise_requirement",
    "requirement_name",
]

# The name at the start of a PEP 508 requirement, then optional extras.
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[(?P<extras>[^\]]*)\])?(?P<rest>.*)$"
)
# A conda match spec may name a channel first: ``conda-forge::numpy >=1``.
_CONDA = re.compile(r"^\s*(?:(?P<channel>[^:\s]+)::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9._-]*)(?P<rest>.*)$")
_SPACES = re.compile(r"\s+")


class Backend(str, enum.Enum):
    """The backend whose installer understands the packages."""

    UV = "uv"
    CONDA = "conda"


class Source(str, enum.Enum):
    """Where in the notebook the dependencies were found."""

    NTERACT = "metadata.runt"
    NTERACT_OLD = "metadata"
    PEP723 = "pep723"


def canonical_name(name: str) -> str:
    """PEP 503: lower case, runs of ``-``, ``_``, ``.`` folded to one ``-``."""
    return str(canonicalize_name(name))


def requirement_name(requirement: str) -> str:
    """The canonical name of a (normalised or not) requirement or conda spec."""
    match = _CONDA.match(requirement) if "::" in requirement else _REQUIREMENT.match(requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return canonical_name(match["name"])


def has_direct_reference(requirement: str) -> bool:
    """``name @ URL``: installed from wherever the URL says, not from the index."""
    return "@" in requirement.partition(";")[0]


def normalise_conda(text: str) -> str:
    """A conda match spec with its name lower-cased (conda names are case-insensitive,
    but ``_`` and ``-`` differ) and spaces collapsed."""
    match = _CONDA.match(text)
    if not match:
        raise ValueError(f"not a conda package: {text!r}")
    channel = f"{match['channel']}::" if match["channel"] else ""
    rest = _SPACES.sub(" ", match["rest"].strip())
    return f"{channel}{match['name'].lower()}{' ' + rest if rest else ''}"


def _unique_sorted(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))


def _unique_ordered(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@frozen
class DependencySpec:
    """The dependencies of one notebook, normalised: two notebooks that ask for the
    same thing (in any order, case or spelling of names) have equal specs and keys.

    ``packages`` are PEP 508 requirements (uv) or conda match specs (conda), sorted and
    unique. ``python`` is ``requires-python`` (uv) or the conda ``python`` version.
    ``channels`` (conda) keep their order: it is their priority. ``uv_options`` are the
    PEP 723 ``[tool.uv]`` table as sorted (key, JSON value) pairs. ``pins`` are the
    ``name==version`` of every package a lock resolved: what gets installed.
    ``source`` says where they were found and is not part of the key.
    """

    backend: Backend
    packages: tuple[str, ...] = ()
    python: str | None = None
    channels: tuple[str, ...] = ()
    uv_options: tuple[tuple[str, str], ...] = ()
    pins: tuple[str, ...] = ()
    source: Source | None = None

    @classmethod
    def create(
        cls,
        backend: Backend,
        packages: Iterable[str],
        *,
        python: str | None = None,
        channels: Iterable[str] = (),
        uv_options: Mapping[str, Any] | None = None,
        pins: Iterable[str] = (),
        source: Source | None = None,
    ) -> DependencySpec:
        """A normalised spec; ValueError for a package that is not a requirement."""
        normalise = normalise_requirement if backend is Backend.UV else normalise_conda
        options = sorted((str(k), json.dumps(v, sort_keys=True)) for k, v in (uv_options or {}).items())
        return cls(
            backend=backend,
            packages=_unique_sorted(normalise(p) for p in packages if p.strip()),
            python=python.strip() or None if python else None,
            channels=_unique_ordered(c.strip() for c in channels if c.strip()),
            uv_options=tuple(options),
            pins=_unique_sorted(normalise_requirement(p) for p in pins),
            source=source,
        )

    @property
    def key(self) -> str:
        """A stable hash of everything that decides what gets installed (not ``source``)."""
        data = {
            "backend": self.backend.value,
            "packages": list(self.packages),
            "python": self.python,
            "channels": list(self.channels),
            "uv_options": [list(o) for o in self.uv_options],
            "pins": list(self.pins),
        }
        blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def uv_option(self, name: str) -> Any:
        """The value of ``[tool.uv] name`` (e.g. ``exclude-newer``), or None."""
        return self.uv_option_dict().get(name)

    def uv_option_dict(self) -> dict[str, Any]:
        """``[tool.uv]`` as a table again."""
        return {key: json.loads(value) for key, value in self.uv_options}

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical names of the declared packages."""
        return _unique_sorted(requirement_name(p) for p in self.packages)

    @property
    def pinned_names(self) -> tuple[str, ...]:
        return _unique_sorted(requirement_name(p) for p in self.pins)

    def describe(self) -> str:
        """One line: ``uv: a, b>=1 (python >=3.11; 3 pins from the lock)``."""
        extras = [f"python {self.python}"] if self.python else []
        extras += [f"channels {', '.join(self.channels)}"] if self.channels else []
        extras += [f"{k} = {v}" for k, v in self.uv_options]
        extras += [f"{len(self.pins)} pins from uv.lock"] if self.pins else []
        tail = f" ({'; '.join(extras)})" if extras else ""
        return f"{self.backend.value}: {', '.join(self.packages) or '(no packages)'}{tail}"
