"""``runtimed flush``: retire the pooled envs and rebuild."""

from __future__ import annotations

import argparse
from typing import Any

from ._util import client_from


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
    with client_from(args) as client:
        removed = client.flush(args.backend)
    print(f"flushed {removed} env(s); rebuilding")
    return 0
