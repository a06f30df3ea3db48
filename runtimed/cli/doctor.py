"""``runtimed doctor [--json]``: check the whole setup; exit 1 if anything fails."""

from __future__ import annotations

import argparse
from typing import Any

from runtimed.doctor import CheckResult, CheckStatus, run_checks
from runtimed.protocol.messages import unstructure

from ._util import paths_from, print_json

_MARK = {CheckStatus.PASS: "ok  ", CheckStatus.WARN: "WARN", CheckStatus.FAIL: "FAIL"}


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "doctor",
        parents=[common],
        help="check the setup and say how to fix what is wrong",
        description="Check the config, the daemon (answers? same version and protocol?), the socket and cache "
        "dir (ownership, permissions, writable, free disk), uv and each backend's tool, the conda channels, "
        "every plugin, the installed runtimed kernelspecs, and stale daemon or worker processes. Each check "
        "passes, warns or fails with a one-line fix. Exit 1 if any fails. Works without a daemon.",
    )
    p.add_argument("--config", metavar="FILE", help="config file to check (default: $RUNTIMED_CONFIG or the usual)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def render(results: list[CheckResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"{_MARK[r.status]}  {r.check}: {r.summary}")
        if r.fix and r.status is not CheckStatus.PASS:
            lines.append(f"      fix: {r.fix}")
    failed = sum(r.status is CheckStatus.FAIL for r in results)
    warned = sum(r.status is CheckStatus.WARN for r in results)
    lines.append("")
    lines.append(f"{len(results)} checks: {failed} failed, {warned} warnings")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    results = run_checks(paths_from(args))
    ok = not any(r.status is CheckStatus.FAIL for r in results)
    if args.json:
        print_json({"ok": ok, "checks": [unstructure(r) for r in results]})
    else:
        print(render(results))
    return 0 if ok else 1
