"""The doctor's finding about the latest kernel requests (pure)."""

from __future__ import annotations

from runtimed.doctor.kernel_requests import refusal_finding
from runtimed.doctor.results import CheckStatus

VAR = "startup_variable:PYTHONPATH"


def test_mostly_served_or_too_few_requests_pass() -> None:
    assert refusal_finding("uv", [VAR, "", "", ""], 1).status is CheckStatus.PASS
    assert refusal_finding("uv", [VAR, VAR, VAR], 1).status is CheckStatus.PASS  # three say nothing yet
    assert refusal_finding("uv", [VAR, VAR, "", ""], 1).status is CheckStatus.PASS  # half is not most


def test_mostly_refused_names_the_variable_and_the_fix() -> None:
    finding = refusal_finding("uv", [VAR, "none_ready", VAR, VAR, ""], 2)
    assert finding.status is CheckStatus.WARN and finding.check == "kernel-requests:uv"
    assert "3 of the latest 5 uv kernel requests" in finding.summary and "PYTHONPATH differs" in finding.summary
    assert finding.fix is not None
    assert "same PYTHONPATH" in finding.fix and "daemon.kernel_variants 3` (now 2)" in finding.fix


def test_other_reasons_get_their_own_fix() -> None:
    argument = refusal_finding("uv", ["kernel_argument:--matplotlib=inline"] * 4, 1)
    assert "--matplotlib=inline" in argument.summary and argument.fix and "drop --matplotlib=inline" in argument.fix
    none_ready = refusal_finding("conda", ["none_ready"] * 4, 1)
    assert none_ready.fix and "backends.conda.kernels" in none_ready.fix
