"""Repairing directories that their owner cannot enter (left by earlier runtimed versions).

Earlier daemons set the process umask to 0177 while their workers started, so every
directory the workers (and the uv they ran) created was ``drw-------``: its owner can
list it but not enter it. :func:`repair_tree` finds exactly that pattern, only in
directories of the current user, never following a symlink, and gives each the
search bits a normal directory of its mode would have (``u+x``, plus ``g+x``/``o+x``
where group/others may read). :func:`repair_once` does it once per tree, recorded by
a stamp file, so later starts cost one ``stat``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

from attrs import define

__all__ = ["Repair", "repair_once", "repair_tree", "repaired_mode"]

STAMP_PREFIX = "modes-repaired-"


@define(frozen=True)
class Repair:
    """What a walk of ``root`` did."""

    root: Path
    checked: int = 0  # directories looked at
    repaired: int = 0  # directories given back their search bits
    not_ours: int = 0  # directories of another user, left alone (and not entered)
    errors: int = 0  # directories that could not be read or changed

    def summary(self) -> str:
        return (
            f"{self.root}: gave {self.repaired} of {self.checked} directories back the search bit their owner "
            f"lacked (an earlier runtimed's umask); {self.not_ours} of other users left alone, {self.errors} errors"
        )


def repaired_mode(mode: int) -> int | None:
    """The mode a damaged directory should have, or None if ``mode`` is not damaged
    (damaged: its owner may read it but not search it)."""
    if not mode & stat.S_IRUSR or mode & stat.S_IXUSR:
        return None
    mode |= stat.S_IXUSR
    if mode & stat.S_IRGRP:
        mode |= stat.S_IXGRP
    if mode & stat.S_IROTH:
        mode |= stat.S_IXOTH
    return stat.S_IMODE(mode)


def _fix(path: str, st: os.stat_result) -> bool:
    """chmod ``path`` (a directory, not followed if it became a symlink) to its repaired mode."""
    mode = repaired_mode(st.st_mode)
    if mode is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise OSError(f"{path} changed while being repaired")
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return True


def repair_tree(root: Path) -> Repair:
    """Repair every damaged directory of the current user in ``root`` (itself included)."""
    uid = os.geteuid()
    checked = repaired = not_ours = errors = 0
    try:
        top = os.lstat(root)
    except OSError:
        return Repair(root)
    if not stat.S_ISDIR(top.st_mode):
        return Repair(root)
    stack: list[tuple[str, os.stat_result]] = [(os.fspath(root), top)]
    while stack:
        path, st = stack.pop()
        checked += 1
        if st.st_uid != uid:
            not_ours += 1
            continue
        try:
            repaired += _fix(path, st)
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, entry.stat(follow_symlinks=False)))
        except OSError:
            errors += 1
    return Repair(root, checked, repaired, not_ours, errors)


def _stamp(root: Path, stamp_dir: Path) -> Path:
    digest = hashlib.sha256(os.fsencode(os.path.abspath(root))).hexdigest()[:16]
    return stamp_dir / f"{STAMP_PREFIX}{digest}"


def repair_once(root: Path, stamp_dir: Path) -> Repair | None:
    """:func:`repair_tree` unless a stamp in ``stamp_dir`` says ``root`` was done (None).
    The stamp is written only after a walk without errors."""
    stamp = _stamp(root, stamp_dir)
    if stamp.exists():
        return None
    result = repair_tree(root)
    if result.errors == 0:
        with contextlib.suppress(OSError):
            stamp_dir.mkdir(parents=True, exist_ok=True)
            stamp.write_text(f"{os.path.abspath(root)}\n")
    return result
