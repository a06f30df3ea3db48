"""A second, tiny local conda channel: ``noarch: generic`` packages of chosen versions,
built in a second or so with the packing and indexing of :mod:`tests.support.conda_channel`.

``build_tiny_channel(path, {"rt-pinned": ["1.0.0", "2.0.0"]})`` writes a channel at
``path`` where each version installs ``share/<name>/version.txt`` holding its version:
a lock (or a solve) that picks a version can be told from one that picks another.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from runtimed.util.tasks import run_sync
from tests.support import conda_channel as cc

__all__ = ["build_tiny_channel", "installed_version"]


def build_tiny_channel(path: Path, packages: Mapping[str, Sequence[str]]) -> Path:
    """A channel at ``path`` with each ``name`` in each of its ``versions``."""
    timestamp = int(time.time() * 1000)
    staged = []
    for name, versions in packages.items():
        for version in versions:
            pkg = cc._Package(name, version, "0", cc.NOARCH, path.parent / f".stage-{name}-{version}")
            cc._write_file(pkg.stage / f"share/{name}/version.txt", f"{version}\n")
            cc._write_info(pkg, timestamp=timestamp, license="MIT", summary=f"runtimed test package {name}")
            staged.append(pkg)
    for subdir in (cc.NOARCH, cc.LINUX_SUBDIR):
        (path / subdir).mkdir(parents=True, exist_ok=True)
    cc._pack_all(staged, path)
    run_sync(cc._index(path))
    return path


def installed_version(prefix: Path, name: str) -> str:
    """The version of tiny package ``name`` installed in ``prefix``."""
    return (prefix / "share" / name / "version.txt").read_text(encoding="utf-8").strip()
