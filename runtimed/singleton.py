"""One daemon per cache dir: the lock, ``daemon.json`` and the socket file.

The lock (filelock) is the truth; ``daemon.json`` tells clients where the daemon
listens and is written only once the socket listens; a socket file left behind by
a killed daemon is replaced, but only if it really is a socket.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import filelock

from runtimed.envdir import write_json_atomic
from runtimed.paths import Paths, ensure_private_dir

__all__ = ["AlreadyRunning", "DaemonLock", "SocketPathError", "prepare_socket_path", "read_daemon_state"]


class AlreadyRunning(Exception):
    """Another daemon holds the lock; ``state`` is its daemon.json (may be None while it starts)."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        super().__init__("runtimed is already running")
        self.state = state


class SocketPathError(Exception):
    """The socket path is taken by something that is not a socket."""


def read_daemon_state(paths: Paths) -> dict[str, Any] | None:
    try:
        data = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def prepare_socket_path(socket_path: Path) -> None:
    """Make the socket's directory private and clear a stale socket (we hold the lock)."""
    ensure_private_dir(socket_path.parent)
    try:
        st = os.lstat(socket_path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketPathError(f"{socket_path} exists and is not a socket; refusing to remove it")
    os.unlink(socket_path)


class DaemonLock:
    """The singleton lock plus the daemon.json it guards."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        # Keep the lock file: unlinking it on release would let two daemons lock two inodes.
        self._lock = filelock.FileLock(str(paths.lock), timeout=0, thread_local=False, preserve_lock_file=True)

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunning`."""
        ensure_private_dir(self.paths.cache_dir)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise AlreadyRunning(read_daemon_state(self.paths)) from None

    def publish(self, info: dict[str, Any]) -> None:
        """Write daemon.json (call once the socket listens)."""
        write_json_atomic(self.paths.state, info)

    def release(self) -> None:
        """Remove daemon.json and the socket, then drop the lock."""
        for path in (self.paths.state, self.paths.socket):
            try:
                if path == self.paths.socket and not stat.S_ISSOCK(os.lstat(path).st_mode):
                    continue
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._lock.release()
