"""Where runtimed keeps things on disk, with the ``RUNTIMED_*`` overrides."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import platformdirs
from attrs import define

__all__ = ["ENV_DIR_PREFIX", "SUN_PATH_MAX", "Paths", "ensure_private_dir"]

ENV_DIR_PREFIX = "runtimed-"
# sun_path is 108 bytes on Linux (104 on macOS) including the terminating NUL.
SUN_PATH_MAX = 103


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700; it must be ours."""
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid():
        os.chmod(path, 0o700)
    return path


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
    return Path(tempfile.gettempdir()) / f"runtimed-{os.getuid()}" / f"{digest}.sock"
