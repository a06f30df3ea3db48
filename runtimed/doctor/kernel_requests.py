"""Doctor check: were the latest kernel requests served by pre-started kernels?

A pre-started kernel is refused when a request's start-up variables (``PYTHONPATH``,
``JUPYTER_CONFIG_DIR``, ...) differ from what it started with, when the request
passes kernel arguments only a fresh kernel applies, or when none was ready. The
daemon already follows the latest front end's start-up variables
(``[daemon] kernel_variants``); when most recent requests are still refused, the
user should hear why and what to change.
"""

from __future__ import annotations

from collections import Counter

from runtimed.client import Client, DaemonError, DaemonNotRunning
from runtimed.doctor.results import CheckResult, CheckStatus, DoctorContext
from runtimed.kernels.environ import RefusalKind
from runtimed.kernels.outcomes import SERVED

__all__ = ["MIN_REQUESTS", "check_kernel_requests", "refusal_finding"]

MIN_REQUESTS = 4  # fewer recent requests say nothing
TIMEOUT_S = 3.0


def check_kernel_requests(ctx: DoctorContext) -> list[CheckResult]:
    try:
        with Client(ctx.paths.socket, timeout=TIMEOUT_S) as client:
            status = client.status()
    except (DaemonNotRunning, DaemonError, OSError):
        return []  # the daemon check says what is wrong with the daemon
    keep = ctx.effective_config.daemon.kernel_variants
    results = []
    for backend, pool in sorted(status.pools.items()):
        if pool.kernels is not None:
            results.append(refusal_finding(backend, pool.kernels.recent, keep))
    return results


def refusal_finding(backend: str, recent: list[str], keep_variants: int) -> CheckResult:
    """PASS unless most of the ``recent`` kernel requests (their refusal labels,
    :data:`SERVED` for a served one) were refused; then WARN, naming the commonest why."""
    check = f"kernel-requests:{backend}"
    refused = [label for label in recent if label != SERVED]
    if len(recent) < MIN_REQUESTS or len(refused) * 2 <= len(recent):
        served = len(recent) - len(refused)
        return CheckResult(check, CheckStatus.PASS, f"{served} of the latest {len(recent)} {backend} kernel requests "
                           "were served by pre-started kernels")  # fmt: skip
    label, count = Counter(refused).most_common(1)[0]
    kind, _, detail = label.partition(":")
    summary = f"{count} of the latest {len(recent)} {backend} kernel requests got no pre-started kernel: "
    fix = _fix(kind, detail, backend, keep_variants)
    return CheckResult(check, CheckStatus.WARN, summary + _why(kind, detail), fix)


def _why(kind: str, detail: str) -> str:
    return {
        RefusalKind.STARTUP_VARIABLE.value: f"{detail} differs from the pre-started kernels' (read only at start-up)",
        RefusalKind.KERNEL_ARGUMENT.value: f"the kernel argument {detail} needs a freshly started kernel",
        RefusalKind.FRESH_ASKED.value: "the kernelspec asks for fresh kernels (prestarted = false)",
        RefusalKind.NONE_READY.value: "none was ready",
        RefusalKind.DISABLED.value: "pre-started kernels are off",
        RefusalKind.TAKEOVER_FAILED.value: "a pre-started kernel could not take the front end's ports over",
    }.get(kind, kind)


def _fix(kind: str, detail: str, backend: str, keep_variants: int) -> str:
    if kind == RefusalKind.STARTUP_VARIABLE.value:
        return (
            f"give the daemon and your front ends the same {detail} (for the service: set it in its environment and "
            f"`runtimed service install` again), or keep more front ends warm: `runtimed config set "
            f"daemon.kernel_variants {keep_variants + 1}` (now {keep_variants})"
        )
    if kind == RefusalKind.KERNEL_ARGUMENT.value:
        return f"drop {detail} from the kernelspec's argv or the front end's kernel arguments"
    if kind == RefusalKind.FRESH_ASKED.value:
        return "remove prestarted = false from the kernelspec's provisioner config (`runtimed kernel install` again)"
    if kind in (RefusalKind.NONE_READY.value, RefusalKind.DISABLED.value):
        return f"keep more kernels ready: `runtimed config set backends.{backend}.kernels 2`"
    return "see runtimed.log for the port and the process holding it"
