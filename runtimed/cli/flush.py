"""``runtimed flush``: retire the pooled envs and rebuild."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtimed.client import DaemonError, DaemonNotRunning

from ._util import client_from, not_running


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "flush",
        parents=[common],
        help="delete the pooled envs and rebuild them",
        description="Delete every pooled (not handed-out) env of BACKEND, or of all backends, and "
        "rebuild the pools; also clears a backend's failure backoff. Leased envs are untouched.",
    )
    p.add_argument("backend", nargs="?", help="only this backend")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        with client_from(args) as client:
            removed = client.flush(args.backend)
    except DaemonNotRunning:
        return not_running(args)
    except DaemonError as exc:
        print(f"runtimed: {exc.message}", file=sys.stderr)
        return 1
    print(f"flushed {removed} env(s); rebuilding")
    return 0
