"""The conda side, with py-rattler alone: solve, install, read ``pixi.lock``, classify errors.

Repodata is cached by rattler under ``<cache>/repodata`` and packages under
``<cache>/pkgs`` (envs hardlink their files from it). A solve asks the channels
(rattler revalidates its cached repodata); when they cannot be reached it solves
from the cached repodata alone, so an offline machine still builds what its cache holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define

from runtimed.backend import BackendError, ErrorKind, run_sync

if TYPE_CHECKING:
    from rattler import PrefixRecord, RepoDataRecord

__all__ = [
    "LockedEnv",
    "classify",
    "current_platform",
    "install",
    "locked_environment",
    "prefix_records",
    "record_spec",
    "solve",
]

_NETWORK = ("error sending request", "connect", "dns error", "connection refused", "timed out", "unreachable")
_MISSING = re.compile(
    r"^[\s│├└─]*(\S+)[^\n]*?, for which no candidates were found|No candidates were found for (\S+)", re.M
)


def current_platform() -> str:
    """This machine's conda platform (``linux-64``, ``osx-arm64``, ...)."""
    from rattler import Subdir

    return str(Subdir.current())


def classify(exc: BaseException) -> BackendError:
    """A rattler error as a :class:`BackendError`: an unsolvable request names the missing package."""
    if isinstance(exc, BackendError):
        return exc
    text, kind = str(exc).strip(), type(exc).__name__
    if kind == "SolverError":
        match = _MISSING.search(text)
        package = (match.group(1) or match.group(2)).rstrip(".,:") if match else None
        return BackendError(ErrorKind.INVALID_PACKAGE, f"cannot solve the environment: {text}", package=package)
    if kind.startswith("Invalid") and kind.endswith(("SpecError", "NameError")):
        return BackendError(ErrorKind.INVALID_PACKAGE, f"invalid package spec: {text}")
    if any(marker in text.lower() for marker in _NETWORK):
        return BackendError(ErrorKind.NETWORK, f"cannot reach a channel: {text}")
    return BackendError(ErrorKind.SETUP_FAILED, f"{kind}: {text}")


def solve(
    channels: Sequence[str],
    specs: Sequence[str],
    cache_dir: Path,
    *,
    locked: Sequence[RepoDataRecord] = (),
    pinned: Sequence[RepoDataRecord] = (),
) -> list[RepoDataRecord]:
    """Solve ``specs`` for this platform, preferring the ``locked`` records and keeping the ``pinned`` ones."""
    import rattler
    from rattler import Channel, Gateway, SourceConfig, Subdir, VirtualPackage

    def attempt(cache_action: Any) -> list[RepoDataRecord]:
        gateway = Gateway(cache_dir=cache_dir / "repodata", default_config=SourceConfig(cache_action=cache_action))
        return run_sync(
            rattler.solve(
                sources=[Channel(os.path.expanduser(c)) for c in channels],
                specs=list(specs),
                gateway=gateway,
                platforms=[Subdir.current(), Subdir("noarch")],
                locked_packages=list(locked) or None,
                pinned_packages=list(pinned) or None,
                virtual_packages=VirtualPackage.detect(),
            )
        )

    try:
        return attempt("cache-or-fetch")
    except Exception as exc:
        # rattler 0.28 rejects a 304 carrying no ETag/Last-Modified (a static file server's)
        fallback = "no-cache" if "304 Not Modified" in str(exc) else "force-cache-only"
        error = classify(exc)
        if fallback == "force-cache-only" and error.kind != ErrorKind.NETWORK:
            raise error from exc
        try:
            return attempt(fallback)
        except Exception:
            raise error from exc


def prefix_records(prefix: Path) -> list[PrefixRecord]:
    """The conda records installed in ``prefix``."""
    from rattler import PrefixRecord

    return [PrefixRecord.from_path(p) for p in sorted((prefix / "conda-meta").glob("*.json"))]


def install(records: Sequence[RepoDataRecord], prefix: Path, cache_dir: Path) -> None:
    """Make ``prefix`` hold exactly ``records`` (what it holds already and matches is kept)."""
    import rattler

    installed = prefix_records(prefix) if (prefix / "conda-meta").is_dir() else None
    try:
        run_sync(
            rattler.install(
                list(records),
                target_prefix=prefix,
                cache_dir=cache_dir / "pkgs",
                installed_packages=installed,
                show_progress=False,
            )
        )
    except Exception as exc:
        raise classify(exc) from exc


def record_spec(record: RepoDataRecord) -> str:
    """The exact match spec of a record: ``name ==version build``."""
    return f"{record.name.normalized} =={record.version} {record.build}"


@define(frozen=True)
class LockedPypi:
    name: str  # normalized
    requirement: str  # ``name @ location``


@define(frozen=True)
class LockedEnv:
    """The ``default`` environment of a ``pixi.lock`` for this platform."""

    conda: tuple[RepoDataRecord, ...]
    pypi: tuple[LockedPypi, ...]

    @property
    def conda_names(self) -> set[str]:
        return {r.name.normalized for r in self.conda}


def locked_environment(lock: Path) -> LockedEnv:
    """What ``lock`` holds for this platform; ``ValueError`` if it cannot say."""
    from packaging.utils import canonicalize_name
    from rattler import LockFile

    try:
        env = LockFile.from_path(lock).environment("default")
    except Exception as exc:
        raise ValueError(f"{lock}: not a readable lock file: {exc}") from exc
    here = current_platform()
    # the lock's own platform object: a standalone LockPlatform makes rattler panic
    platform = next((p for p in env.platforms() if p.name == here), None) if env else None
    if env is None or platform is None:
        raise ValueError(f"{lock} locks no default environment for {here} (run `pixi lock`)")
    pypi = tuple(
        LockedPypi(str(canonicalize_name(p.name)), f"{p.name} @ {_location(p.location, lock.parent)}")
        for p in env.pypi_packages_for_platform(platform) or []
    )
    return LockedEnv(tuple(env.conda_repodata_records_for_platform(platform) or []), pypi)


def _location(location: str, root: Path) -> str:
    """A locked PyPI package's location as a URL (paths are relative to the lock's directory)."""
    return location if "://" in location else (root / location).resolve().as_uri()
