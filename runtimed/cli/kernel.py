"""``runtimed kernel install``: a Jupyter kernelspec whose kernels start from the pool."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from runtimed.kernel import default_kernels_dir, install, kernel_spec

from ._util import paths_from


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "kernel",
        help="Jupyter kernelspecs that start from the pool",
        description="Jupyter kernelspecs whose kernels start in a prewarmed env from the pool.",
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="kernel_command", metavar="SUBCOMMAND")
    ins = sub.add_parser(
        "install",
        parents=[common],
        help="install a kernelspec",
        description="Install a kernelspec named NAME (default runtimed-BACKEND) whose kernels take an env from "
        "BACKEND's pool (the env is leased to the kernel and deleted when it exits). Without a daemon the "
        "kernel starts with this interpreter instead.",
    )
    ins.add_argument("--backend", default="uv", help="pool to take envs from (default: uv)")
    ins.add_argument("--name", help="kernelspec name (default: runtimed-BACKEND)")
    ins.add_argument("--display-name", help="name shown in Jupyter")
    ins.add_argument("--kernels-dir", type=Path, help=f"where kernelspecs live (default: {default_kernels_dir()})")
    ins.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    # Pin the socket only when asked for a non-default daemon.
    socket = str(paths_from(args).socket) if args.cache_dir or args.socket else None
    spec = kernel_spec(args.backend, args.display_name, socket)
    target = install(args.kernels_dir or default_kernels_dir(), args.name or f"runtimed-{args.backend}", spec)
    print(f"installed kernelspec {target}")
    return 0
