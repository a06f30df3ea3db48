"""``runtimed envs``: every env on disk, with its state."""

from __future__ import annotations

import argparse
from typing import Any

from runtimed.protocol.messages import unstructure

from ._util import client_from, human_age, human_bytes, print_json, table


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "envs",
        parents=[common],
        help="list every env on disk",
        description="List every env in the cache with its state (pooled, outdated, warming, leased by a pid, "
        "kept, orphan, unknown_backend), size and age.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        envs = client.envs()
    if args.json:
        print_json([unstructure(e) for e in envs])
        return 0
    rows = [["ENV", "BACKEND", "STATE", "SIZE", "AGE"]]
    for env in envs:
        state = f"{env.state} by pid {env.holder_pid}" if env.state == "leased" and env.holder_pid else env.state
        rows.append([env.path, env.backend, state, human_bytes(env.size_bytes), human_age(env.age_s)])
    print(table(rows))
    total = sum(e.size_bytes for e in envs)
    print(f"{len(envs)} env(s), {human_bytes(total)}")
    return 0
