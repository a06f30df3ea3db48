"""Pure rendering of the service definitions: a systemd user unit and a launchd plist.

Nothing here touches the disk or runs anything; :mod:`runtimed.service.manager`
does that.
"""

from __future__ import annotations

import os
import plistlib
import re
import sys
from pathlib import Path

from attrs import define

from runtimed._version import __version__
from runtimed.util.paths import Paths
from runtimed.util.selfcmd import module_command

__all__ = [
    "LAUNCHD_LABEL",
    "SYSTEMD_UNIT_NAME",
    "ServiceSpec",
    "render_launchd_plist",
    "render_systemd_unit",
    "runtimed_command",
    "service_spec",
    "systemd_quote",
]

SYSTEMD_UNIT_NAME = "runtimed.service"
LAUNCHD_LABEL = "io.runtimed.daemon"


@define(frozen=True)
class ServiceSpec:
    """What the service runs: the full command line and where its output goes."""

    argv: tuple[str, ...]  # absolute program path first
    log_file: Path
    working_dir: Path


def runtimed_command() -> tuple[str, ...]:
    """The absolute command that runs *this* runtimed.

    The ``runtimed`` console script next to this interpreter when there is one,
    else this interpreter running ``runtimed.cli`` so that the service's working
    directory cannot shadow it (:mod:`runtimed.util.selfcmd`). ``sys.executable`` is not
    resolved: a venv's python is a symlink whose target would lose the venv.
    """
    python = Path(sys.executable).absolute()
    script = python.parent / "runtimed"
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),)
    return tuple(module_command("runtimed.cli", python=str(python)))


def service_spec(paths: Paths, *, pin_socket: bool = False, launchd: bool = False) -> ServiceSpec:
    """The service's command: ``runtimed run`` with this CLI's cache dir and config file
    always spelled out (a service manager's environment lacks the shell's
    ``RUNTIMED_*``/``XDG_*`` variables, so defaults could resolve elsewhere), and
    the socket when one was given.

    ``launchd`` turns off the daemon's stderr copy of its log: launchd would append
    it, unrotated, to the file the daemon already writes (systemd sends it to the journal).
    """
    argv = [*runtimed_command(), "run", "--cache-dir", str(paths.cache_dir)]
    argv += ["--config", str(Path(paths.config_file).absolute())]
    if pin_socket:
        argv += ["--socket", str(paths.socket)]
    if launchd:
        argv.append("--no-log-stderr")
    return ServiceSpec(argv=tuple(argv), log_file=paths.log, working_dir=Path.home())


_PLAIN = re.compile(r"^[A-Za-z0-9_@+=:,./%-]+$")


def systemd_quote(arg: str) -> str:
    """One word of a systemd command line: ``%`` and ``$`` escaped, quoted if needed."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.match(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_systemd_unit(spec: ServiceSpec) -> str:
    """The text of ``runtimed.service`` (a systemd *user* unit)."""
    exec_start = " ".join(systemd_quote(a) for a in spec.argv)
    return f"""\
# Written by `runtimed service install` (runtimed {__version__}).
# `runtimed service install --force` rewrites it; `runtimed service uninstall` removes it.
[Unit]
Description=runtimed: pools of prewarmed Python environments for Jupyter kernels

[Service]
Type=simple
ExecStart={exec_start}
# SIGHUP makes the daemon re-read its config file.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
# KillMode=process: on stop or restart systemd signals only the daemon itself.
# Kernels handed out to notebooks run in their own session but still in this
# service's cgroup; the default (control-group) would kill them with the daemon.
# The daemon stops its own workers and the kernels it has not handed out.
KillMode=process
TimeoutStopSec=30
WorkingDirectory={systemd_quote(str(spec.working_dir))}

[Install]
WantedBy=default.target
"""


def render_launchd_plist(spec: ServiceSpec) -> bytes:
    """The launchd agent plist (``~/Library/LaunchAgents/io.runtimed.daemon.plist``).

    ``KeepAlive = {SuccessfulExit: false}`` restarts the daemon only when it fails,
    so a ``runtimed run`` that finds a daemon already running (exit 0) does not
    churn. ``AbandonProcessGroup`` keeps launchd from killing the daemon's process
    group when the job stops (handed-out kernels have their own session anyway).
    """
    plist = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": list(spec.argv),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 5,
        "AbandonProcessGroup": True,
        "ProcessType": "Background",
        "WorkingDirectory": str(spec.working_dir),
        "StandardOutPath": str(spec.log_file),
        "StandardErrorPath": str(spec.log_file),
    }
    return plistlib.dumps(plist, sort_keys=True)
