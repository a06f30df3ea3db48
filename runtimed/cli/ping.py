"""``runtimed ping``: is the daemon there, and which protocol does it speak?"""

from __future__ import annotations

import argparse
from typing import Any

from ._util import client_from


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "ping",
        parents=[common],
        help="check that the daemon answers",
        description="Ping the daemon; exit 1 if none runs.",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        pong = client.ping()
    print(f"pong: runtimed {pong.daemon_version}, protocol {pong.protocol_version}")
    return 0
