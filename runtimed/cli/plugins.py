"""``runtimed plugins list``: installed backends and whether they load.

Each plugin is loaded in its own short-lived ``runtimed.workers.child --describe``
process (see :mod:`runtimed.workers.probe`), so one that fails to import (or
crashes the interpreter) is listed as ``broken`` with its error and harms nothing else.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runtimed.envs.plugins import discover_all
from runtimed.protocol.messages import unstructure
from runtimed.workers.probe import describe

from ._util import print_json, table


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
