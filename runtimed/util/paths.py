"""Where runtimed keeps things on disk, with the ``RUNTIMED_*`` overrides."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

import platformdirs
from attrs import define

__all__ = [
    "ENV_DIR_PREFIX",
    "SUN_PATH_MAX",
    "Paths",
    "UnsafePathError",
    "check_socket_dir",
    "ensure_private_dir",
    "fallback_socket_dir",
    "private_dir_problem",
    "socket_dir_problem",
]

ENV_DIR_PREFIX = "runtimed-"
# sun_path is 108 bytes on Linux (104 on macOS) including the terminating NUL.
SUN_PATH_MAX = 103


class UnsafePathError(OSError):
    """A directory runtimed would use is not safe: another user owns it or can write to it."""


def _owner_problem(path: Path, st: os.stat_result) -> str | None:
    if st.st_uid != os.geteuid():
        return f"{path} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}); make it private (chmod 700)"
    return None


def ensure_private_dir(path: Path) -> Path:
    """One of runtimed's own private directories (the cache dir, the fallback socket dir).

    Created 0700 if missing. If it exists, it (and a symlink leading to it) must be owned
    by the current user and the directory must not be writable by group or others, else
    :class:`UnsafePathError`: someone else could plant or replace files in it. Only then
    is it tightened to 0700 (its owner is us, so that is ours to change).
    """
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    problem = private_dir_problem(path)
    if problem:
        raise UnsafePathError(problem)
    if stat.S_IMODE(os.stat(path).st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def private_dir_problem(path: Path) -> str | None:
    """Why the existing ``path`` cannot be one of runtimed's private directories
    (:func:`ensure_private_dir` refuses it), or None. Changes nothing (``doctor``
    asks it too); OSError if ``path`` cannot be looked at (e.g. it does not exist)."""
    link = os.lstat(path)
    if stat.S_ISLNK(link.st_mode) and link.st_uid != os.geteuid():
        return f"{path} is a symlink owned by uid {link.st_uid}, not by you; refusing to use it"
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} exists and is not a directory"
    problem = _owner_problem(path, st)
    return f"refusing to use {problem}" if problem else None


def check_socket_dir(path: Path) -> None:
    """Make sure the socket can live in ``path`` (a directory that is not runtimed's own).

    A missing directory is created 0700. An existing one is used as it is, never
    chmod'ed, if it is owned by the current user and not writable by group or others,
    or if it is sticky like ``/tmp`` (others cannot then remove or rename our socket,
    which is created 0600; clients check the server's uid anyway). Anything else,
    e.g. a world-writable non-sticky directory or one owned by another user, raises
    :class:`UnsafePathError`.
    """
    try:
        path.mkdir(mode=0o700, parents=True)
        return
    except FileExistsError:
        pass
    problem = socket_dir_problem(path)
    if problem:
        raise UnsafePathError(problem)


def socket_dir_problem(path: Path) -> str | None:
    """Why the existing ``path`` cannot hold the socket (:func:`check_socket_dir`
    refuses it), or None. Changes nothing; OSError if it cannot be looked at."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} exists and is not a directory"
    if st.st_mode & stat.S_ISVTX:
        return None
    problem = _owner_problem(path, st)
    return f"refusing to put the socket in {problem}" if problem else None


def fallback_socket_dir() -> Path:
    """Where sockets go when the cache dir's path is too long for ``sun_path``."""
    return Path(tempfile.gettempdir()) / f"runtimed-{os.geteuid()}"


@define(frozen=True)
class Paths:
    """The on-disk layout of one runtimed instance (see DESIGN.md)."""

    cache_dir: Path
    socket: Path
    config_file: Path

    @classmethod
    def resolve(
        cls,
        cache_dir: str | os.PathLike[str] | None = None,
        socket: str | os.PathLike[str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
    ) -> Paths:
        """Explicit arguments win, then ``RUNTIMED_CACHE_DIR`` / ``RUNTIMED_SOCKET`` /
        ``RUNTIMED_CONFIG``, then the platformdirs defaults."""
        cache = Path(
            cache_dir or os.environ.get("RUNTIMED_CACHE_DIR") or platformdirs.user_cache_dir("runt")
        ).absolute()
        sock = socket or os.environ.get("RUNTIMED_SOCKET")
        config = Path(
            config_file
            or os.environ.get("RUNTIMED_CONFIG")
            or Path(platformdirs.user_config_dir("runtimed")) / "config.toml"
        )
        return cls(
            cache_dir=cache,
            socket=Path(sock).absolute() if sock else _default_socket(cache),
            config_file=config,
        )

    @property
    def socket_dir_is_private(self) -> bool:
        """The socket lives in a directory runtimed owns (cache dir or fallback dir)."""
        return self.socket.parent in (self.cache_dir, fallback_socket_dir())

    @property
    def lock(self) -> Path:
        return self.cache_dir / "daemon.lock"

    @property
    def state(self) -> Path:
        return self.cache_dir / "daemon.json"

    @property
    def log(self) -> Path:
        return self.cache_dir / "runtimed.log"

    @property
    def envs(self) -> Path:
        return self.cache_dir / "envs"

    @property
    def trash(self) -> Path:
        """Envs being deleted are renamed here first, so deletion looks atomic."""
        return self.cache_dir / "trash"

    def backend_cache(self, backend: str) -> Path:
        """A backend's own cache (package caches, repodata) under the runtimed cache."""
        return self.cache_dir / "backends" / backend

    def env_path(self, backend: str, env_id: str) -> Path:
        return self.envs / f"{ENV_DIR_PREFIX}{backend}-{env_id}"


def _default_socket(cache: Path) -> Path:
    sock = cache / "runtimed.sock"
    if len(os.fsencode(sock)) <= SUN_PATH_MAX:
        return sock
    # Too long for sun_path: a short, per-user, per-cache-dir path instead.
    digest = hashlib.sha256(os.fsencode(cache)).hexdigest()[:16]
    return fallback_socket_dir() / f"{digest}.sock"
