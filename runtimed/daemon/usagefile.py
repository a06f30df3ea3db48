"""``<cache>/stats.json``: the usage metrics kept across daemon restarts (the I/O edge).

Loaded at start, saved atomically (temp file + fsync + rename) every
:data:`SAVE_INTERVAL_S` when something was recorded, and at shutdown. A file that
cannot be read as usage (corrupt, truncated, another format) is logged, kept aside
as ``stats.json.corrupt``, and replaced by fresh counts: it never stops the daemon.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from attrs import define

from runtimed.core.convert import describe_error, make_converter
from runtimed.core.usage import BUCKETS, Histogram, Usage, UsageLog
from runtimed.util.files import now_iso, write_json_atomic

__all__ = ["SAVE_INTERVAL_S", "STATS_FILE", "SavedUsage", "UsageFile", "stats_path"]

log = logging.getLogger("runtimed.stats")

STATS_FILE = "stats.json"
FORMAT_VERSION = 1
SAVE_INTERVAL_S = 30.0

_converter = make_converter(forbid_extra_keys=False)


def stats_path(cache_dir: Path) -> Path:
    """Where the usage metrics of the daemon for ``cache_dir`` are kept."""
    return cache_dir / STATS_FILE


@define(frozen=True)
class SavedUsage:
    """What the file holds: the usage and when it was saved."""

    usage: Usage
    saved_at: str | None = None


class UsageFile:
    """Reads and writes one daemon's ``stats.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> SavedUsage | None:
        """The saved usage; None if there is no file. Raises ``ValueError`` if it is unusable."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {self.path}: {exc}") from exc
        return parse(text)

    def load(self) -> UsageLog:
        """The usage to go on counting from: the saved one, or fresh counts (never raises)."""
        try:
            saved = self.read()
        except ValueError as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.error("usage stats %s are unusable (%s); starting afresh (old file kept as %s)", self.path, exc, aside)
            try:
                os.replace(self.path, aside)
            except OSError as err:
                log.error("cannot move %s aside: %s", self.path, err)
            saved = None
        return UsageLog(saved.usage if saved is not None else Usage(since=now_iso()))

    def save(self, usage: UsageLog) -> bool:
        """Write the usage now (atomically); False (logged) if that failed."""
        data = {"version": FORMAT_VERSION, "saved_at": now_iso(), "usage": _converter.unstructure(usage.usage)}
        try:
            write_json_atomic(self.path, data)
        except OSError as exc:
            log.error("cannot save usage stats to %s: %s", self.path, exc)
            return False
        return True

    async def autosave(self, usage: UsageLog, interval_s: float = SAVE_INTERVAL_S) -> None:
        """Save every ``interval_s`` when something was recorded since the last save (until cancelled)."""
        saved = usage.changes
        while True:
            await asyncio.sleep(interval_s)
            if usage.changes != saved:
                saved = usage.changes
                await asyncio.to_thread(self.save, usage)


def parse(text: str) -> SavedUsage:
    """The usage in a ``stats.json`` text; ``ValueError`` says what is wrong with it."""
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise ValueError(f"not a version-{FORMAT_VERSION} stats file")
    try:
        usage: Usage = _converter.structure(data.get("usage"), Usage)
    except Exception as exc:
        raise ValueError(describe_error(exc)) from None
    _check(usage)
    saved_at = data.get("saved_at")
    return SavedUsage(usage=usage, saved_at=saved_at if isinstance(saved_at, str) else None)


def _check(usage: Usage) -> None:
    for name, entry in usage.backends.items():
        counts = [
            entry.takes.served, entry.takes.empty, entry.takes.waited, entry.kernels.prestarted,
            entry.kernels.fallback, entry.kernels.failed, entry.builds.succeeded, entry.builds.failed,
            *entry.failures.values(), *entry.kernels.refused.values(),
        ]  # fmt: skip
        if any(n < 0 for n in counts):
            raise ValueError(f"negative count for backend {name!r}")
        for histogram in [entry.takes.wait_s, entry.builds.total_s, *entry.builds.phase_s.values()]:
            _check_histogram(name, histogram)


def _check_histogram(name: str, histogram: Histogram) -> None:
    if len(histogram.buckets) > BUCKETS or any(n < 0 for n in histogram.buckets):
        raise ValueError(f"bad histogram buckets for backend {name!r}")
    if sum(histogram.buckets) != histogram.count:
        raise ValueError(f"histogram count does not match its buckets for backend {name!r}")
