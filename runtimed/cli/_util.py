"""Small helpers the CLI commands share."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from runtimed.client import Client, DaemonError
from runtimed.protocol.version import RESTART_HINT, mismatch
from runtimed.util.paths import Paths

__all__ = [
    "VersionCheckingClient",
    "client_from",
    "human_age",
    "human_bytes",
    "human_counts",
    "not_running",
    "paths_from",
    "print_json",
    "table",
]


def paths_from(args: argparse.Namespace) -> Paths:
    return Paths.resolve(
        cache_dir=getattr(args, "cache_dir", None),
        socket=getattr(args, "socket", None),
        config_file=getattr(args, "config", None),
    )


_warned = False


class VersionCheckingClient(Client):
    """A client that, on connecting, pings the daemon and warns once per process
    (on stderr) when the daemon's version or protocol differs from this CLI's."""

    def connect(self) -> Client:
        super().connect()
        global _warned
        if not _warned:
            _warned = True
            try:
                pong = self.ping()
            except DaemonError:
                return self  # a daemon too different to ping; the real request will say
            problem = mismatch(pong.daemon_version, pong.protocol_version)
            if problem:
                print(f"runtimed: warning: {problem}; {RESTART_HINT}", file=sys.stderr)
        return self


def client_from(args: argparse.Namespace) -> Client:
    """The client every daemon-talking command uses (with the version check)."""
    return VersionCheckingClient(paths_from(args).socket)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def not_running(args: argparse.Namespace) -> int:
    sock = paths_from(args).socket
    print(f"runtimed is not running (no daemon at {sock}); start it with `runtimed run`", file=sys.stderr)
    return 1


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def human_counts(counts: dict[str, int]) -> str:
    """``a 3, b 1``: most first."""
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def human_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
