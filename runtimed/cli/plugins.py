"""``runtimed plugins list``: installed backends and whether they load.

Each plugin is loaded in its own short-lived ``runtimed.worker --describe``
process, so one that fails to import (or crashes the interpreter) is listed as
``broken`` with its error and harms nothing else.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attrs import define

from runtimed.jobs import WORKER_TYPES, Ready
from runtimed.plugins import PluginInfo, discover_all
from runtimed.protocol import decode_line, unstructure
from runtimed.worker import LOAD_FAILED

from ._util import print_json, table

DESCRIBE_TIMEOUT_S = 60.0


@define(frozen=True)
class PluginReport:
    name: str
    distribution: str
    version: str
    module: str
    status: str  # active | unavailable | broken
    error: str | None = None
    detail: str | None = None


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("plugins", parents=[common], help="backend plugins", description="Backend plugins.")
    sub = p.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")
    lst = sub.add_parser(
        "list",
        help="list installed backend plugins",
        description="List installed backends (entry-point group 'runtimed'): name, distribution, version, "
        "and status: active, unavailable (loads but its tool is missing) or broken (fails to load, with the error).",
    )
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=main)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def describe(info: PluginInfo) -> PluginReport:
    """Load one plugin in a child process and report what happened."""

    def report(status: str, error: str | None = None, detail: str | None = None) -> PluginReport:
        return PluginReport(info.name, info.distribution, info.version, info.value, status, error, detail)

    if info.error is not None:
        return report("broken", info.error)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "runtimed.worker", info.name, "--describe"],
            capture_output=True,
            timeout=DESCRIBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return report("broken", f"loading timed out after {DESCRIBE_TIMEOUT_S:.0f}s")
    ready = decode_line(proc.stdout.strip(), WORKER_TYPES) if proc.stdout.strip() else None
    if proc.returncode != 0 or not isinstance(ready, Ready):
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        reasons = [line.split(LOAD_FAILED, 1)[1] for line in lines if LOAD_FAILED in line]
        error = reasons[-1] if reasons else (lines[-1] if lines else f"worker exited with {proc.returncode}")
        return report("broken", error)
    if not ready.available:
        return report("unavailable", ready.reason, ready.detail)
    return report("active", None, ready.detail)


def main(args: argparse.Namespace) -> int:
    plugins = discover_all()
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(describe, plugins))
    if args.json:
        print_json([unstructure(r) for r in reports])
        return 0
    if not reports:
        print("no backend plugins installed (entry-point group 'runtimed')")
        return 0
    rows = [["NAME", "DISTRIBUTION", "VERSION", "STATUS", "ERROR"]]
    rows += [[r.name, r.distribution, r.version, r.status, (r.error or "-")[:120]] for r in reports]
    print(table(rows))
    return 0
