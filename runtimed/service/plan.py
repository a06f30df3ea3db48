"""Pure planning of ``service install`` / ``uninstall``: state in, steps out.

The steps are data (write a file, remove a file, run a command), so ``--dry-run``
prints exactly what a real run executes, and the rules (idempotence, no restart
without ``--force``) are tested without a service manager.
"""

from __future__ import annotations

import enum
from pathlib import Path

from attrs import define, field

__all__ = ["Commands", "ManagerCommands", "Plan", "ServiceState", "Step", "StepKind", "plan_install", "plan_uninstall"]


class StepKind(enum.Enum):
    WRITE = "write"
    REMOVE = "remove"
    RUN = "run"


@define(frozen=True)
class Step:
    kind: StepKind
    path: Path | None = None
    content: bytes | None = None
    argv: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind is StepKind.WRITE:
            return f"write {self.path}"
        if self.kind is StepKind.REMOVE:
            return f"remove {self.path}"
        return "run " + " ".join(self.argv)


@define(frozen=True)
class ServiceState:
    """What is installed, and what the service manager says (None = no manager to ask)."""

    unit_path: Path
    installed: bytes | None  # the unit/plist file's content, None if absent
    enabled: bool | None = None
    active: bool | None = None

    @property
    def manager_available(self) -> bool:
        return self.enabled is not None


Commands = tuple[tuple[str, ...], ...]  # zero or more command lines, run in order


@define(frozen=True)
class ManagerCommands:
    """The commands a platform's service manager uses (empty tuple: not needed)."""

    reload: Commands  # after the file changed (systemd: daemon-reload)
    enable_start: Commands  # enable at login and start now
    start: Commands
    restart: Commands  # restart with the current file
    stop_disable: Commands  # stop now and disable at login
    manual_start: str  # what to tell a user who has no manager running


@define
class Plan:
    steps: list[Step] = field(factory=list)
    notes: list[str] = field(factory=list)


def _run(commands: Commands) -> list[Step]:
    return [Step(StepKind.RUN, argv=argv) for argv in commands]


def plan_install(state: ServiceState, content: bytes, cmds: ManagerCommands, *, force: bool) -> Plan:
    """Steps that install ``content`` at ``state.unit_path`` and get it running.

    Identical content on an enabled, running service is a no-op. A service that is
    already running is never restarted unless ``force``.
    """
    plan = Plan()
    changed = state.installed != content
    if changed:
        plan.steps.append(Step(StepKind.WRITE, path=state.unit_path, content=content))
    if not state.manager_available:
        plan.notes.append(f"No service manager is running for this user; to start the service: {cmds.manual_start}")
        return plan
    if changed:
        plan.steps += _run(cmds.reload)
    if state.active:
        if force:
            plan.steps += _run(cmds.restart)
        elif changed:
            plan.notes.append(
                "The service is running and was left alone; the new definition applies at its next start "
                "(`runtimed service install --force` restarts it now)."
            )
        if not state.enabled:
            plan.steps += _run(cmds.enable_start)
    elif not state.enabled:
        plan.steps += _run(cmds.enable_start)
    else:
        plan.steps += _run(cmds.start)
    if not plan.steps:
        plan.notes.append(f"{state.unit_path} is up to date and the service is running: nothing to do.")
    return plan


def plan_uninstall(state: ServiceState, cmds: ManagerCommands) -> Plan:
    """Steps that stop the service, disable it and remove its file."""
    plan = Plan()
    if state.installed is None:
        plan.notes.append(f"{state.unit_path} is not installed: nothing to do.")
        return plan
    if state.manager_available and (state.enabled or state.active):
        plan.steps += _run(cmds.stop_disable)
    plan.steps.append(Step(StepKind.REMOVE, path=state.unit_path))
    if state.manager_available:
        plan.steps += _run(cmds.reload)
    return plan
