"""``runtimed kernel install|list|uninstall``: Jupyter kernelspecs served by runtimed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from runtimed.kernels.specs import default_kernels_dir, install, kernel_spec, list_specs, uninstall

from ._util import paths_from


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "kernel",
        help="Jupyter kernelspecs served by runtimed",
        description="Jupyter kernelspecs whose kernels come from runtimed: a pre-started kernel when one is ready, "
        "else a kernel in a prewarmed env from the pool, else the kernelspec's own argv.",
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="kernel_command", metavar="SUBCOMMAND")
    dirs_help = f"where kernelspecs live (default: {default_kernels_dir()})"
    ins = sub.add_parser(
        "install",
        parents=[common],
        help="install a kernelspec",
        description="Install a kernelspec named NAME (default runtimed-BACKEND) served by the runtimed-provisioner "
        "from BACKEND: the kernel's env is leased to it and deleted when it exits. Its argv is runtimed's argv "
        "launcher, for front ends that run the argv themselves (VS Code): it asks the daemon too, else starts "
        "ipykernel with this interpreter as usual. Use --name python3 to serve "
        "Jupyter's default Python kernel; `runtimed kernel uninstall python3` undoes that.",
    )
    ins.add_argument("--backend", default="uv", help="backend to take kernels from (default: uv)")
    ins.add_argument("--name", help="kernelspec name (default: runtimed-BACKEND)")
    ins.add_argument("--display-name", help="name shown in Jupyter")
    ins.add_argument("--kernels-dir", type=Path, help=dirs_help)
    ins.set_defaults(func=main)
    ls = sub.add_parser("list", help="list runtimed kernelspecs", description="List the runtimed kernelspecs.")
    ls.add_argument("--kernels-dir", type=Path, help=dirs_help)
    ls.set_defaults(func=list_main)
    rm = sub.add_parser(
        "uninstall",
        help="remove a runtimed kernelspec",
        description="Remove the runtimed kernelspec NAME (kernelspecs not written by runtimed are left alone).",
    )
    rm.add_argument("name", metavar="NAME")
    rm.add_argument("--kernels-dir", type=Path, help=dirs_help)
    rm.set_defaults(func=uninstall_main)


def main(args: argparse.Namespace) -> int:
    # Pin the socket only when asked for a non-default daemon, and its cache dir with
    # it: a daemon auto-started for this kernelspec must use that cache dir.
    paths = paths_from(args)
    socket = str(paths.socket) if args.cache_dir or args.socket else None
    cache_dir = str(paths.cache_dir) if args.cache_dir else None
    spec = kernel_spec(args.backend, args.display_name, socket, cache_dir)
    target = install(args.kernels_dir or default_kernels_dir(), args.name or f"runtimed-{args.backend}", spec)
    print(f"installed kernelspec {target}")
    return 0


def list_main(args: argparse.Namespace) -> int:
    specs = list_specs(args.kernels_dir or default_kernels_dir())
    if not specs:
        print("no runtimed kernelspecs")
    for spec in specs:
        print(f"{spec.name:<20} {spec.backend:<8} {spec.display_name:<30} {spec.path}")
    return 0


def uninstall_main(args: argparse.Namespace) -> int:
    try:
        path = uninstall(args.kernels_dir or default_kernels_dir(), args.name)
    except ValueError as exc:
        print(f"runtimed: {exc}")
        return 1
    print(f"removed kernelspec {path}")
    return 0
