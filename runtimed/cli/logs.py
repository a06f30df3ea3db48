"""``runtimed logs [-n N] [-f]``: the daemon's log, with or without a daemon."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from runtimed.util.logfile import LogFollower, last_lines, log_files

from ._util import paths_from

FOLLOW_POLL_S = 0.2


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "logs",
        parents=[common],
        help="show the daemon's log",
        description="Print the last lines of the daemon's log (CACHE_DIR/runtimed.log, reaching into the rotated "
        "runtimed.log.1 … when needed). With -f keep printing new lines, following the log across rotation, "
        "until interrupted. Works whether or not a daemon runs. Rotation is set in the config: "
        "[daemon] log_max_bytes, log_backups.",
    )
    p.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="how many lines (default 50)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.lines < 0:
        print("runtimed: -n must be 0 or more", file=sys.stderr)
        return 2
    log = paths_from(args).log
    out = sys.stdout.buffer
    if not log_files(log) and not args.follow:
        print(f"runtimed: no log at {log} (has a daemon run with this cache dir?)", file=sys.stderr)
        return 1
    # Open for following before reading the tail, so no line falls between the two.
    follower = LogFollower(log) if args.follow else None
    out.writelines(last_lines(log, args.lines, current_end=follower.position if follower else None))
    out.flush()
    if follower is None:
        return 0
    try:
        while True:
            chunk = follower.read()
            if chunk:
                out.write(chunk)
                out.flush()
            else:
                time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        return 0
    finally:
        follower.close()
