"""Classifying py-rattler's errors into runtimed's error kinds (pure: only text is read).

rattler raises ``rattler.exceptions.<Name>Error`` whose text carries the whole
cause chain (``...\\nCaused by: ...``). The error's class name and that text decide:

* a failure to reach a channel or package URL (connect, DNS, TLS, 5xx, timeouts)
  -> ``network``, naming the URL;
* an unsolvable request (``SolverError``) or an unparsable spec -> ``invalid_package``,
  naming the package the solver could not find (the deepest missing dependency);
* anything else (a channel directory that does not exist, a 404 channel, a
  broken package, a full disk) -> ``setup_failed``.
"""

from __future__ import annotations

import re

from runtimed.backend import BackendError, ErrorKind

__all__ = ["classify_error", "classify_text", "failing_url", "is_not_modified", "missing_package"]

_NETWORK_MARKERS = (
    "error sending request",
    "client error (connect)",
    "tcp connect error",
    "dns error",
    "connection refused",
    "connection reset",
    "connection closed",
    "network is unreachable",
    "no route to host",
    "timed out",
    "operation timed out",
    "http status server error",  # 5xx
    "invalid certificate",
    "certificate verify failed",
)

# "└─ rt-does-not-exist *, for which no candidates were found."
_NO_CANDIDATES_DEP = re.compile(r"^[\s│├└─]*(\S+)[^\n]*?, for which no candidates were found", re.MULTILINE)
# "No candidates were found for totally-unknown-pkg *."
_NO_CANDIDATES = re.compile(r"No candidates were found for (\S+)")
# "Cannot solve the request because of: ipykernel >=99 cannot be installed because ..."
_ROOT = re.compile(r"because of: ([^\s]+)[^\n]* cannot be installed")
_URL = re.compile(r"(?:for url|url) \(([^)\s]+)\)")
_CHANNEL = re.compile(r"in channel '([^']+)'")


def missing_package(text: str) -> str | None:
    """The package a solver message says cannot be found (or cannot be installed)."""
    for pattern in (_NO_CANDIDATES_DEP, _NO_CANDIDATES, _ROOT):
        match = pattern.search(text)
        if match:
            return match.group(1).rstrip(".,:")
    return None


def is_not_modified(text: str) -> bool:
    """Whether rattler failed on a ``304 Not Modified`` (its cached copy is current).

    rattler 0.28 treats a 304 without ``ETag``/``Last-Modified`` headers as an error
    (conda/rattler#2719); static servers such as ``python -m http.server`` send those.
    """
    return "unexpected status code (304 Not Modified)" in text


def failing_url(text: str) -> str | None:
    """The URL (or channel) an error message says could not be fetched."""
    match = _URL.search(text) or _CHANNEL.search(text)
    return match.group(1) if match else None


def _root_cause(text: str) -> str:
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    return causes[-1].removeprefix("Caused by:").strip() if causes else text.strip().splitlines()[0]


def classify_text(error_type: str, text: str) -> BackendError:
    """A :class:`BackendError` for a rattler error of class ``error_type`` with message ``text``."""
    text = text.strip()
    lowered = text.lower()
    if error_type == "SolverError":
        package = missing_package(text)
        return BackendError(ErrorKind.INVALID_PACKAGE, f"cannot solve the environment: {text}", package=package)
    if error_type in ("InvalidMatchSpecError", "InvalidPackageNameError", "InvalidVersionSpecError"):
        return BackendError(ErrorKind.INVALID_PACKAGE, f"invalid package spec: {text}")
    if any(marker in lowered for marker in _NETWORK_MARKERS):
        url = failing_url(text)
        where = f"cannot reach {url}" if url else "network error"
        return BackendError(ErrorKind.NETWORK, f"{where}: {_root_cause(text)}\n{text}")
    if "could not find subdir" in lowered:
        match = _CHANNEL.search(text)
        channel = match.group(1) if match else "the channel"
        return BackendError(ErrorKind.SETUP_FAILED, f"{channel} is not a conda channel: {_root_cause(text)}\n{text}")
    return BackendError(ErrorKind.SETUP_FAILED, f"{error_type}: {text}")


def classify_error(exc: BaseException) -> BackendError:
    """Classify an exception raised by rattler (or anything else: ``setup_failed``)."""
    if isinstance(exc, BackendError):
        return exc
    return classify_text(type(exc).__name__, str(exc))
