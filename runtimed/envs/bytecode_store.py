"""The shared bytecode store: one ``.pyc`` per shared source file, hardlinked into every env.

uv and rattler install package files as hardlinks from their caches, so the same
source is the same inode (same mtime, same size) in every env. A timestamp-based
``.pyc`` compiled for one env's copy is valid for all of them, and CPython sets
``co_filename`` to the importing file's path on load, so tracebacks still name
each env's own files. The store keeps one such ``.pyc`` per source inode::

    <cache>/bytecode/<cache_tag>-<magic>/<xx>/<dev>-<ino>-<mtime_ns>-<size>.pyc

Rules that keep it safe:

* An entry is published atomically (hardlink to a temp name, then rename), so a
  reader sees a whole file or none; concurrent builds may both publish, the last
  one wins, and each env keeps the (equally valid) inode it linked.
* Only a ``.pyc`` whose body loaded in the compiling python is published
  (``runtimed/envscripts/pyc_compile.py``), and its mtime is set to its size in seconds
  after the epoch (the *seal*; CPython never reads a ``.pyc``'s own mtime). Any
  write or truncation sets the mtime to the current time, so an entry whose stat
  does not show its seal (cut short, written into, or published unchecked by an
  older runtimed) is removed when a build finds it, never linked, and the build
  compiles and publishes a fresh one. The check is the ``stat`` linking makes anyway.
* Entries are read-only (0444), and nothing that installs or imports rewrites a
  ``.pyc`` in place: CPython and ``py_compile`` write a new file and rename it over
  the old name, which replaces one env's link and leaves the store and the other
  envs untouched. The mode bits do not stop root or the owner's own ``open(pyc,
  "r+b")``: such a write changes every env linking the entry until the seal check
  retires it for new builds.
* An entry nobody else links (``st_nlink == 1``) is never reused: its source inode
  may have been freed and reused. GC removes such entries (:func:`collect_store`);
  a build that loses the race with GC compiles the file instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time
from collections.abc import Mapping
from pathlib import Path

from attrs import define

__all__ = [
    "SHARE_ENV_VAR",
    "STORE_DIR",
    "DamagedEntry",
    "StoreGcResult",
    "collect_store",
    "collect_store_logged",
    "entry_is_sealed",
    "entry_path",
    "link_entry",
    "publish_entry",
    "pyc_header_matches",
    "sharing_enabled",
    "store_for_backend_cache",
    "store_for_build",
    "store_path",
]

log = logging.getLogger("runtimed.envs.bytecode")

#: The store's directory name under the daemon's cache dir.
STORE_DIR = "bytecode"
_TEMP_MARK = ".tmp-"
_GC_MARK = ".gc-"
#: Temp files older than this are leftovers of a killed build or GC.
TEMP_GRACE_S = 3600.0


#: Set to 0 (or false/no/off) to compile every env's bytecode on its own.
SHARE_ENV_VAR = "RUNTIMED_SHARE_BYTECODE"


def store_path(cache_dir: Path) -> Path:
    """The store of the runtimed cache at ``cache_dir``."""
    return cache_dir / STORE_DIR


def sharing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """False when ``RUNTIMED_SHARE_BYTECODE`` turns sharing off."""
    return environ.get(SHARE_ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def store_for_build(cache_dir: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The store builds under the runtimed cache ``cache_dir`` use, or None if sharing is off."""
    return store_path(cache_dir) if sharing_enabled(environ) else None


def store_for_backend_cache(backend_cache: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """:func:`store_for_build` from a backend's cache dir ``<cache>/backends/<name>``.

    None if ``backend_cache`` is not laid out that way (or sharing is off).
    """
    if backend_cache.parent.name != "backends":
        return None
    return store_for_build(backend_cache.parent.parent, environ)


def entry_path(store: str | os.PathLike[str], interpreter_tag: str, st: os.stat_result) -> str:
    """Where the ``.pyc`` for the source with stat ``st`` lives, for one interpreter (tag + magic).

    A plain string: it is computed for every source of every build (pathlib cost more
    than the links themselves)."""
    name = f"{st.st_dev:x}-{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}.pyc"
    return f"{os.fspath(store)}{os.sep}{interpreter_tag}{os.sep}{st.st_ino & 0xFF:02x}{os.sep}{name}"


def pyc_header_matches(pyc: str | os.PathLike[str], magic: bytes, st: os.stat_result) -> bool:
    """Whether ``pyc`` is a timestamp ``.pyc`` of ``magic`` for a source with stat ``st``.

    The same check CPython's loader makes (``importlib._bootstrap_external``).
    """
    try:
        with open(pyc, "rb") as f:
            header = f.read(16)
    except OSError:
        return False
    if len(header) < 16 or header[:4] != magic:
        return False
    flags, mtime, size = struct.unpack("<III", header[4:16])
    expected = ((st.st_mtime_ns // 10**9) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)
    return bool(flags == 0 and (mtime, size) == expected)


class DamagedEntry(Exception):
    """A store entry is not as published; it was removed (see :func:`link_entry`)."""


#: A ``.pyc`` shorter than this has no body after its 16-byte header.
_MIN_PYC_SIZE = 17


def _seal_ns(size: int) -> int:
    """The mtime (ns) of a published entry of ``size`` bytes: a time no write can set."""
    return size * 10**9


def entry_is_sealed(st: os.stat_result) -> bool:
    """Whether a store entry with stat ``st`` is as published (see the module docstring)."""
    return st.st_size >= _MIN_PYC_SIZE and st.st_mtime_ns == _seal_ns(st.st_size)


def _temp_name(path: str | os.PathLike[str], mark: str) -> str:
    """A name next to ``path`` that no other process or call uses."""
    return f"{os.fspath(path)}{mark}{os.getpid()}-{time.monotonic_ns()}"


def link_entry(entry: str | os.PathLike[str], pyc: str, *, exists: bool = True) -> bool:
    """Hardlink the store ``entry`` to ``pyc`` (replacing it atomically); False if unusable.

    Unusable: missing (or collected meanwhile), linked by nobody else (its source
    inode may have been reused; see the module docstring). Raises
    :class:`DamagedEntry` for an entry that is not sealed, after removing it, so that
    the caller's freshly compiled one replaces it. ``exists=False`` (``pyc`` is
    known to be absent) saves the temp name and rename.
    """
    try:
        st = os.stat(entry)
        if not entry_is_sealed(st):
            _discard(entry)
            raise DamagedEntry(f"{entry}: {st.st_size} bytes, mtime {st.st_mtime_ns} ns: not as published")
        if st.st_nlink < 2:
            return False
        if not exists:
            with contextlib.suppress(FileExistsError):  # appeared meanwhile: replace it below
                os.link(entry, pyc)
                return True
        temp = _temp_name(pyc, _TEMP_MARK)
        os.link(entry, temp)
    except FileNotFoundError:  # not in the store, or GC took it since
        return False
    try:
        os.replace(temp, pyc)
    except OSError:
        _unlink(temp)
        raise
    return True


def publish_entry(pyc: str, entry: str | os.PathLike[str]) -> None:
    """Make the env's freshly compiled ``pyc`` the store's ``entry`` (read-only, atomic).

    The caller has checked its header; its body was loaded by the compiler. It is
    sealed (mtime = size) before it gets the entry's name. A concurrent build may
    have published the same entry: the last rename wins, which is harmless (both
    are valid for the same source).
    """
    st = os.stat(pyc)
    os.chmod(pyc, 0o444)
    os.utime(pyc, ns=(st.st_atime_ns, _seal_ns(st.st_size)))
    entry = os.fspath(entry)
    os.makedirs(os.path.dirname(entry), exist_ok=True)
    temp = _temp_name(entry, _TEMP_MARK)
    os.link(pyc, temp)
    try:
        os.replace(temp, entry)
    except OSError:
        _unlink(temp)
        raise


@define(frozen=True)
class StoreGcResult:
    """What one store collection removed."""

    removed: int
    freed_bytes: int
    kept: int


def collect_store(store: Path, now: float | None = None) -> StoreGcResult:
    """Remove store entries no env links any more, and stale temp files.

    Race-safe against builds: an orphan is renamed away *before* it is deleted,
    so a build either linked it first (the link count shows it and the entry is
    put back) or finds it missing and compiles the file itself.
    """
    now = time.time() if now is None else now
    removed = freed = kept = 0
    if not store.is_dir():
        return StoreGcResult(0, 0, 0)
    for tag_dir in _subdirs(store):
        for fan_dir in _subdirs(tag_dir):
            with os.scandir(fan_dir) as entries:
                names = [(e.name, e.path) for e in entries if e.is_file(follow_symlinks=False)]
            for name, path in names:
                if _TEMP_MARK in name or _GC_MARK in name:
                    gone = _collect_leftover(Path(path), now)
                else:
                    gone = _collect_entry(Path(path))
                if gone is None:
                    kept += 1
                elif gone >= 0:
                    removed += 1
                    freed += gone
    return StoreGcResult(removed=removed, freed_bytes=freed, kept=kept)


def collect_store_logged(store: Path) -> StoreGcResult | None:
    """:func:`collect_store` for the daemon's periodic GC: logs, never raises."""
    try:
        result = collect_store(store)
    except OSError as exc:
        log.warning("bytecode store GC failed: %s", exc)
        return None
    if result.removed:
        log.info("gc: removed %d unused .pyc from the bytecode store (%d bytes)", result.removed, result.freed_bytes)
    return result


def _collect_entry(entry: Path) -> int | None:
    """Bytes freed if ``entry`` was an orphan and is gone, None if kept, -1 if it vanished."""
    try:
        if os.stat(entry).st_nlink > 1:
            return None
        aside = _temp_name(entry, _GC_MARK)
        os.rename(entry, aside)  # from now on no build can link it
    except FileNotFoundError:
        return -1
    st = os.stat(aside)
    if st.st_nlink > 1:  # a build linked it between the stat and the rename: put it back
        with contextlib.suppress(FileExistsError):  # a build published a new one meanwhile
            os.link(aside, entry)
        _unlink(aside)
        return None
    _unlink(aside)
    return st.st_blocks * 512


def _collect_leftover(path: Path, now: float) -> int | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return -1
    if now - st.st_mtime < TEMP_GRACE_S and now - st.st_ctime < TEMP_GRACE_S:
        return None  # perhaps in use by a running build or GC
    _unlink(path)
    return st.st_blocks * 512 if st.st_nlink == 1 else 0


def _subdirs(path: Path) -> list[Path]:
    with os.scandir(path) as entries:
        return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]


def _discard(entry: str | os.PathLike[str]) -> None:
    """Remove a damaged entry (envs linking it keep their link); a failure is only logged."""
    try:
        _unlink(entry)
    except OSError as exc:  # a read-only store: the build compiles for itself
        log.debug("cannot remove %s: %s", entry, exc)


def _unlink(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
