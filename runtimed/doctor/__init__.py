"""``runtimed doctor``: every check of a runtimed setup, each pass/warn/fail with a fix.

Each check is a small function taking a :class:`DoctorContext` and returning
:class:`CheckResult` records; :func:`run_checks` runs them all in order.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from runtimed.doctor.daemon_checks import (
    check_cache_dir_permissions,
    check_cache_dir_writable,
    check_daemon,
    check_daemon_files,
    check_free_disk,
    check_socket,
    check_stale_processes,
    load_config_checked,
)
from runtimed.doctor.kernel_requests import check_kernel_requests
from runtimed.doctor.kernelspecs import check_kernelspecs
from runtimed.doctor.results import CheckResult, CheckStatus, DoctorContext
from runtimed.doctor.service_check import check_auto_start, check_service
from runtimed.doctor.tool_checks import check_conda_channels, check_plugins, check_uv
from runtimed.envs.plugins import discover_plugins
from runtimed.util.paths import Paths
from runtimed.workers.probe import PluginReport, describe

__all__ = ["CheckResult", "CheckStatus", "DoctorContext", "run_checks"]


def run_checks(paths: Paths) -> list[CheckResult]:
    """Run every check against the runtimed instance at ``paths``."""
    config_result, ctx = load_config_checked(paths)
    plugins = discover_plugins()
    with ThreadPoolExecutor(max_workers=4) as pool:
        # Loading plugins (a child process each) is the slow part: start it first.
        reports_future = pool.submit(lambda: list(pool.map(describe, plugins.values())))
        results = [config_result]
        for check in (
            check_daemon,
            check_socket,
            check_cache_dir_permissions,
            check_daemon_files,
            check_cache_dir_writable,
            check_free_disk,
            check_stale_processes,
            check_kernelspecs,
            check_kernel_requests,
            check_service,
            check_auto_start,
        ):
            results += _run(check, ctx)
        reports = reports_future.result()
        results += check_uv(ctx, installed="uv" in plugins, report=_report_of("uv", reports))
        results += check_conda_channels(ctx, installed="conda" in plugins)
        results += check_plugins(ctx, reports)
    return results


def _run(check: Callable[[DoctorContext], list[CheckResult]], ctx: DoctorContext) -> list[CheckResult]:
    """A check's results; one that raises fails with what it raised, not the whole doctor."""
    try:
        return check(ctx)
    except Exception as exc:
        name = check.__name__.removeprefix("check_").replace("_", "-")
        summary = f"the check could not run: {type(exc).__name__}: {exc}"
        return [CheckResult(name, CheckStatus.FAIL, summary, "fix what it names, or report it as a runtimed bug")]


def _report_of(name: str, reports: list[PluginReport]) -> PluginReport | None:
    return next((r for r in reports if r.name == name), None)
