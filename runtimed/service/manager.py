"""The I/O side of ``runtimed service``: where the file goes, asking the service
manager (``systemctl --user`` / ``launchctl``) for its state, and carrying out a plan."""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from attrs import define

from runtimed.service.plan import ManagerCommands, Plan, ServiceState, Step, StepKind
from runtimed.service.render import (
    LAUNCHD_LABEL,
    SYSTEMD_UNIT_NAME,
    ServiceSpec,
    render_launchd_plist,
    render_systemd_unit,
)

__all__ = ["ServiceError", "ServiceManager", "ServicePlatform", "launchd_manager", "manager_for", "systemd_manager"]

QUERY_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0


class ServiceError(RuntimeError):
    """A service-manager command failed (the message has its output)."""


class ServicePlatform(enum.Enum):
    SYSTEMD = "systemd"
    LAUNCHD = "launchd"

    @classmethod
    def current(cls) -> ServicePlatform:
        return cls.LAUNCHD if sys.platform == "darwin" else cls.SYSTEMD


def _query(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    """Run a read-only manager query; None if it cannot run at all."""
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


@define(frozen=True)
class ServiceManager:
    """One platform's service manager, as far as runtimed needs it."""

    platform: ServicePlatform
    unit_path: Path
    commands: ManagerCommands
    render: Callable[[ServiceSpec], bytes]
    probe_manager: Callable[[], tuple[bool | None, bool | None]]  # (enabled, active); None = no manager

    def state(self) -> ServiceState:
        try:
            installed: bytes | None = self.unit_path.read_bytes()
        except FileNotFoundError:
            installed = None
        enabled, active = self.probe_manager()
        return ServiceState(unit_path=self.unit_path, installed=installed, enabled=enabled, active=active)

    def apply(self, plan: Plan, echo: Callable[[str], None] = print) -> None:
        """Carry out ``plan`` step by step; a failing command raises :class:`ServiceError`."""
        for step in plan.steps:
            echo(step.describe())
            _apply_step(step)


def _apply_step(step: Step) -> None:
    if step.kind is StepKind.WRITE:
        assert step.path is not None and step.content is not None
        step.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = step.path.with_name(step.path.name + ".tmp")
        tmp.write_bytes(step.content)
        os.replace(tmp, step.path)
    elif step.kind is StepKind.REMOVE:
        assert step.path is not None
        step.path.unlink(missing_ok=True)
    else:
        try:
            proc = subprocess.run(
                step.argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"`{' '.join(step.argv)}` failed: {exc}") from exc
        if proc.returncode != 0:
            output = (proc.stderr or proc.stdout).strip()
            raise ServiceError(f"`{' '.join(step.argv)}` exited with {proc.returncode}: {output}")


def systemd_manager(environ: Mapping[str, str] | None = None) -> ServiceManager:
    """``runtimed.service`` in ``$XDG_CONFIG_HOME/systemd/user`` (default ``~/.config``)."""
    env = os.environ if environ is None else environ
    config_home = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    unit_path = config_home / "systemd" / "user" / SYSTEMD_UNIT_NAME
    systemctl = shutil.which("systemctl") or "systemctl"
    ctl = (systemctl, "--user")

    def probe() -> tuple[bool | None, bool | None]:
        # A user manager answers show-environment; without one (containers, ssh
        # sessions without lingering) there is nobody to enable or start the unit.
        present = _query([*ctl, "show-environment"])
        if present is None or present.returncode != 0:
            return None, None
        enabled = _query([*ctl, "is-enabled", SYSTEMD_UNIT_NAME])
        active = _query([*ctl, "is-active", SYSTEMD_UNIT_NAME])
        is_enabled = enabled is not None and enabled.stdout.strip() in ("enabled", "enabled-runtime", "linked")
        is_active = active is not None and active.stdout.strip() in ("active", "activating", "reloading")
        return is_enabled, is_active

    commands = ManagerCommands(
        reload=((*ctl, "daemon-reload"),),
        enable_start=((*ctl, "enable", "--now", SYSTEMD_UNIT_NAME),),
        start=((*ctl, "start", SYSTEMD_UNIT_NAME),),
        restart=((*ctl, "restart", SYSTEMD_UNIT_NAME),),
        stop_disable=((*ctl, "disable", "--now", SYSTEMD_UNIT_NAME),),
        manual_start=f"systemctl --user daemon-reload && systemctl --user enable --now {SYSTEMD_UNIT_NAME}",
    )
    return ServiceManager(
        ServicePlatform.SYSTEMD, unit_path, commands, lambda s: render_systemd_unit(s).encode(), probe
    )


def launchd_manager() -> ServiceManager:
    """``~/Library/LaunchAgents/io.runtimed.daemon.plist``, loaded into the GUI domain."""
    unit_path = Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    launchctl = shutil.which("launchctl") or "/bin/launchctl"
    domain = f"gui/{os.getuid()}"
    target = f"{domain}/{LAUNCHD_LABEL}"

    def probe() -> tuple[bool | None, bool | None]:
        if sys.platform != "darwin":
            return None, None
        loaded = _query([launchctl, "print", target])
        if loaded is None:
            return None, None
        if loaded.returncode != 0:
            return False, False
        return True, "pid = " in loaded.stdout

    bootout = (launchctl, "bootout", target)
    bootstrap = (launchctl, "bootstrap", domain, str(unit_path))
    commands = ManagerCommands(
        reload=(),
        enable_start=(bootstrap,),  # RunAtLoad starts it
        start=((launchctl, "kickstart", target),),
        # A changed plist is only read at bootstrap: unload, then load (which starts it).
        restart=(bootout, bootstrap),
        stop_disable=(bootout,),
        manual_start=f"launchctl bootstrap {domain} {unit_path}",
    )
    return ServiceManager(ServicePlatform.LAUNCHD, unit_path, commands, render_launchd_plist, probe)


def manager_for(platform: ServicePlatform) -> ServiceManager:
    return launchd_manager() if platform is ServicePlatform.LAUNCHD else systemd_manager()
