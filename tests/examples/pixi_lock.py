"""Writing pixi workspaces for tests: a ``pixi.toml`` and a ``pixi.lock`` in pixi's
version 6 YAML format, written here by hand (not by rattler, which writes version 7)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attrs import define

__all__ = ["SIX_1_16", "LockedWheel", "conda_entry", "write_lock", "write_manifest"]


@define(frozen=True)
class LockedWheel:
    name: str
    version: str
    url: str
    sha256: str


#: A real PyPI wheel, older than six's newest release (so a lock is told from a solve).
SIX_1_16 = LockedWheel(
    "six",
    "1.16.0",
    "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/"
    "six-1.16.0-py2.py3-none-any.whl",
    "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
)


def write_manifest(root: Path, text: str, name: str = "pixi.toml") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def conda_entry(record: Any) -> dict[str, Any]:
    """A rattler ``RepoDataRecord`` as a v6 ``packages:`` entry (name, version, build from the file name;
    pixi writes ``subdir`` where the URL does not say it, as for a ``file://`` channel)."""
    entry: dict[str, Any] = {"conda": record.url, "subdir": record.subdir}
    entry.update(sha256=record.sha256.hex(), md5=record.md5.hex())
    if record.depends:
        entry["depends"] = list(record.depends)
    if record.noarch.python:
        entry["noarch"] = "python"
    return {**entry, "size": record.size}


def write_lock(
    root: Path,
    channels: Sequence[str],
    conda: Sequence[dict[str, Any]],
    pypi: Sequence[LockedWheel] = (),
    platform: str = "linux-64",
) -> Path:
    """``root/pixi.lock`` (version 6) locking ``conda`` entries and ``pypi`` wheels for ``platform``."""
    lines = ["version: 6", "environments:", "  default:", "    channels:"]
    lines += [f"    - url: {_quote(c)}" for c in channels]
    lines += ["    packages:", f"      {platform}:"]
    lines += [f"      - conda: {_quote(e['conda'])}" for e in conda]
    lines += [f"      - pypi: {_quote(w.url)}" for w in pypi]
    lines.append("packages:")
    for entry in conda:
        lines.append(f"- conda: {_quote(entry['conda'])}")
        lines += [f"  {key}: {_quote(value)}" for key, value in entry.items() if key != "conda"]
    for wheel in pypi:
        lines += [f"- pypi: {_quote(wheel.url)}", f"  name: {wheel.name}", f"  version: {wheel.version}"]
        lines.append(f"  sha256: {wheel.sha256}")
    path = root / "pixi.lock"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _quote(value: object) -> str:
    """A YAML flow scalar (JSON is valid YAML)."""
    return json.dumps(value)
