"""``runtimed take``: take an env out of a pool."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from runtimed.client import DaemonAbsent
from runtimed.client.autostart import auto_start, started_the_daemon, wait_until_answering
from runtimed.protocol.messages import PooledEnv, unstructure

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
        "starts one in the background first (unless RUNTIMED_AUTO_START=0 or [daemon] auto_start = false). "
        "With --with PKG (repeatable), the env also has PKG: the daemon keeps envs of recently used sets "
        "warm ([backends.NAME] warm_sets, warm_sets_mb) and otherwise installs the set into a pooled env, "
        "waiting for that install; a failed install (unknown package, unsolvable set, unreachable index) "
        "is reported with its kind and the set is refused for a backoff.",
    )
    p.add_argument("backend", nargs="?", default="uv", help="backend name (default: uv)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for a warming env")
    p.add_argument("--pid", type=int, help="the process that holds the env (default: the parent process)")
    p.add_argument("--keep", action="store_true", help="the env is yours: runtimed forgets it")
    p.add_argument(
        "--with",
        dest="packages",
        action="append",
        default=[],
        metavar="PKG",
        help="an extra package (a PEP 508 requirement, e.g. 'httpx>=0.27'), repeatable: the env also has them, "
        "from a warm set of recently used packages or installed into a pooled env now (offline first); "
        "an unknown package or an unreachable index is an error naming it",
    )
    p.add_argument(
        "--channel", dest="channels", action="append", default=[], metavar="CHANNEL", help="conda: a channel for --with"
    )
    p.add_argument("--json", action="store_true", help="print the env as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    holder = args.pid or os.getppid()
    started = False
    try:
        env = _take(args, holder)
    except DaemonAbsent:
        problem = _start_daemon(args)
        if problem is not None:
            print(f"runtimed: {problem}", file=sys.stderr)
            return 1
        started = True
        env = _take(args, holder)
    if env is None:
        hint = "; the daemon was just started: try --wait 60" if started and not args.wait else ""
        print(f"pool empty: no {args.backend} env is ready{hint}", file=sys.stderr)
        return 1
    try:
        _print_env(env, args.json)
    except BrokenPipeError:
        # The env is taken all the same: say where it is rather than lose it silently.
        whose = "it is yours (--keep)" if args.keep else f"it is leased to pid {holder} and deleted when that exits"
        print(f"runtimed: output closed; took {env.venv_path}: {whose}", file=sys.stderr)
        raise
    return 0


def _start_daemon(args: argparse.Namespace) -> str | None:
    """Auto-start a daemon, or wait for one starting (another client's, in a race);
    None once it answers, else why not. Only the client whose daemon won the start
    says it started one."""
    outcome = auto_start(cache_dir=args.cache_dir, socket=args.socket)
    if outcome.paths is None or not (outcome.started or outcome.holder):
        print(f"runtimed: not starting a daemon: {outcome.reason}", file=sys.stderr)
        raise DaemonAbsent(outcome.reason)
    problem = wait_until_answering(outcome.paths, START_TIMEOUT_S, outcome.pid or outcome.holder)
    if problem is None and started_the_daemon(outcome):
        log = outcome.paths.log
        print(f"runtimed: started the daemon in the background (pid {outcome.pid}, log {log})", file=sys.stderr)
    return problem


def _print_env(env: PooledEnv, as_json: bool) -> None:
    if as_json:
        print_json(unstructure(env))
    else:
        print(f"{env.venv_path}\npython: {env.python_path}\nid: {env.id}  created: {env.created_at}")
        if env.extras:
            print(f"with: {' '.join(env.extras)}")
    sys.stdout.flush()  # a closed pipe shows here, not at exit


def _take(args: argparse.Namespace, holder: int) -> PooledEnv | None:
    with client_from(args) as client:
        return client.take(
            args.backend,
            wait_s=args.wait or None,
            lease_pid=holder,
            keep=args.keep,
            packages=args.packages,
            channels=args.channels,
        )
