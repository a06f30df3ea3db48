"""Solving specs against conda channels with rattler, offline first.

Repodata is cached by rattler's :class:`~rattler.Gateway` under the backend's cache
(``<cache>/repodata``). A solve goes:

1. **Local channels only** (directories, ``file://``): one solve; nothing to cache.
2. **Offline**, when these channels were fetched online less than ``ttl_s`` ago:
   ``cache_action="force-cache-only"`` (no request is made at all, whatever the
   HTTP cache headers say). Any failure - a cache miss for a subdir or a package
   shard, or an answer the cached repodata cannot give - falls through to 3.
3. **Online**: ``cache_action="cache-or-fetch"`` (rattler revalidates what its
   HTTP cache headers say is stale); success stamps the channels as fetched. A
   ``304 Not Modified`` that rattler rejects (see
   :func:`runtimed_conda.errors.is_not_modified`) leads to one unconditional
   re-fetch (``refetched``). If the network is down
   and 2 was not tried (the cache is older than ``ttl_s``), the stale cache is
   tried before giving up: an offline machine still builds whatever its cache
   can satisfy.

So a solve that cached repodata can satisfy never needs the network, and repodata
is refreshed at most every ``ttl_s`` (new package versions then show up).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from attrs import define

from runtimed.backend import ErrorKind, run_sync
from runtimed_conda.errors import classify_error, is_not_modified
from runtimed_conda.specs import channel_source, is_local_channel

if TYPE_CHECKING:
    from rattler import Gateway, RepoDataRecord

__all__ = ["DEFAULT_REPODATA_TTL_S", "RepodataCache", "SolveResult", "solve_specs"]

log = logging.getLogger(__name__)

#: How long repodata fetched online is used without asking the channel again.
DEFAULT_REPODATA_TTL_S = 24 * 3600.0

CacheAction = Literal["cache-or-fetch", "force-cache-only", "no-cache"]
SolveMode = Literal["local", "offline", "online", "refetched", "stale-cache"]


class RepodataCache:
    """rattler's repodata cache directory plus a "last fetched online" stamp per channel set."""

    def __init__(self, path: Path, ttl_s: float = DEFAULT_REPODATA_TTL_S) -> None:
        self.path = path
        self.ttl_s = ttl_s

    def gateway(self, cache_action: CacheAction) -> Gateway:
        """A gateway on this cache (one per solve: gateways are cheap, the disk cache is shared)."""
        from rattler import Gateway, SourceConfig

        return Gateway(cache_dir=self.path, default_config=SourceConfig(cache_action=cache_action))

    def _stamp(self, channels: Sequence[str]) -> Path:
        key = hashlib.sha256("\0".join(sorted(channels)).encode()).hexdigest()[:16]
        return self.path / "runtimed-fetched" / key

    def fetched_at(self, channels: Sequence[str]) -> float | None:
        """When these channels were last fetched online (epoch seconds), if ever."""
        try:
            return self._stamp(channels).stat().st_mtime
        except OSError:
            return None

    def is_fresh(self, channels: Sequence[str]) -> bool:
        fetched = self.fetched_at(channels)
        return fetched is not None and time.time() - fetched < self.ttl_s

    def mark_fetched(self, channels: Sequence[str]) -> None:
        stamp = self._stamp(channels)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(" ".join(sorted(channels)) + "\n", encoding="utf-8")


@define(frozen=True)
class SolveResult:
    """The records to install and how the repodata was obtained."""

    records: list[RepoDataRecord]
    mode: SolveMode


async def _solve(
    channels: Sequence[str], specs: Sequence[str], gateway: Gateway, locked: Sequence[RepoDataRecord] = ()
) -> list[RepoDataRecord]:
    import rattler
    from rattler import Channel, Subdir, VirtualPackage

    return await rattler.solve(
        sources=[Channel(c) for c in channels],
        specs=list(specs),
        gateway=gateway,
        platforms=[Subdir.current(), Subdir("noarch")],
        locked_packages=list(locked) or None,
        virtual_packages=VirtualPackage.detect(),
    )


def solve_specs(
    channels: Sequence[str],
    specs: Sequence[str],
    cache: RepodataCache,
    progress: Callable[[str], None] = lambda _m: None,
    locked: Sequence[RepoDataRecord] = (),
) -> SolveResult:
    """Solve ``specs`` for this platform and ``noarch``, keeping the ``locked`` records
    where it can; raise a classified BackendError."""
    sources = [channel_source(c) for c in channels]
    remote = [c for c in sources if not is_local_channel(c)]

    def attempt(action: CacheAction) -> list[RepoDataRecord]:
        return run_sync(_solve(sources, specs, cache.gateway(action), locked))

    if not remote:
        progress("solving (local channels)")
        try:
            return SolveResult(attempt("cache-or-fetch"), "local")
        except Exception as exc:
            raise classify_error(exc) from exc

    tried_offline = cache.is_fresh(remote)
    if tried_offline:
        progress("solving offline (cached repodata)")
        try:
            return SolveResult(attempt("force-cache-only"), "offline")
        except Exception as exc:  # a cache miss or stale repodata: ask the channels
            log.info("offline solve failed, going online: %s", _first_line(exc))

    progress("solving online")
    try:
        records = attempt("cache-or-fetch")
    except Exception as exc:
        if is_not_modified(str(exc)):
            # rattler 0.28 rejects a 304 that carries no ETag/Last-Modified (as
            # `python -m http.server` sends): fetch again without a conditional request.
            progress("solving online (re-fetching repodata)")
            try:
                records = attempt("no-cache")
            except Exception as refetch_exc:
                raise classify_error(refetch_exc) from refetch_exc
            cache.mark_fetched(remote)
            return SolveResult(records, "refetched")
        error = classify_error(exc)
        if error.kind == ErrorKind.NETWORK and not tried_offline and cache.fetched_at(remote) is not None:
            progress("channels unreachable: solving from stale cached repodata")
            try:
                return SolveResult(attempt("force-cache-only"), "stale-cache")
            except Exception as stale_exc:
                log.info("stale-cache solve failed too: %s", _first_line(stale_exc))
        raise error from exc
    cache.mark_fetched(remote)
    return SolveResult(records, "online")


def _first_line(exc: BaseException) -> str:
    return next(iter(str(exc).splitlines()), type(exc).__name__)
