"""``runtimed take``: take an env out of a pool."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from runtimed.autostart import auto_start, wait_until_answering
from runtimed.client import DaemonAbsent
from runtimed.protocol import PooledEnv, unstructure

from ._util import client_from, print_json

# How long `take` waits for a daemon it started to listen (it loads plugins first).
START_TIMEOUT_S = 30.0


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "take",
        parents=[common],
        help="take a ready env from a pool",
        description="Take a prewarmed env from BACKEND's pool and print it. The env is leased to the "
        "calling shell (the parent of this command) unless --pid or --keep says otherwise; it is "
        "never handed out again. Exits 1 with 'pool empty' if none is ready. With no daemon running, "
        "starts one in the background first (unless RUNTIMED_AUTO_START=0 or [daemon] auto_start = false).",
    )
    p.add_argument("backend", nargs="?", default="uv", help="backend name (default: uv)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for a warming env")
    p.add_argument("--pid", type=int, help="the process that holds the env (default: the parent process)")
    p.add_argument("--keep", action="store_true", help="the env is yours: runtimed forgets it")
    p.add_argument("--json", action="store_true", help="print the env as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    started = False
    try:
        env = _take(args)
    except DaemonAbsent:
        outcome = auto_start(cache_dir=args.cache_dir, socket=args.socket)
        if not outcome.started or outcome.paths is None:
            print(f"runtimed: not starting a daemon: {outcome.reason}", file=sys.stderr)
            raise
        print(
            f"runtimed: started the daemon in the background (pid {outcome.pid}, log {outcome.paths.log})",
            file=sys.stderr,
        )
        problem = wait_until_answering(outcome.paths, START_TIMEOUT_S, outcome.pid)
        if problem is not None:
            print(f"runtimed: {problem}", file=sys.stderr)
            return 1
        started = True
        env = _take(args)
    if env is None:
        hint = "; the daemon was just started: try --wait 60" if started and not args.wait else ""
        print(f"pool empty: no {args.backend} env is ready{hint}", file=sys.stderr)
        return 1
    if args.json:
        print_json(unstructure(env))
    else:
        print(f"{env.venv_path}\npython: {env.python_path}\nid: {env.id}  created: {env.created_at}")
    return 0


def _take(args: argparse.Namespace) -> PooledEnv | None:
    with client_from(args) as client:
        return client.take(args.backend, wait_s=args.wait or None, lease_pid=args.pid or os.getppid(), keep=args.keep)
