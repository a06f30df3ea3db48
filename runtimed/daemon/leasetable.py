"""The handed-out envs and the disk size of every env the daemon tracks: one owner.

The supervisor adds a lease when it hands an env out; a release, a holder that
exited, or a GC sweep removes it. Sizes are measured in the background and
forgotten when an env is deleted or kept (then the client owns it). Nothing else
changes these maps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from attrs import define

from runtimed.core.records import Lease

__all__ = ["LeaseTable", "LeasedEnv"]


@define(frozen=True)
class LeasedEnv:
    backend: str
    lease: Lease


class LeaseTable:
    """Leases by env path, and sizes by env path (pooled or leased)."""

    def __init__(self) -> None:
        self._leases: dict[Path, LeasedEnv] = {}
        self._sizes: dict[Path, int] = {}

    def add(self, path: Path, backend: str, lease: Lease) -> None:
        """``path`` is handed out to ``lease``'s holder (a ``keep`` lease is forgotten at once)."""
        if lease.keep:
            self.kept(path)
        else:
            self._leases[path] = LeasedEnv(backend, lease)

    def kept(self, path: Path) -> None:
        """The client owns ``path`` for good: runtimed forgets it."""
        self._leases.pop(path, None)
        self._sizes.pop(path, None)

    def release(self, path: Path) -> LeasedEnv | None:
        """Forget the lease on ``path`` (the caller deletes the env); None if not leased."""
        self._sizes.pop(path, None)
        return self._leases.pop(path, None)

    def holder_gone(self, alive: Callable[[Lease], bool]) -> list[Path]:
        """Remove and return the leases whose holder has exited (the caller deletes them)."""
        gone = [path for path, entry in self._leases.items() if not alive(entry.lease)]
        for path in gone:
            self.release(path)
        return gone

    def get(self, path: Path) -> LeasedEnv | None:
        return self._leases.get(path)

    def __contains__(self, path: object) -> bool:
        return path in self._leases

    def __len__(self) -> int:
        return len(self._leases)

    def paths(self) -> frozenset[Path]:
        return frozenset(self._leases)

    def of_backend(self, backend: str) -> list[Path]:
        return [path for path, entry in self._leases.items() if entry.backend == backend]

    # ------------------------------------------------------------ sizes

    def measured(self, path: Path, size: int) -> None:
        self._sizes[path] = size

    def forget_size(self, path: Path) -> None:
        self._sizes.pop(path, None)

    def disk_bytes(self, paths: Iterable[Path]) -> int:
        return sum(self._sizes.get(p, 0) for p in paths)
