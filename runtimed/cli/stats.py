"""``runtimed stats``: usage metrics (takes, waits, kernels, builds, failures, disk)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtimed.client import DaemonNotRunning, DaemonUntrusted
from runtimed.daemon.statsview import stats_reply
from runtimed.daemon.usagefile import UsageFile, stats_path
from runtimed.protocol.messages import StatsReply, unstructure
from runtimed.protocol.stats import Durations

from ._util import client_from, human_bytes, human_counts, not_running, paths_from, print_json, table

__all__ = ["add_parser", "human_seconds", "main", "render"]

PHASES = ("creating", "installing", "compiling", "warming_up")


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "stats",
        parents=[common],
        help="show usage metrics (takes, waits, kernels, builds, failures, disk)",
        description="Usage metrics per backend, kept across daemon restarts in CACHE_DIR/stats.json: takes "
        "served, empty replies and waits (with p50/p90/p99 wait times), kernels handed out (pre-started or "
        "fallback), builds with per-phase p50/p90/p99 durations, failed builds by kind, and disk in use. "
        "With no daemon running it shows the counts last saved to the file (no disk use) and says so on "
        "stderr; exit 1 if there is neither. Nothing is ever sent over the network.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        with client_from(args) as client:
            reply = client.stats()
    except DaemonUntrusted:
        raise
    except DaemonNotRunning:
        saved = _from_file(args)
        if saved is None:
            return not_running(args)
        reply = saved
        print(
            f"runtimed is not running: showing the stats saved in {reply.file} at {reply.saved_at or '?'}",
            file=sys.stderr,
        )
    if args.json:
        print_json(unstructure(reply))
    else:
        print(render(reply))
    return 0


def _from_file(args: argparse.Namespace) -> StatsReply | None:
    path = stats_path(paths_from(args).cache_dir)
    try:
        saved = UsageFile(path).read()
    except ValueError as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return None
    if saved is None:
        return None
    return stats_reply(saved.usage, file=str(path), saved_at=saved.saved_at, running=False)


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"


def _spread(d: Durations) -> str:
    """``p50/p90/p99`` of some durations, or ``-``."""
    if not d.count:
        return "-"
    return "/".join(human_seconds(v) for v in (d.p50, d.p90, d.p99))


def render(reply: StatsReply) -> str:
    lines = [f"usage since {reply.since} ({reply.file})"]
    if not reply.daemon_running:
        lines.append(f"daemon not running; saved at {reply.saved_at or '?'}")
    if not reply.backends:
        return "\n".join([*lines, "", "nothing recorded yet"])
    rows = [["BACKEND", "TAKES", "EMPTY", "WAITED", "WAIT p50/p90/p99", "KERNELS pre/fallback/failed", "DISK"]]
    for name, b in reply.backends.items():
        k = b.kernels
        rows.append(
            [
                name,
                str(b.takes.served),
                str(b.takes.empty),
                str(b.takes.waited),
                _spread(b.takes.wait_s),
                f"{k.handed_out} ({k.prestarted}/{k.fallback}/{k.failed})",
                human_bytes(b.disk_bytes),
            ]
        )
    lines += ["", table(rows), ""]
    rows = [["BACKEND", "BUILDS ok/failed", "TOTAL p50/p90/p99", *(f"{p.upper()}" for p in PHASES)]]
    for name, b in reply.backends.items():
        phases = [_spread(b.builds.phases_s.get(p, Durations())) for p in PHASES]
        rows.append([name, f"{b.builds.succeeded}/{b.builds.failed}", _spread(b.builds.total_s), *phases])
    lines.append(table(rows))
    failures = [f"{name} {kind} {n}" for name, b in reply.backends.items() for kind, n in b.failures.items()]
    lines += ["", "failed builds: " + (", ".join(failures) if failures else "none")]
    for name, b in reply.backends.items():
        if b.kernels.refused:
            lines.append(f"{name} kernels not pre-started, by why: {human_counts(b.kernels.refused)}")
    if reply.daemon_running:
        lines.append(
            f"disk in use: {human_bytes(reply.disk_bytes)} (bytecode store {human_bytes(reply.bytecode_store_bytes)})"
        )
    return "\n".join(lines)
