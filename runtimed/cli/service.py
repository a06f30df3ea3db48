"""``runtimed service install | uninstall | status``: run the daemon as a user service."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from runtimed.client import Client, DaemonNotRunning
from runtimed.service import (
    ServiceError,
    ServiceManager,
    ServicePlatform,
    StepKind,
    manager_for,
    plan_install,
    plan_uninstall,
    service_spec,
)

from ._util import paths_from, print_json

_PLATFORM_HELP = "systemd (Linux) or launchd (macOS); default: this machine's. Only useful with --dry-run."


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "service",
        help="run the daemon as a per-user systemd/launchd service",
        description="Install, remove or inspect a per-user service that runs `runtimed run`: a systemd user unit "
        "($XDG_CONFIG_HOME/systemd/user/runtimed.service) on Linux, a launchd agent "
        "(~/Library/LaunchAgents/io.runtimed.daemon.plist) on macOS.",
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="service_command", metavar="SUBCOMMAND")

    ins = sub.add_parser(
        "install",
        parents=[common],
        help="write the service and start it",
        description="Write the service file and, when a user service manager runs, enable and start it. The "
        "service runs this runtimed (absolute path) with the cache dir and config file this command resolves "
        "(--cache-dir/--config or RUNTIMED_* variables, else the defaults) spelled out, so it never serves a "
        "different cache dir than your CLI uses. Running it again "
        "with nothing changed does nothing; a running service is not restarted unless --force.",
    )
    ins.add_argument("--config", metavar="FILE", help="config file the service uses (default: $RUNTIMED_CONFIG or "
                     "the platform config dir)")  # fmt: skip
    ins.add_argument("--force", action="store_true", help="restart the service if it is running")
    ins.add_argument("--dry-run", action="store_true", help="print what would be written and run; change nothing")
    ins.add_argument("--platform", choices=[p.value for p in ServicePlatform], help=_PLATFORM_HELP)
    ins.set_defaults(func=install)

    uni = sub.add_parser(
        "uninstall",
        parents=[common],
        help="stop the service and remove it",
        description="Stop and disable the service, then remove its file. Kernels already handed out keep running.",
    )
    uni.add_argument("--dry-run", action="store_true", help="print what would be removed and run; change nothing")
    uni.add_argument("--platform", choices=[p.value for p in ServicePlatform], help=_PLATFORM_HELP)
    uni.set_defaults(func=uninstall)

    st = sub.add_parser(
        "status",
        parents=[common],
        help="is the service installed, enabled, running?",
        description="Show whether the service file is installed (and matches what `install` would write now), "
        "whether the service manager has it enabled and running, and whether a daemon answers on the socket.",
    )
    st.add_argument("--platform", choices=[p.value for p in ServicePlatform], help=_PLATFORM_HELP)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=status)


def _manager(args: argparse.Namespace) -> ServiceManager:
    return manager_for(ServicePlatform(args.platform) if args.platform else ServicePlatform.current())


def _content(args: argparse.Namespace, manager: ServiceManager) -> bytes:
    paths = paths_from(args)
    spec = service_spec(
        paths,
        pin_socket=bool(getattr(args, "socket", None) or os.environ.get("RUNTIMED_SOCKET")),
        launchd=manager.platform is ServicePlatform.LAUNCHD,
    )
    return manager.render(spec)


def _foreign(args: argparse.Namespace) -> bool:
    """Is --platform another OS's manager without --dry-run? (Nothing could run it.)"""
    if args.platform and ServicePlatform(args.platform) is not ServicePlatform.current() and not args.dry_run:
        print(f"runtimed: --platform {args.platform} is not this machine's; use it with --dry-run", file=sys.stderr)
        return True
    return False


def install(args: argparse.Namespace) -> int:
    if _foreign(args):
        return 2
    manager = _manager(args)
    plan = plan_install(manager.state(), _content(args, manager), manager.commands, force=args.force)
    return _carry_out(manager, plan, args.dry_run)


def uninstall(args: argparse.Namespace) -> int:
    if _foreign(args):
        return 2
    manager = _manager(args)
    return _carry_out(manager, plan_uninstall(manager.state(), manager.commands), args.dry_run)


def _carry_out(manager: ServiceManager, plan: Any, dry_run: bool) -> int:
    if dry_run:
        for step in plan.steps:
            print(f"would {step.describe()}")
            if step.kind is StepKind.WRITE:
                assert step.content is not None
                print(step.content.decode().rstrip("\n"))
                print(f"--- end of {step.path} ---")
        if not plan.steps:
            print("nothing would change")
    else:
        try:
            manager.apply(plan)
        except ServiceError as exc:
            print(f"runtimed: {exc}", file=sys.stderr)
            return 1
    for note in plan.notes:
        print(note)
    return 0


def status(args: argparse.Namespace) -> int:
    manager = _manager(args)
    state = manager.state()
    expected = _content(args, manager)
    paths = paths_from(args)
    try:
        with Client(paths.socket) as client:
            pong = client.ping()
        daemon = f"answers on {paths.socket} (runtimed {pong.daemon_version})"
        answering = True
    except DaemonNotRunning:
        daemon, answering = f"no daemon answers on {paths.socket}", False
    report = {
        "platform": manager.platform.value,
        "unit_path": str(state.unit_path),
        "installed": state.installed is not None,
        "up_to_date": state.installed == expected,
        "enabled": state.enabled,
        "running": state.active,
        "daemon_answering": answering,
    }
    if args.json:
        print_json(report)
        return 0

    def yes_no(value: bool | None) -> str:
        return "unknown (no service manager running)" if value is None else ("yes" if value else "no")

    installed = "no"
    if state.installed is not None:
        installed = "yes" if report["up_to_date"] else "yes, but differs from what `install` writes now"
    print(f"{manager.platform.value} service {state.unit_path}")
    print(f"installed: {installed}")
    print(f"enabled:   {yes_no(state.enabled)}")
    print(f"running:   {yes_no(state.active)}")
    print(f"daemon:    {daemon}")
    return 0
