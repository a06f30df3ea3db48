"""What a conda env is asked to contain, and where from (pure: no rattler, no I/O).

The spec list is the backend's base packages (``python``, ``ipykernel``,
``ipywidgets``) followed by ``python=<config.python>`` when set and the configured
packages. A configured spec that names a base package replaces it, so
``packages = ["python=3.12"]`` asks for ``python=3.12`` rather than both ``python``
and ``python=3.12``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "BASE_PACKAGES",
    "channel_source",
    "is_local_channel",
    "merge_specs",
    "python_spec",
    "spec_name",
]

#: What every conda env gets (the configured specs may constrain or replace them).
BASE_PACKAGES: tuple[str, ...] = ("python", "ipykernel", "ipywidgets")

# [channel[/subdir]::]name[ version[ build]] | name[<op>version] | name[key=value,...]
_NAME = re.compile(r"^\s*(?:[^\s:]+::)?([A-Za-z0-9_][A-Za-z0-9_.\-]*)")


def spec_name(spec: str) -> str:
    """The (lower-cased) package name a match spec like ``numpy>=2`` or ``conda-forge::numpy 2.*`` asks for.

    Returns the stripped spec itself if no name can be found (rattler reports it then).
    """
    match = _NAME.match(spec)
    return match.group(1).lower() if match else spec.strip()


def python_spec(python: str) -> str:
    """The match spec for a configured python version.

    ``"3.12"`` -> ``python=3.12`` (any 3.12.x), ``">=3.10"`` -> ``python>=3.10``;
    a full spec (``"python 3.12.*"``) is used as it is.
    """
    python = python.strip()
    if spec_name(python) == "python":
        return python
    if python[:1].isdigit():
        return f"python={python}"
    return f"python{python}"


def merge_specs(base: Iterable[str], configured: Sequence[str]) -> list[str]:
    """``base`` specs not named by a ``configured`` one, then ``configured``; exact duplicates dropped."""
    named = {spec_name(s) for s in configured}
    merged: dict[str, None] = {}
    for spec in (*(b for b in base if spec_name(b) not in named), *configured):
        merged.setdefault(spec.strip(), None)
    return list(merged)


_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def channel_source(channel: str) -> str:
    """A configured channel as rattler should see it.

    Names (``conda-forge``), URLs (``https://…``, ``file:///…``) and absolute paths
    pass through; ``~`` is expanded and ``./``/``../`` paths are made absolute
    (relative to the daemon's working directory: prefer absolute paths).
    """
    channel = channel.strip()
    if channel.startswith("~"):
        return os.path.expanduser(channel)
    if channel in (".", "..") or channel.startswith(("./", "../")):
        return os.path.abspath(channel)
    return channel


def is_local_channel(channel: str) -> bool:
    """Whether a channel is read from the file system (no network, no repodata cache)."""
    channel = channel_source(channel)
    return channel.startswith(("/", "file:")) or (not _URL_SCHEME.match(channel) and os.path.isabs(channel))
