"""Watch the config file and reload it, debounced; SIGHUP reloads at once."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["ConfigWatcher", "file_signature"]

log = logging.getLogger("runtimed.config")


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(mtime_ns, size, inode): changes on every edit, including atomic replaces."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigWatcher:
    """Polls ``path`` every ``interval`` seconds; calls ``reload`` once an edit has
    settled (the file unchanged for one more interval), so an editor's several
    writes cause one reload."""

    def __init__(self, path: Path, reload: Callable[[], None], interval: float) -> None:
        self.path = path
        self.reload = reload
        self.interval = interval
        self._seen = file_signature(path)

    async def run(self) -> None:
        pending: tuple[int, int, int] | None = None
        changed = False
        while True:
            await asyncio.sleep(self.interval)
            current = file_signature(self.path)
            if current != self._seen:
                self._seen, pending, changed = current, current, True
                continue  # wait for it to settle
            if changed and current == pending:
                changed = False
                log.info("config file %s changed; reloading", self.path)
                self.reload()
