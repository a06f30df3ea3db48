"""One daemon per cache dir: the lock, ``daemon.json`` and the socket file.

The lock (filelock) is the truth; ``daemon.json`` tells clients where the daemon
listens and is written only once the socket listens; a socket file left behind by
a killed daemon is replaced, but only if it really is a socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import filelock
import psutil

from runtimed.util.files import write_json_atomic
from runtimed.util.liveness import same_process
from runtimed.util.paths import SUN_PATH_MAX, Paths, check_socket_dir, ensure_private_dir

__all__ = [
    "AlreadyRunning",
    "DaemonLock",
    "LockPathError",
    "SocketPathError",
    "find_daemon",
    "not_a_regular_file",
    "prepare_socket_path",
    "read_daemon_state",
    "remove_stale_state",
]


class AlreadyRunning(Exception):
    """Another daemon holds the lock; ``state`` is its daemon.json (may be None while it starts)."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        super().__init__("runtimed is already running")
        self.state = state


class SocketPathError(Exception):
    """The socket path cannot be used: too long, or taken by something that is not our socket."""


class LockPathError(Exception):
    """``daemon.lock`` or ``daemon.json`` is something other than a regular file."""


def read_daemon_state(paths: Paths) -> dict[str, Any] | None:
    try:
        data = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def prepare_socket_path(paths: Paths) -> None:
    """Check the socket's path and directory, and clear a stale socket (we hold the lock).

    runtimed's own socket dir (the cache dir or the fallback dir) must be private
    (:func:`~runtimed.util.paths.ensure_private_dir`); any other directory is used as it
    is, never chmod'ed, and only if it is safe (:func:`~runtimed.util.paths.check_socket_dir`).
    Raises :class:`SocketPathError` or :class:`~runtimed.util.paths.UnsafePathError`.
    """
    socket_path = paths.socket
    size = len(os.fsencode(socket_path))
    if size > SUN_PATH_MAX:
        raise SocketPathError(
            f"socket path {socket_path} is {size} bytes, longer than the {SUN_PATH_MAX} a Unix socket "
            "allows; set a shorter RUNTIMED_SOCKET / --socket"
        )
    if paths.socket_dir_is_private:
        ensure_private_dir(socket_path.parent)
    else:
        check_socket_dir(socket_path.parent)
    try:
        st = os.lstat(socket_path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketPathError(f"{socket_path} exists and is not a socket; refusing to remove it")
    if st.st_uid != os.geteuid():
        raise SocketPathError(f"{socket_path} is a socket of uid {st.st_uid}, not yours; refusing to replace it")
    os.unlink(socket_path)


def not_a_regular_file(path: Path) -> str | None:
    """Why ``path`` (``daemon.lock``, ``daemon.json``) stops a daemon from starting:
    it exists and is not a regular file (``doctor`` asks it too). None if fine or absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"{path} exists and is not a regular file; remove it (no daemon can use it)"
    return None


def _check_regular_file(path: Path) -> None:
    problem = not_a_regular_file(path)
    if problem:
        raise LockPathError(problem)


class DaemonLock:
    """The singleton lock plus the daemon.json it guards."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        # Keep the lock file: unlinking it on release would let two daemons lock two inodes.
        self._lock = filelock.FileLock(str(paths.lock), timeout=0, thread_local=False, preserve_lock_file=True)

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunning` (:class:`LockPathError` if
        daemon.lock or daemon.json is not a regular file)."""
        ensure_private_dir(self.paths.cache_dir)
        _check_regular_file(self.paths.lock)
        _check_regular_file(self.paths.state)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise AlreadyRunning(read_daemon_state(self.paths)) from None

    def publish(self, info: dict[str, Any]) -> None:
        """Write daemon.json (call once the socket listens)."""
        write_json_atomic(self.paths.state, info)

    def release(self) -> None:
        """Remove daemon.json and the socket, then drop the lock."""
        for path, is_ours in ((self.paths.state, stat.S_ISREG), (self.paths.socket, stat.S_ISSOCK)):
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if is_ours(st.st_mode) and st.st_uid == os.geteuid():
                    os.unlink(path)
        self._lock.release()


# ---------------------------------------------------------------- which process is the daemon


def _lock_holders(lock: Path) -> set[int] | None:
    """Pids holding a flock on ``lock`` according to /proc/locks (None where there is none)."""
    try:
        ino = os.stat(lock).st_ino
    except OSError:
        return set()
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    pids = set()
    for line in text.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:56789 0 EOF"; waiters have "->" as the 2nd field.
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        with contextlib.suppress(ValueError, IndexError):
            if int(fields[5].rsplit(":", 1)[1]) == ino:
                pids.add(int(fields[4]))
    return pids


def _has_open(pid: int, path: Path) -> bool:
    """Does process ``pid`` have ``path`` open (the lock's inode, by its fd table)?"""
    try:
        want = os.stat(path)
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                st = os.stat(fd)
                if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
                    return True
    except OSError:
        return False
    return False


def _lock_is_held(lock: Path) -> bool:
    """Portable probe: is someone holding an exclusive flock on ``lock``?"""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops our shared lock at once
    return False


def _lock_held(lock: Path, holders: set[int] | None) -> bool:
    return bool(holders) or _lock_is_held(lock)


def find_daemon(paths: Paths) -> psutil.Process | None:
    """The process proven to be this cache dir's daemon, or None.

    The proof is the lock, never a pid alone: either the process holds the flock on
    ``daemon.lock`` (Linux: /proc/locks) and has that file open; or (elsewhere, or when
    /proc/locks cannot name the holder) the lock is held and the process matches both the
    pid and the create time recorded in daemon.json.
    """
    state = read_daemon_state(paths) or {}
    holders = _lock_holders(paths.lock)
    for holder in sorted(holders or ()):
        if _has_open(holder, paths.lock):
            with contextlib.suppress(psutil.Error):
                return psutil.Process(holder)
    pid, recorded = state.get("pid"), state.get("create_time")
    if not isinstance(pid, int) or not isinstance(recorded, (int, float)) or not _lock_held(paths.lock, holders):
        return None
    return same_process(pid, float(recorded))  # None: the pid was reused, or is gone


def remove_stale_state(paths: Paths) -> bool:
    """Delete daemon.json if no process holds the lock (a killed daemon left it)."""
    if _lock_held(paths.lock, _lock_holders(paths.lock)):
        return False
    try:
        st = os.lstat(paths.state)
        if stat.S_ISREG(st.st_mode):
            os.unlink(paths.state)
            return True
    except OSError:
        pass
    return False
