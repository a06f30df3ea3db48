"""``runtimed gc``: run a garbage-collection sweep now."""

from __future__ import annotations

import argparse
from typing import Any

from runtimed.protocol.messages import unstructure

from ._util import client_from, human_bytes, print_json, table


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "gc",
        parents=[common],
        help="delete envs nobody needs, now",
        description="Delete pooled envs older than max_age, partial envs with no build running, complete "
        "envs nobody tracks, and envs whose holder process has exited; never a warming, kept or live-leased "
        "env. The daemon also does this periodically.",
    )
    p.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        report = client.gc(dry_run=args.dry_run)
    if args.json:
        print_json(unstructure(report))
        return 0
    verb = "would delete" if report.dry_run else "deleted"
    if report.removed:
        rows = [["ENV", "BACKEND", "REASON", "SIZE"]]
        rows += [[item.path, item.backend, item.reason, human_bytes(item.size_bytes)] for item in report.removed]
        print(table(rows))
    print(f"{verb} {len(report.removed)} env(s), {human_bytes(report.freed_bytes)}")
    return 0
