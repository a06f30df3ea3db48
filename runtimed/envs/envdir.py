"""An environment directory on disk: its manifest, its lease, finding and deleting it.

``.runtimed/manifest.json`` is written last and atomically: its presence means the
env is complete and warmed. ``.runtimed/lease.json`` is written when the env is
handed out (into ``lease.next``, made empty at build time, then renamed): a leased
env is never pooled again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from attrs import define

from runtimed.core.convert import make_converter
from runtimed.core.gc import DiskEnv
from runtimed.core.records import MANIFEST_FORMAT, Lease, Manifest
from runtimed.util.files import fsync_path, new_env_id, now_iso, write_durably, write_json_atomic, write_text_atomic
from runtimed.util.paths import ENV_DIR_PREFIX

__all__ = [
    "FALLBACK_TRASH",
    "MANIFEST_FORMAT",
    "META_DIR",
    "EnvDir",
    "EnvRemovalError",
    "Lease",
    "Manifest",
    "dir_size",
    "empty_trash",
    "fallback_trash",
    "fsync_path",
    "missing_part",
    "move_to_trash",
    "new_env_id",
    "now_iso",
    "prepare_lease",
    "read_lease",
    "read_manifest",
    "scan_disk",
    "scan_envs",
    "write_json_atomic",
    "write_lease",
    "write_manifest",
    "write_text_atomic",
]

META_DIR = ".runtimed"
#: An empty file under META_DIR that a take fills and renames to ``lease.json``.
PREPARED_LEASE = "lease.next"

# Files written by older or newer runtimed may carry keys this one does not know.
_converter = make_converter(forbid_extra_keys=False)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_manifest(env_path: Path, manifest: Manifest) -> None:
    write_json_atomic(env_path / META_DIR / "manifest.json", _converter.unstructure(manifest))


def _through_symlink(env_path: Path) -> bool:
    """Is the env dir, or its metadata dir, a symlink? runtimed never makes one."""
    return any(os.path.islink(p) for p in (env_path, env_path / META_DIR))


def read_manifest(env_path: Path) -> Manifest | None:
    """The manifest, or None if missing or unreadable (the env is then partial), or if
    the env dir is a symlink (never ours: such an env is never pooled or handed out)."""
    if _through_symlink(env_path):
        return None
    data = _read_json(env_path / META_DIR / "manifest.json")
    if not isinstance(data, dict):
        return None
    try:
        manifest: Manifest = _converter.structure(data, Manifest)
    except Exception:
        return None
    return manifest


def missing_part(env_path: Path, manifest: Manifest) -> str | None:
    """The first path that makes the env whole (``manifest.whole``, recorded from
    ``Backend.whole_paths`` at build time) which is gone, or None: one ``stat`` each.
    A manifest from before ``whole`` was recorded has the python checked alone."""
    for part in manifest.whole or [manifest.python_path]:
        if not os.path.exists(env_path / part):
            return part
    return None


def write_lease(env_path: Path, lease: Lease, *, sync: bool = True) -> None:
    """Mark the env as handed out (atomically; with an fsync unless ``sync`` is False):
    it is never pooled again. Without the fsync the lease survives a daemon crash (the
    page cache has it) but not an OS crash: the daemon's session covers that (see
    ``runtimed.daemon.session``). Refuses (OSError ELOOP) to write through a symlink."""
    if _through_symlink(env_path):
        raise OSError(errno.ELOOP, f"{env_path} is a symlink; refusing to write a lease through it", str(env_path))
    data = json.dumps(_converter.unstructure(lease), separators=(",", ":")).encode() + b"\n"
    meta = env_path / META_DIR
    write_durably(meta / "lease.json", data, sync=sync, prepared=meta / PREPARED_LEASE)
    if sync:
        fsync_path(meta)  # the rename too


def prepare_lease(env_path: Path) -> None:
    """Make the empty file the env's lease will be written into (at build time, so a
    take renames a file instead of creating one)."""
    (env_path / META_DIR).mkdir(exist_ok=True)
    (env_path / META_DIR / PREPARED_LEASE).touch(mode=0o644)


def read_lease(env_path: Path) -> Lease | None:
    data = _read_json(env_path / META_DIR / "lease.json")
    if data is None:
        if (env_path / META_DIR / "lease.json").exists():
            # Present but unreadable: still leased; never pool it.
            return Lease(pid=None, create_time=None, taken_at="")
        return None
    try:
        lease: Lease = _converter.structure(data, Lease)
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
    """Every env directory, oldest id first. Backend names may contain dashes; ids do not.

    runtimed never makes a symlink under ``envs/``: one named like an env is removed
    (the link itself, never what it points to) and never reported, so it can be
    neither pooled nor handed out.
    """
    found: list[EnvDir] = []
    try:
        entries = list(os.scandir(envs_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        if not entry.name.startswith(ENV_DIR_PREFIX):
            continue
        if entry.is_symlink():
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        backend, sep, env_id = entry.name[len(ENV_DIR_PREFIX) :].rpartition("-")
        if sep and backend and env_id:
            found.append(EnvDir(backend=backend, id=env_id, path=Path(entry.path)))
    return sorted(found, key=lambda e: e.id)


class EnvRemovalError(OSError):
    """An env cannot be taken out of ``envs/`` (read-only file system, permissions...).

    The env stays where it was; ``errno`` and ``filename`` are those of the failed rename.
    """


FALLBACK_TRASH = ".trash"


def fallback_trash(envs_dir: Path) -> Path:
    """The trash used when ``trash/`` is on another file system than ``envs/``."""
    return envs_dir / FALLBACK_TRASH


def _real_dir(path: Path) -> Path:
    """``path`` as a real directory of ours: a symlink (or file) there is removed
    (the link itself: we never follow it), then the directory is created."""
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            return path
        os.unlink(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _removal_error(env_path: Path, exc: OSError) -> EnvRemovalError:
    return EnvRemovalError(exc.errno, f"cannot delete {env_path}: {exc.strerror}", str(env_path))


def move_to_trash(env_path: Path, trash_dir: Path) -> Path | None:
    """Atomically take an env out of ``envs/`` (rename); returns where it went, or None
    if it was already gone.

    Never follows a symlink: a symlinked ``trash/`` is replaced by a real directory, and
    an env path that is a symlink is unlinked itself (returning None). If ``trash/`` is on another
    file system (EXDEV), the env goes to :func:`fallback_trash` beside it instead. Any
    other failure (EROFS, EACCES, EBUSY...) raises :class:`EnvRemovalError` and leaves
    the env in place.
    """
    name = f"{env_path.name}.{secrets.token_hex(3)}"
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(env_path).st_mode):
            os.unlink(env_path)  # never an env of ours: remove the link, not its target
            return None
    try:
        target = _real_dir(trash_dir) / name
        os.rename(env_path, target)
    except OSError as exc:
        if not os.path.lexists(env_path):
            return None
        if exc.errno != errno.EXDEV:
            raise _removal_error(env_path, exc) from exc
        try:
            target = _real_dir(fallback_trash(env_path.parent)) / name
            os.rename(env_path, target)
        except OSError as exc2:
            if not os.path.lexists(env_path):
                return None
            raise _removal_error(env_path, exc2) from exc2
    return target


def empty_trash(*trash_dirs: Path) -> None:
    """Delete everything in the given trash dirs (blocking; run it in a thread).

    A trash dir that is a symlink is unlinked, never followed; entries are removed
    without following symlinks either.
    """
    for trash_dir in trash_dirs:
        try:
            if stat.S_ISLNK(os.lstat(trash_dir).st_mode):
                os.unlink(trash_dir)
                continue
            entries = list(os.scandir(trash_dir))
        except (FileNotFoundError, NotADirectoryError):
            continue
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


def _age_s(path: Path, manifest: Manifest | None, now: float) -> float:
    if manifest is not None and manifest.created_at:
        try:
            return max(0.0, now - datetime.fromisoformat(manifest.created_at).timestamp())
        except ValueError:
            pass
    try:
        return max(0.0, now - os.stat(path).st_mtime)
    except OSError:
        return 0.0


def scan_disk(envs_dir: Path, now: float | None = None) -> list[DiskEnv]:
    """Every env dir with its manifest, lease and age (blocking I/O: run in a thread)."""
    now = time.time() if now is None else now
    found = []
    for env in scan_envs(envs_dir):
        manifest = read_manifest(env.path)
        found.append(
            DiskEnv(
                backend=env.backend,
                id=env.id,
                path=env.path,
                manifest=manifest,
                lease=read_lease(env.path),
                age_s=_age_s(env.path, manifest, now),
            )
        )
    return found
