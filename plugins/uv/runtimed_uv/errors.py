"""Classifying uv's error output into runtimed's error kinds (pure)."""

from __future__ import annotations

import re

from runtimed.backend import BackendError, ErrorKind, tail

__all__ = ["classify_uv_error"]

_NOT_FOUND = re.compile(
    r"Because (?:there is no version of )?([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\S*"
    r" (?:was not found in the package registry|and you require)"
)
_PARSE = re.compile(r"Failed to parse: `([^`]*)`")
_NETWORK = (
    "Failed to fetch",
    "error sending request",
    "tcp connect error",
    "dns error",
    "Could not connect",
    "Connection refused",
    "timed out",
    "Network is unreachable",
    "failed to download",
)


def classify_uv_error(output: str, exit_code: int) -> BackendError:
    """A :class:`BackendError` for a failed uv command, naming the package when it can."""
    message = f"uv failed (exit {exit_code}): {tail(output, 12)}"
    if "No interpreter found" in output:
        return BackendError(ErrorKind.TOOL_MISSING, message)
    match = _PARSE.search(output)
    if match:
        return BackendError(ErrorKind.INVALID_PACKAGE, message, package=match.group(1))
    if "No solution found" in output:
        found = _NOT_FOUND.search(output)
        # "network was disabled" means an --offline miss, not a bad package.
        if "network was disabled" not in output:
            return BackendError(ErrorKind.INVALID_PACKAGE, message, package=found.group(1) if found else None)
    if any(marker in output for marker in _NETWORK) or "network was disabled" in output:
        return BackendError(ErrorKind.NETWORK, message)
    return BackendError(ErrorKind.SETUP_FAILED, message)
