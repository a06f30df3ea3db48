"""``runtimed service``: run the daemon as a per-user systemd or launchd service.

:mod:`.render` renders the unit/plist (pure), :mod:`.plan` decides what to do
(pure), :mod:`.manager` reads state and carries the plan out.
"""

from __future__ import annotations

from runtimed.service.manager import ServiceError, ServiceManager, ServicePlatform, manager_for
from runtimed.service.plan import Plan, ServiceState, Step, StepKind, plan_install, plan_uninstall
from runtimed.service.render import ServiceSpec, render_launchd_plist, render_systemd_unit, service_spec

__all__ = [
    "Plan",
    "ServiceError",
    "ServiceManager",
    "ServicePlatform",
    "ServiceSpec",
    "ServiceState",
    "Step",
    "StepKind",
    "manager_for",
    "plan_install",
    "plan_uninstall",
    "render_launchd_plist",
    "render_systemd_unit",
    "service_spec",
]
