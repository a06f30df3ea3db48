"""Files written atomically (temp file, optional fsync, rename), ids and timestamps.

Every layer may use these; they know nothing of envs, pools or the daemon.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["fsync_path", "new_env_id", "now_iso", "write_durably", "write_json_atomic", "write_text_atomic"]


def new_env_id() -> str:
    """A short unique id, sortable by creation time."""
    return f"{int(time.time()):x}{secrets.token_hex(4)}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file + fsync + rename: readers see the
    old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, text.encode("utf-8"))


def _open_temp(path: Path, prepared: Path | None) -> tuple[str, int]:
    """A temp file beside ``path``, open for writing: ``prepared`` (an empty file made
    in advance: opening one costs a tenth of creating one) if it is there, else a new one."""
    if prepared is not None:
        with contextlib.suppress(OSError):
            fd = os.open(prepared, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            if os.fstat(fd).st_size == 0:  # no O_TRUNC: truncating is journalled even when empty
                return str(prepared), fd
            os.close(fd)
    tmp = f"{path.parent}{os.sep}.{path.name}.{secrets.token_hex(4)}.tmp"
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)


def write_durably(path: Path, data: bytes, *, sync: bool = True, prepared: Path | None = None) -> None:
    """Temp file in the same dir, fsync (unless ``sync`` is False), atomic rename."""
    tmp, fd = _open_temp(path, prepared)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def fsync_path(path: Path) -> None:
    """Flush a file or directory (a directory: the entries renamed into or out of it)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
