"""The doctor's result records and the context every check reads."""

from __future__ import annotations

import enum

from attrs import define

from runtimed.config import Config
from runtimed.util.paths import Paths

__all__ = ["CheckResult", "CheckStatus", "DoctorContext"]


class CheckStatus(enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@define(frozen=True)
class CheckResult:
    """One finding: which check, how it went, what was seen, and how to fix it."""

    check: str  # stable id, e.g. "cache-dir-writable", "kernelspec:runtimed-uv"
    status: CheckStatus
    summary: str
    fix: str | None = None


@define(frozen=True)
class DoctorContext:
    """What the checks look at: the resolved paths and the config (None if invalid)."""

    paths: Paths
    config: Config | None

    @property
    def effective_config(self) -> Config:
        return self.config if self.config is not None else Config()
