"""Planning install/uninstall from the service's state (pure)."""

from __future__ import annotations

from pathlib import Path

from runtimed.service.plan import ManagerCommands, ServiceState, StepKind, plan_install, plan_uninstall

UNIT = Path("/home/u/.config/systemd/user/runtimed.service")
CMDS = ManagerCommands(
    reload=(("ctl", "reload"),),
    enable_start=(("ctl", "enable", "--now"),),
    start=(("ctl", "start"),),
    restart=(("ctl", "restart"),),
    stop_disable=(("ctl", "disable", "--now"),),
    manual_start="ctl enable --now",
)


def _runs(plan: object) -> list[tuple[str, ...]]:
    return [s.argv for s in plan.steps if s.kind is StepKind.RUN]  # type: ignore[attr-defined]


def test_fresh_install_with_a_manager_writes_reloads_enables() -> None:
    plan = plan_install(ServiceState(UNIT, None, enabled=False, active=False), b"new", CMDS, force=False)
    assert plan.steps[0].kind is StepKind.WRITE and plan.steps[0].content == b"new"
    assert _runs(plan) == [("ctl", "reload"), ("ctl", "enable", "--now")]


def test_without_a_manager_only_the_file_is_written_and_the_user_told() -> None:
    plan = plan_install(ServiceState(UNIT, None), b"new", CMDS, force=False)
    assert [s.kind for s in plan.steps] == [StepKind.WRITE]
    assert any("ctl enable --now" in n for n in plan.notes)
    again = plan_install(ServiceState(UNIT, b"new"), b"new", CMDS, force=False)
    assert again.steps == []


def test_identical_and_running_is_a_no_op() -> None:
    plan = plan_install(ServiceState(UNIT, b"same", enabled=True, active=True), b"same", CMDS, force=False)
    assert plan.steps == [] and "nothing to do" in plan.notes[0]


def test_running_service_is_not_restarted_without_force() -> None:
    state = ServiceState(UNIT, b"old", enabled=True, active=True)
    plan = plan_install(state, b"new", CMDS, force=False)
    assert _runs(plan) == [("ctl", "reload")]
    assert any("--force" in n for n in plan.notes)
    forced = plan_install(state, b"new", CMDS, force=True)
    assert _runs(forced) == [("ctl", "reload"), ("ctl", "restart")]


def test_installed_but_stopped_is_started() -> None:
    plan = plan_install(ServiceState(UNIT, b"same", enabled=True, active=False), b"same", CMDS, force=False)
    assert plan.steps[0].kind is StepKind.RUN and _runs(plan) == [("ctl", "start")]


def test_uninstall() -> None:
    running = plan_uninstall(ServiceState(UNIT, b"x", enabled=True, active=True), CMDS)
    assert [s.describe() for s in running.steps] == ["run ctl disable --now", f"remove {UNIT}", "run ctl reload"]
    no_manager = plan_uninstall(ServiceState(UNIT, b"x"), CMDS)
    assert [s.kind for s in no_manager.steps] == [StepKind.REMOVE]
    absent = plan_uninstall(ServiceState(UNIT, None, enabled=False, active=False), CMDS)
    assert absent.steps == [] and "not installed" in absent.notes[0]
