"""Doctor check of an installed ``runtimed service`` unit/plist."""

from __future__ import annotations

import os
import plistlib
import shlex

from runtimed.doctor.results import CheckResult, CheckStatus, DoctorContext
from runtimed.service.manager import ServicePlatform, manager_for
from runtimed.service.render import service_spec

__all__ = ["check_auto_start", "check_service", "installed_program"]


def installed_program(platform: ServicePlatform, content: bytes) -> str | None:
    """The program an installed unit/plist starts (None if it cannot be read)."""
    try:
        if platform is ServicePlatform.LAUNCHD:
            args = plistlib.loads(content).get("ProgramArguments") or []
            return str(args[0]) if args else None
        for line in content.decode().splitlines():
            if line.startswith("ExecStart="):
                words = shlex.split(line.partition("=")[2])
                return words[0].replace("%%", "%").replace("$$", "$") if words else None
    except (ValueError, plistlib.InvalidFileException, IndexError):
        return None
    return None


def check_service(ctx: DoctorContext) -> list[CheckResult]:
    platform = ServicePlatform.current()
    manager = manager_for(platform)
    try:
        content = manager.unit_path.read_bytes()
    except FileNotFoundError:
        return [CheckResult("service", CheckStatus.PASS, f"no service installed ({manager.unit_path})")]
    except OSError as exc:
        return [CheckResult("service", CheckStatus.FAIL, f"cannot read {manager.unit_path}: {exc}", None)]
    program = installed_program(platform, content)
    if program is None or not (os.path.isfile(program) and os.access(program, os.X_OK)):
        summary = f"{manager.unit_path} starts {program or 'nothing readable'}, which does not exist"
        return [CheckResult("service", CheckStatus.FAIL, summary, "`runtimed service install --force`")]
    launchd = platform is ServicePlatform.LAUNCHD
    expected = [manager.render(service_spec(ctx.paths, pin_socket=pin, launchd=launchd)) for pin in (False, True)]
    if content not in expected:
        summary = f"{manager.unit_path} differs from what this runtimed would install (another version, cache dir?)"
        return [CheckResult("service", CheckStatus.WARN, summary, "`runtimed service install --force`")]
    return [CheckResult("service", CheckStatus.PASS, f"{manager.unit_path} is up to date")]


def check_auto_start(ctx: DoctorContext) -> list[CheckResult]:
    """Whether clients may start the daemon when none runs (:mod:`runtimed.client.autostart`)."""
    from runtimed.client.autostart import AUTO_START_ENV, auto_start_setting, parse_switch

    setting = auto_start_setting(ctx.paths.config_file)
    raw = os.environ.get(AUTO_START_ENV, "").strip()
    if raw and parse_switch(raw) is None:
        return [
            CheckResult(
                "auto-start",
                CheckStatus.WARN,
                f"auto-start is off: {setting.source}",
                f"set {AUTO_START_ENV} to 1 or 0, or unset it",
            )
        ]
    state = "on" if setting.enabled else "off"
    return [CheckResult("auto-start", CheckStatus.PASS, f"auto-start is {state} ({setting.source})")]
