"""The ``runtimed`` command line: one module per command, each with ``add_parser``/``main``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runtimed._version import __version__
from runtimed.cli import (
    config,
    doctor,
    envs,
    flush,
    gc,
    kernel,
    logs,
    ping,
    plugins,
    run,
    service,
    stats,
    status,
    stop,
    take,
    trust,
)
from runtimed.cli._pipe import EXIT_SIGPIPE, closed_output, silence
from runtimed.cli._util import not_running
from runtimed.client import DaemonError, DaemonNotResponding, DaemonNotRunning, DaemonUntrusted

__all__ = ["build_parser", "main"]

COMMANDS = (
    run,
    status,
    stats,
    stop,
    ping,
    take,
    flush,
    envs,
    gc,
    config,
    kernel,
    plugins,
    service,
    logs,
    doctor,
    trust,
)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache-dir", metavar="DIR", help="runtimed's cache dir (default: $RUNTIMED_CACHE_DIR or ~/.cache/runt)"
    )
    common.add_argument(
        "--socket", metavar="PATH", help="the daemon's socket (default: $RUNTIMED_SOCKET or CACHE_DIR/runtimed.sock)"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runtimed",
        description="A per-user daemon that keeps pools of prewarmed Python environments "
        "ready for notebooks and Jupyter kernels.",
    )
    parser.add_argument("--version", action="version", version=f"runtimed {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common()
    for command in COMMANDS:
        command.add_parser(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. Output into a closed pipe ends it quietly
    with 141, as for git (see :mod:`runtimed.cli._pipe`)."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a closed pipe could not be caught
        return code
    except BrokenPipeError:
        closed = closed_output()
        if not closed:
            raise  # not our output: a real error
        silence(closed)
        return EXIT_SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except DaemonUntrusted as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    except DaemonNotResponding as exc:
        print(f"runtimed is not responding: {exc}", file=sys.stderr)
        return 1
    except DaemonNotRunning:
        return not_running(args)
    except DaemonError as exc:
        print(f"runtimed: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
