"""``runtimed status``: the pools, their workers and their errors."""

from __future__ import annotations

import argparse
from typing import Any

from runtimed.protocol import PoolStatus, StatusReply, unstructure

from ._util import client_from, human_bytes, print_json, table


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "status",
        parents=[common],
        help="show the pools and workers",
        description="Show each backend's pool (available/target, warming, leased), its pre-started kernels "
        "(ready/target, starting, in use), its worker "
        "(pid, RSS, restarts) and its last error. Exits 1 if no daemon runs.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        reply = client.status()
    if args.json:
        print_json(unstructure(reply))
    else:
        print(render(reply))
    return 0


def _error_text(pool: PoolStatus) -> str:
    if pool.error is None:
        return "-"
    err = pool.error
    first_line = err.message.splitlines()[0] if err.message else ""
    if len(first_line) > 110:
        first_line = first_line[:107] + "..."
    text = f"{err.kind}: {first_line}"
    if err.package:
        text += f" [package {err.package}]"
    if err.retry_in_s is not None:
        text += f" (retry in {err.retry_in_s:.0f}s)"
    return text


def _kernels_text(pool: PoolStatus) -> str:
    """Pre-started kernels ready/target, with those starting and handed out."""
    k = pool.kernels
    if k is None or (k.target == 0 and k.handed_out == 0):
        return "-"
    text = f"{k.available}/{k.target}"
    if k.starting:
        text += f" +{k.starting} starting"
    if k.handed_out:
        text += f" ({k.handed_out} in use)"
    return text


def render(reply: StatusReply) -> str:
    d = reply.daemon
    lines = [f"runtimed {d.version} (pid {d.pid}) since {d.started_at}", f"socket {d.socket}"]
    if d.config_error:
        lines.append(f"config error (previous config still in force): {d.config_error}")
    for name, error in sorted(d.broken_plugins.items()):
        lines.append(f"backend {name} is broken and not served: {error}")
    lines.append("")
    rows = [["BACKEND", "AVAILABLE", "WARMING", "LEASED", "KERNELS", "WORKER", "RSS", "LAST ERROR"]]
    for name, pool in sorted(reply.pools.items()):
        worker = pool.worker
        worker_text = "-"
        if worker is not None:
            worker_text = worker.state + (f" pid {worker.pid}" if worker.pid else "")
            if worker.restarts:
                worker_text += f" ({worker.restarts} restarts)"
        rows.append(
            [
                name,
                f"{pool.available}/{pool.target}",
                str(pool.warming),
                str(pool.leased),
                _kernels_text(pool),
                worker_text,
                human_bytes(worker.rss_bytes if worker else None),
                _error_text(pool),
            ]
        )
    if len(rows) == 1:
        return "\n".join(lines) + "no backends installed (see `runtimed plugins list`)"
    return "\n".join(lines) + table(rows)
