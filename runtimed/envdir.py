"""An environment directory on disk: its manifest, its lease, finding and deleting it.

``.runtimed/manifest.json`` is written last and atomically: its presence means the
env is complete and warmed. ``.runtimed/lease.json`` is written when the env is
handed out: a leased env is never pooled again.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from attrs import define, field

from runtimed.paths import ENV_DIR_PREFIX
from runtimed.protocol import PooledEnv, structure, unstructure

__all__ = [
    "MANIFEST_FORMAT",
    "EnvDir",
    "Lease",
    "Manifest",
    "dir_size",
    "empty_trash",
    "move_to_trash",
    "new_env_id",
    "now_iso",
    "read_lease",
    "read_manifest",
    "scan_envs",
    "write_json_atomic",
    "write_lease",
    "write_manifest",
    "write_text_atomic",
]

MANIFEST_FORMAT = 1
META_DIR = ".runtimed"


def new_env_id() -> str:
    """A short unique id, sortable by creation time."""
    return f"{int(time.time()):x}{secrets.token_hex(4)}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@define(frozen=True)
class Manifest:
    """What a complete env contains; written last by the build."""

    env_type: str
    id: str
    spec_hash: str
    python_path: str
    packages: list[str] = field(factory=list)
    created_at: str = ""
    backend_version: str = ""
    details: dict[str, Any] = field(factory=dict)  # backend-specific, e.g. conda records
    # Variables that activate the env (Backend.activation): PATH is prepended, the rest set.
    activation: dict[str, str] = field(factory=dict)
    format: int = MANIFEST_FORMAT

    def pooled_env(self, path: Path) -> PooledEnv:
        return PooledEnv(
            env_type=self.env_type,
            venv_path=str(path),
            python_path=self.python_path,
            id=self.id,
            packages=list(self.packages),
            created_at=self.created_at,
        )


@define(frozen=True)
class Lease:
    """Who holds a handed-out env. ``create_time`` tells a reused pid from the holder."""

    pid: int | None
    create_time: float | None
    taken_at: str
    keep: bool = False


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file + fsync + rename: readers see the
    old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_manifest(env_path: Path, manifest: Manifest) -> None:
    write_json_atomic(env_path / META_DIR / "manifest.json", unstructure(manifest))


def read_manifest(env_path: Path) -> Manifest | None:
    """The manifest, or None if missing or unreadable (the env is then partial)."""
    data = _read_json(env_path / META_DIR / "manifest.json")
    if not isinstance(data, dict):
        return None
    try:
        manifest: Manifest = structure(data, Manifest)
    except Exception:
        return None
    return manifest


def write_lease(env_path: Path, lease: Lease) -> None:
    write_json_atomic(env_path / META_DIR / "lease.json", unstructure(lease))


def read_lease(env_path: Path) -> Lease | None:
    data = _read_json(env_path / META_DIR / "lease.json")
    if data is None:
        if (env_path / META_DIR / "lease.json").exists():
            # Present but unreadable: still leased; never pool it.
            return Lease(pid=None, create_time=None, taken_at="")
        return None
    try:
        lease: Lease = structure(data, Lease)
    except Exception:
        return Lease(pid=None, create_time=None, taken_at="")
    return lease


@define(frozen=True)
class EnvDir:
    """A directory under ``envs/`` named ``runtimed-<backend>-<id>``."""

    backend: str
    id: str
    path: Path


def scan_envs(envs_dir: Path) -> list[EnvDir]:
    """Every env directory, oldest id first. Backend names may contain dashes; ids do not."""
    found: list[EnvDir] = []
    try:
        entries = list(os.scandir(envs_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        if not entry.name.startswith(ENV_DIR_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        backend, sep, env_id = entry.name[len(ENV_DIR_PREFIX) :].rpartition("-")
        if sep and backend and env_id:
            found.append(EnvDir(backend=backend, id=env_id, path=Path(entry.path)))
    return sorted(found, key=lambda e: e.id)


def move_to_trash(env_path: Path, trash_dir: Path) -> Path | None:
    """Atomically take an env out of ``envs/`` (rename); returns where it went."""
    trash_dir.mkdir(parents=True, exist_ok=True)
    target = trash_dir / f"{env_path.name}.{secrets.token_hex(3)}"
    try:
        os.rename(env_path, target)
    except FileNotFoundError:
        return None
    return target


def empty_trash(trash_dir: Path) -> None:
    """Delete everything in the trash (blocking; run it in a thread)."""
    try:
        entries = list(os.scandir(trash_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def dir_size(path: Path) -> int:
    """Bytes used by the files under ``path``, counting each hardlinked inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total
