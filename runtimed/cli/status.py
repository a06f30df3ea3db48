"""``runtimed status``: the pools, their workers and their errors; ``--watch`` redraws it live."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from typing import Any, TextIO

from runtimed.client import Client, DaemonNotRunning, DaemonUntrusted
from runtimed.protocol.messages import PoolStatus, StatusReply, unstructure

from ._util import client_from, human_bytes, human_counts, print_json, table

#: Clear the screen and go home (ANSI), before each redraw on a terminal.
CLEAR = "\x1b[H\x1b[2J"


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "status",
        parents=[common],
        help="show the pools and workers",
        description="Show each backend's pool (available/target, warming, leased), its pre-started kernels "
        "(ready/target, starting, in use), its worker "
        "(pid, RSS, restarts) and its last error. --json adds each build in flight with its phase "
        "(creating, installing, compiling, warming_up) and elapsed time. --watch redraws every "
        "--interval seconds with the builds and the failures' retry countdowns (on a terminal in place; "
        "otherwise one snapshot per interval), until Ctrl-C; while no daemon runs (a restart) it says so and "
        "waits for one. Without --watch, exits 1 if no daemon runs.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--watch", action="store_true", help="redraw live until Ctrl-C")
    p.add_argument("--interval", type=_interval, default=1.0, metavar="S", help="seconds between redraws (default 1)")
    p.set_defaults(func=main)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 60:
        raise argparse.ArgumentTypeError(f"the interval must be between 0.1 and 60 seconds, got {text}")
    return value


def main(args: argparse.Namespace) -> int:
    if args.watch:
        return watch(client_from(args), args.interval, sys.stdout, as_json=args.json)
    with client_from(args) as client:
        reply = client.status()
    if args.json:
        print_json(unstructure(reply))
    else:
        print(render(reply))
    return 0


def watch(client: Client, interval: float, out: TextIO, *, as_json: bool = False) -> int:
    """Show the status every ``interval`` seconds until Ctrl-C (exit 0). On a terminal
    each view replaces the last; otherwise (a pipe, a file) views follow each other,
    separated by a blank line. While no daemon answers (a restart, or none started
    yet) each view says so and the watch goes on; a daemon of another user ends it."""
    redraw = out.isatty() and not as_json
    try:
        while True:
            view = _next_view(client, interval, as_json=as_json)
            if as_json and isinstance(view, StatusReply):
                print_json(unstructure(view))
            elif as_json:
                print(view, file=sys.stderr)  # stdout stays JSON only
            else:
                text = render_live(view) if isinstance(view, StatusReply) else view
                header = f"{datetime.now():%H:%M:%S} every {interval:g}s (Ctrl-C to stop)\n"
                out.write((CLEAR if redraw else "") + header + text + ("\n" if redraw else "\n\n"))
            out.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def _next_view(client: Client, interval: float, *, as_json: bool) -> StatusReply | str:
    """The daemon's status, or a line saying that no daemon answers (never raised,
    except for :class:`DaemonUntrusted`: a socket served by another user)."""
    try:
        return client.status()
    except DaemonUntrusted:
        raise
    except DaemonNotRunning as exc:
        when = f"{datetime.now():%H:%M:%S} " if as_json else ""
        return f"{when}runtimed is not running ({exc}); trying again every {interval:g}s"
    finally:
        client.close()  # reconnect for the next view: the daemon closes idle connections


def render_live(reply: StatusReply) -> str:
    """The plain view, then every build in flight and every failure waiting for a retry."""
    lines = [render(reply), ""]
    builds = [["BACKEND", "BUILD", "PHASE", "IN PHASE", "ELAPSED", "DOING"]]
    for name, pool in sorted(reply.pools.items()):
        for b in pool.builds:
            in_phase = "-" if b.phase_elapsed_s is None else f"{b.phase_elapsed_s:.1f}s"
            doing = b.message if len(b.message) <= 60 else b.message[:57] + "..."
            builds.append([name, b.env_id, b.phase or "starting", in_phase, f"{b.elapsed_s:.1f}s", doing])
    lines.append(table(builds) if len(builds) > 1 else "no builds in flight")
    failures = [["BACKEND", "FAILURE", "FAILURES", "RETRY IN"]]
    for name, pool in sorted(reply.pools.items()):
        err = pool.error
        if err is not None:
            retry = "-" if err.retry_in_s is None else f"{err.retry_in_s:.0f}s"
            failures.append([name, err.kind, str(err.failures), retry])
    if len(failures) > 1:
        lines += ["", table(failures)]
    return "\n".join(lines)


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
    return "\n".join([*lines[:-1], table(rows), *_refusal_lines(reply), *_warm_set_lines(reply)])


def _refusal_lines(reply: StatusReply) -> list[str]:
    """Kernel requests no pre-started kernel served since the daemon started, by why."""
    lines = []
    for name, pool in sorted(reply.pools.items()):
        if pool.kernels is not None and pool.kernels.refused:
            lines.append(f"{name} kernel requests not served pre-started: {human_counts(pool.kernels.refused)}")
    return lines


def _warm_set_lines(reply: StatusReply) -> list[str]:
    """The sets of extra packages kept warm (``take --with``), most recently used first."""
    rows = [["BACKEND", "WARM SET", "READY", "HITS", "INSTALLS", "DISK", "PACKAGES"]]
    for name, pool in sorted(reply.pools.items()):
        for warm in pool.warm_sets:
            ready = str(len(warm.ready)) + (" +1 installing" if warm.installing else "")
            if warm.error is not None:
                ready += f" ({warm.error.kind}, retry in {warm.error.retry_in_s or 0:.0f}s)"
            packages = f"project {warm.project}" if warm.project else " ".join(warm.packages)
            rows.append(
                [name, warm.key, ready, str(warm.hits), str(warm.installs), human_bytes(warm.disk_bytes), packages]
            )
    return ["", table(rows)] if len(rows) > 1 else []
