"""Reading the daemon's rotating log: the last lines, and following it across rotation.

The daemon writes ``CACHE_DIR/runtimed.log`` with a size-rotating handler:
``runtimed.log`` is the newest, then ``runtimed.log.1`` … ``runtimed.log.N``.
Nothing here needs a daemon.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["LogFollower", "last_lines", "log_files"]

_BLOCK = 64 * 1024


def log_files(log: Path) -> list[Path]:
    """The log and its rotated files that exist, newest first."""
    files = [log] if log.exists() else []
    index = 1
    while (rotated := log.with_name(f"{log.name}.{index}")).exists():
        files.append(rotated)
        index += 1
    return files


def _tail(path: Path, n: int, end: int | None = None) -> list[bytes]:
    """The last ``n`` lines of one file (of its first ``end`` bytes), reading backwards in blocks."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return []
    with f:
        size = f.seek(0, os.SEEK_END)
        end = size if end is None else min(end, size)
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= n:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    lines = data.splitlines(keepends=True)
    return lines[-n:] if n else []


def last_lines(log: Path, n: int, *, current_end: int | None = None) -> list[bytes]:
    """The last ``n`` lines of the log, reaching into rotated files when the
    current one is shorter (oldest first, each ending in a newline).

    ``current_end`` stops reading the current file at that offset (where a
    :class:`LogFollower` took over).
    """
    collected: list[bytes] = []
    for path in log_files(log):
        if len(collected) >= n:
            break
        lines = _tail(path, n - len(collected), current_end if path == log else None)
        if lines and not lines[-1].endswith(b"\n"):
            lines[-1] += b"\n"
        collected = lines + collected
    return collected


class LogFollower:
    """Follow a log file by name, like ``tail -F``.

    :meth:`read` returns whatever was appended since the last call. When the file is
    rotated (the name now points at another inode) the rest of the old file is read
    first, then the new one from its start; when it is truncated in place, reading
    restarts at its beginning. A file that does not exist yet is waited for.
    Lines of a file rotated away *twice* between two reads are not seen (at the
    default 5 MiB per file that is far more log than the daemon writes).
    """

    def __init__(self, log: Path, *, from_end: bool = True) -> None:
        self.log = log
        self._file: BinaryIO | None = None
        self._ino: tuple[int, int] | None = None
        self._open(seek_end=from_end)

    def _open(self, *, seek_end: bool) -> None:
        try:
            f = self.log.open("rb")
        except FileNotFoundError:
            return
        st = os.fstat(f.fileno())
        self._file, self._ino = f, (st.st_dev, st.st_ino)
        if seek_end:
            f.seek(0, os.SEEK_END)

    @property
    def position(self) -> int | None:
        """The offset in the current file from which :meth:`read` continues (None: no file yet)."""
        return self._file.tell() if self._file is not None else None

    def read(self) -> bytes:
        if self._file is None:
            self._open(seek_end=False)
            if self._file is None:
                return b""
        assert self._file is not None
        chunk = self._file.read()
        try:
            st = os.stat(self.log)
        except FileNotFoundError:
            return chunk  # between the rename and the new file: keep the old one
        if (st.st_dev, st.st_ino) != self._ino:
            chunk += self._file.read()  # whatever landed just before the rename
            self.close()
            self._open(seek_end=False)
            if self._file is not None:
                chunk += self._file.read()
        elif st.st_size < self._file.tell():
            self._file.seek(0)  # truncated in place
            chunk += self._file.read()
        return chunk

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
