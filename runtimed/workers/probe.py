"""Load each backend plugin in a short-lived child process and report how it went.

``python -m runtimed.workers.child NAME --describe`` loads one plugin and prints its
``ready`` record; a plugin that fails to import (or crashes the interpreter) is
reported ``broken`` with its error and harms nothing else. Used by
``runtimed plugins list`` and ``runtimed doctor``.
"""

from __future__ import annotations

import subprocess

from attrs import define

from runtimed.envs.plugins import PluginInfo
from runtimed.protocol.jobs import WORKER_TYPES, Ready
from runtimed.protocol.messages import decode_line
from runtimed.util.selfcmd import module_command
from runtimed.workers.child import LOAD_FAILED

__all__ = ["DESCRIBE_TIMEOUT_S", "PluginReport", "describe"]

DESCRIBE_TIMEOUT_S = 60.0


@define(frozen=True)
class PluginReport:
    name: str
    distribution: str
    version: str
    module: str
    status: str  # active | unavailable | broken
    error: str | None = None
    detail: str | None = None


def describe(info: PluginInfo) -> PluginReport:
    """Load one plugin in a child process and report what happened."""

    def report(status: str, error: str | None = None, detail: str | None = None) -> PluginReport:
        return PluginReport(info.name, info.distribution, info.version, info.value, status, error, detail)

    if info.error is not None:  # refused at discovery (e.g. a name two distributions claim)
        return report("broken", info.error)
    try:
        proc = subprocess.run(
            module_command("runtimed.workers.child", info.name, "--describe"),
            capture_output=True,
            timeout=DESCRIBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return report("broken", f"loading timed out after {DESCRIBE_TIMEOUT_S:.0f}s")
    ready = decode_line(proc.stdout.strip(), WORKER_TYPES) if proc.stdout.strip() else None
    if proc.returncode != 0 or not isinstance(ready, Ready):
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        reasons = [line.split(LOAD_FAILED, 1)[1] for line in lines if LOAD_FAILED in line]
        error = reasons[-1] if reasons else (lines[-1] if lines else f"worker exited with {proc.returncode}")
        return report("broken", error)
    if not ready.available:
        return report("unavailable", ready.reason, ready.detail)
    return report("active", None, ready.detail)
