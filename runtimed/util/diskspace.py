"""A full disk named as the cause of a failure that does not say so.

A tool that runs out of space often reports a follow-on error instead: uv, copying
files in parallel, may fail with ``Failed to read `tornado==6.6.1` … METADATA: No such
file or directory (os error 2)`` because the write of that file failed with ENOSPC in
another thread. A build failure is therefore checked against the free space of the
file system it wrote to, while its partial env is still on disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["LOW_SPACE_BYTES", "free_bytes", "low_space_note"]

#: Below this much free space (for this user) a failed write is the likely cause.
LOW_SPACE_BYTES = 32 * 1024**2


def free_bytes(path: Path) -> int | None:
    """Free space for this user on the file system of ``path`` (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _human(n: int) -> str:
    return f"{n // 1024} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def low_space_note(path: Path) -> str | None:
    """``disk full: …`` when the file system of ``path`` is (nearly) full, else None."""
    free = free_bytes(path)
    if free is None or free >= LOW_SPACE_BYTES:
        return None
    return f"disk full: {_human(free)} free on the file system of {path}"
