"""``runtimed take``: take an env out of a pool."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from runtimed.protocol import unstructure

from ._util import client_from, print_json


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "take",
        parents=[common],
        help="take a ready env from a pool",
        description="Take a prewarmed env from BACKEND's pool and print it. The env is leased to the "
        "calling shell (the parent of this command) unless --pid or --keep says otherwise; it is "
        "never handed out again. Exits 1 with 'pool empty' if none is ready.",
    )
    p.add_argument("backend", nargs="?", default="uv", help="backend name (default: uv)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for a warming env")
    p.add_argument("--pid", type=int, help="the process that holds the env (default: the parent process)")
    p.add_argument("--keep", action="store_true", help="the env is yours: runtimed forgets it")
    p.add_argument("--json", action="store_true", help="print the env as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        env = client.take(args.backend, wait_s=args.wait or None, lease_pid=args.pid or os.getppid(), keep=args.keep)
    if env is None:
        print(f"pool empty: no {args.backend} env is ready", file=sys.stderr)
        return 1
    if args.json:
        print_json(unstructure(env))
    else:
        print(f"{env.venv_path}\npython: {env.python_path}\nid: {env.id}  created: {env.created_at}")
    return 0
